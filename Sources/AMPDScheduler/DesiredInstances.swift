import AMPDAPI

/// One instance a deployment needs, before placement.
public struct DesiredInstance: Sendable, Hashable {
    public var instance: String
    public var role: InstanceRole
    public var index: Int
    public var accelerators: Int
    public var acceleratorKind: String

    public init(instance: String, role: InstanceRole, index: Int, accelerators: Int, acceleratorKind: String) {
        self.instance = instance
        self.role = role
        self.index = index
        self.accelerators = accelerators
        self.acceleratorKind = acceleratorKind
    }
}

/// Derives the instances a deployment should have from its spec (and scale override).
/// Instances are named `<deployment>-<role>-<index>`; scaling down removes the highest indices.
public enum DesiredInstances {
    public static func of(_ d: ServingDeployment) -> [DesiredInstance] {
        if d.metadata.isDeleting { return [] }
        var out: [DesiredInstance] = []
        for role in InstanceRole.allCases {
            guard let pool = d.pool(role) else { continue }
            let n = d.desiredReplicas(role)
            for i in 0..<n {
                out.append(DesiredInstance(
                    instance: name(deployment: d.metadata.name, role: role, index: i),
                    role: role, index: i,
                    accelerators: pool.acceleratorsPerInstance,
                    acceleratorKind: pool.acceleratorKind))
            }
        }
        return out
    }

    public static func name(deployment: String, role: InstanceRole, index: Int) -> String {
        "\(deployment)-\(role.rawValue)-\(index)"
    }
}
