/// Kubernetes API discovery, so that `kubectl` finds ampd's resources: `/api`, `/apis`,
/// `/apis/ampd.dev`, `/apis/ampd.dev/v1alpha1` (legacy, non-aggregated documents) and `/version`.
public enum KubernetesDiscovery {
    public struct GroupVersion: Codable, Sendable, Hashable {
        public var groupVersion: String
        public var version: String
    }

    public struct Group: Codable, Sendable, Hashable {
        public var name: String
        public var versions: [GroupVersion]
        public var preferredVersion: GroupVersion
    }

    public struct GroupList: Codable, Sendable, Hashable {
        public var kind = "APIGroupList"
        public var apiVersion = "v1"
        public var groups: [Group]
    }

    /// `/api`: the core group's versions. ampd serves no core resources; kubectl still reads it.
    public struct Versions: Codable, Sendable, Hashable {
        public var kind = "APIVersions"
        public var versions: [String]
        public var serverAddressByClientCIDRs: [ServerAddress] = []
        public init(versions: [String]) { self.versions = versions }
    }

    public struct ServerAddress: Codable, Sendable, Hashable {
        public var clientCIDR: String
        public var serverAddress: String
    }

    public struct Resource: Codable, Sendable, Hashable {
        public var name: String
        public var singularName: String
        public var namespaced: Bool
        public var group: String?
        public var version: String?
        public var kind: String
        public var verbs: [String]
        public var shortNames: [String]?
        public var categories: [String]?
    }

    public struct ResourceList: Codable, Sendable, Hashable {
        public var kind = "APIResourceList"
        public var apiVersion = "v1"
        public var groupVersion: String
        public var resources: [Resource]
        public init(groupVersion: String, resources: [Resource]) {
            self.groupVersion = groupVersion
            self.resources = resources
        }
    }

    /// `/version`.
    public struct Version: Codable, Sendable, Hashable {
        public var major: String
        public var minor: String
        public var gitVersion: String
        public var gitCommit = ""
        public var gitTreeState = ""
        public var buildDate = ""
        public var goVersion = ""
        public var compiler = "swiftc"
        public var platform: String
        public init(major: String, minor: String, gitVersion: String, platform: String) {
            self.major = major
            self.minor = minor
            self.gitVersion = gitVersion
            self.platform = platform
        }
    }

    public static let version = GroupVersion(groupVersion: APIGroup.apiVersion, version: APIGroup.version)

    public static let groups = GroupList(groups: [Group(name: APIGroup.group, versions: [version], preferredVersion: version)])

    /// What each resource supports; every verb listed is served (kubectl decides by these).
    public static let resources = ResourceList(groupVersion: APIGroup.apiVersion, resources: [
        Resource(name: ServingDeployment.plural, singularName: "servingdeployment", namespaced: true, kind: ServingDeployment.kind,
                 verbs: ["create", "delete", "get", "list", "patch", "update", "watch"], shortNames: ["sd"], categories: ["all", "ampd"]),
        Resource(name: "\(ServingDeployment.plural)/status", singularName: "", namespaced: true, kind: ServingDeployment.kind,
                 verbs: ["get"]),
        // kubectl scale reads the Scale kind's group and version from here.
        Resource(name: "\(ServingDeployment.plural)/scale", singularName: "", namespaced: true, group: "autoscaling", version: "v1",
                 kind: Scale.kind, verbs: ["get", "patch", "update"]),
        Resource(name: "nodes", singularName: "node", namespaced: false, kind: "Node", verbs: ["delete", "get", "list"],
                 shortNames: ["ampdnode"], categories: ["ampd"]),
    ])
}
