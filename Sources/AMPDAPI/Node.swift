/// A host that runs an agent. Registered with a bootstrap token; kept alive by heartbeats.
public struct Node: Codable, Sendable, Hashable {
    public static let kind = "Node"
    public var apiVersion: String = APIGroup.apiVersion
    public var kind: String = Node.kind
    public var metadata: ObjectMeta
    public var spec: NodeSpec
    public var status: NodeStatus

    public init(metadata: ObjectMeta, spec: NodeSpec, status: NodeStatus) {
        self.metadata = metadata
        self.spec = spec
        self.status = status
    }

    public var name: String { metadata.name }
}

public struct NodeCapacity: Codable, Sendable, Hashable {
    /// Accelerator kind (`cpu`, `nvidia-h100`, ...); instances only land on a node of their kind.
    public var accelerator: String
    /// Accelerators (GPUs, or CPU engine slots) on this host.
    public var count: Int
    /// Memory per accelerator in bytes.
    public var memoryBytes: Int64
    /// CPU cores of the host: CPU engine slots beyond them share cores, and the planner models
    /// them as sharing (nil: as many as slots).
    public var cores: Int?

    public init(accelerator: String, count: Int, memoryBytes: Int64, cores: Int? = nil) {
        self.accelerator = accelerator
        self.count = count
        self.memoryBytes = memoryBytes
        self.cores = cores
    }
}

public struct NodeSpec: Codable, Sendable, Hashable {
    public var capacity: NodeCapacity
    /// Addresses at which the node's endpoints are reachable (informational; identity is the name).
    public var addresses: [String]
    /// Taken out of placement: existing instances stay, no new ones land.
    public var unschedulable: Bool
    /// Ports of the agent's endpoints (mutual TLS), once it listens.
    public var endpoints: NodeEndpoints?

    public init(capacity: NodeCapacity, addresses: [String] = [], unschedulable: Bool = false) {
        self.capacity = capacity
        self.addresses = addresses
        self.unschedulable = unschedulable
    }
}

public enum NodePhase: String, Codable, Sendable, Hashable, CaseIterable {
    /// Heartbeats arrive in time.
    case ready = "Ready"
    /// Heartbeats stopped: the node's instances are re-placed elsewhere.
    case notReady = "NotReady"
    /// No heartbeat seen since this controller started.
    case unknown = "Unknown"
}

/// Live load an agent reports with each heartbeat.
public struct NodeLoad: Codable, Sendable, Hashable {
    public var queueLength: Int
    public var runningSequences: Int
    public var kvBlocksUsed: Int
    public var kvBlocksFree: Int
    public var tokensPerSecond: Double

    public init(queueLength: Int = 0, runningSequences: Int = 0, kvBlocksUsed: Int = 0,
                kvBlocksFree: Int = 0, tokensPerSecond: Double = 0) {
        self.queueLength = queueLength
        self.runningSequences = runningSequences
        self.kvBlocksUsed = kvBlocksUsed
        self.kvBlocksFree = kvBlocksFree
        self.tokensPerSecond = tokensPerSecond
    }
}

public enum InstancePhase: String, Codable, Sendable, Hashable, CaseIterable {
    case starting = "Starting"
    case running = "Running"
    case draining = "Draining"
    case failed = "Failed"
}

/// An instance as its node reports it.
public struct InstanceReport: Codable, Sendable, Hashable {
    public var instance: String
    /// `namespace/name` of the owning deployment.
    public var deployment: String
    public var phase: InstancePhase
    /// Why an instance failed, or what it is waiting for.
    public var message: String?
    /// Its role (gateways find draining decode instances by it, to hand their sessions off).
    public var role: InstanceRole?

    public init(instance: String, deployment: String, phase: InstancePhase, message: String? = nil, role: InstanceRole? = nil) {
        self.instance = instance
        self.deployment = deployment
        self.phase = phase
        self.message = message
        self.role = role
    }
}

public struct NodeStatus: Codable, Sendable, Hashable {
    public var phase: NodePhase
    public var lastHeartbeatTime: String?
    public var load: NodeLoad
    public var instances: [InstanceReport]
    /// The KV pools the agent serves, with the settings in force.
    public var pools: [KVPoolReport]?

    public init(phase: NodePhase = .unknown, lastHeartbeatTime: String? = nil, load: NodeLoad = .init(),
                instances: [InstanceReport] = [], pools: [KVPoolReport]? = nil) {
        self.phase = phase
        self.lastHeartbeatTime = lastHeartbeatTime
        self.load = load
        self.instances = instances
        self.pools = pools
    }
}

/// `POST /apis/ampd.dev/v1alpha1/nodes`: an agent registers (or re-registers) itself.
public struct NodeRegistration: Codable, Sendable, Hashable {
    public var name: String
    public var capacity: NodeCapacity
    public var addresses: [String]?
    public var endpoints: NodeEndpoints?

    public init(name: String, capacity: NodeCapacity, addresses: [String]? = nil, endpoints: NodeEndpoints? = nil) {
        self.name = name
        self.capacity = capacity
        self.addresses = addresses
        self.endpoints = endpoints
    }
}

/// `PUT /apis/ampd.dev/v1alpha1/nodes/{name}/heartbeat`.
public struct Heartbeat: Codable, Sendable, Hashable {
    public var load: NodeLoad
    public var instances: [InstanceReport]
    public var pools: [KVPoolReport]?
    /// Engine steps timed since the last heartbeat, per instance (for calibration; not stored).
    public var timings: [InstanceTimings]?

    public init(load: NodeLoad = .init(), instances: [InstanceReport] = [], pools: [KVPoolReport]? = nil, timings: [InstanceTimings]? = nil) {
        self.load = load
        self.instances = instances
        self.pools = pools
        self.timings = timings
    }
}

/// One instance a node must run, with what it needs to start it.
public struct NodeInstance: Codable, Sendable, Hashable {
    public var instance: String
    public var deployment: String
    public var role: InstanceRole
    public var accelerators: Int
    public var tensor: Int
    public var model: ModelSpec
    /// The deployment's KV pool settings (admission defaults filled in): the agent runs the
    /// instance's engine with its block size and serves the deployment's pool with them.
    public var kvPool: KVPoolSpec?

    public init(instance: String, deployment: String, role: InstanceRole, accelerators: Int, tensor: Int, model: ModelSpec,
                kvPool: KVPoolSpec? = nil) {
        self.instance = instance
        self.deployment = deployment
        self.role = role
        self.accelerators = accelerators
        self.tensor = tensor
        self.model = model
        self.kvPool = kvPool
    }
}

/// A deployment's KV pool as an agent runs it (reported with each heartbeat).
public struct KVPoolReport: Codable, Sendable, Hashable {
    /// `namespace/name` of the deployment.
    public var deployment: String
    public var capacityBytes: Int
    public var usedBytes: Int
    public var blocks: Int
    public var encryption: KVEncryption
    public var tenantIsolation: Bool
    public var leaseSeconds: Int
    /// Tokens per KV block of the deployment's engines on this agent.
    public var blockTokens: Int

    public init(deployment: String, capacityBytes: Int, usedBytes: Int, blocks: Int, encryption: KVEncryption, tenantIsolation: Bool,
                leaseSeconds: Int, blockTokens: Int) {
        self.deployment = deployment
        self.capacityBytes = capacityBytes
        self.usedBytes = usedBytes
        self.blocks = blocks
        self.encryption = encryption
        self.tenantIsolation = tenantIsolation
        self.leaseSeconds = leaseSeconds
        self.blockTokens = blockTokens
    }
}

/// `GET /apis/ampd.dev/v1alpha1/nodes/{name}/assignments?after=N&timeoutSeconds=S`: what the
/// node must run. `version` grows whenever the set changes; pass it back as `after` to long-poll.
public struct NodeAssignments: Codable, Sendable, Hashable {
    public var node: String
    public var version: Int64
    public var instances: [NodeInstance]

    public init(node: String, version: Int64, instances: [NodeInstance]) {
        self.node = node
        self.version = version
        self.instances = instances
    }
}

/// Where an agent serves: its instance API (HTTPS, mutual TLS) and its KV pool endpoint.
public struct NodeEndpoints: Codable, Sendable, Hashable {
    public var api: Int
    public var kv: Int
    public init(api: Int, kv: Int) {
        self.api = api
        self.kv = kv
    }
}

/// The response header of a node's first registration with a bootstrap token: the node's own
/// credential (a bearer token that acts as that node only). The agent keeps it in its data
/// directory; the controller keeps only its hash.
public enum NodeCredentialHeader {
    public static let name = "Ampd-Node-Credential"
}
