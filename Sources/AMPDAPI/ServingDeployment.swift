/// The `ServingDeployment` resource: one model served by a prefill pool and a decode pool.
public struct ServingDeployment: Codable, Sendable, Hashable {
    public static let kind = "ServingDeployment"
    public static let plural = "servingdeployments"

    public var apiVersion: String
    public var kind: String
    public var metadata: ObjectMeta
    public var spec: ServingDeploymentSpec
    public var status: ServingDeploymentStatus?

    public init(metadata: ObjectMeta, spec: ServingDeploymentSpec, status: ServingDeploymentStatus? = nil) {
        self.apiVersion = APIGroup.apiVersion
        self.kind = Self.kind
        self.metadata = metadata
        self.spec = spec
        self.status = status
    }
}

public struct ServingDeploymentSpec: Codable, Sendable, Hashable {
    public var model: ModelSpec
    public var slo: SLOSpec
    /// Omitted only with `routing.policy: colocated`.
    public var prefill: PoolSpec?
    public var decode: PoolSpec
    public var routing: RoutingSpec?
    public var planner: PlannerSpec?
    public var kvPool: KVPoolSpec?

    public init(model: ModelSpec, slo: SLOSpec, prefill: PoolSpec?, decode: PoolSpec,
                routing: RoutingSpec? = nil, planner: PlannerSpec? = nil, kvPool: KVPoolSpec? = nil) {
        self.model = model
        self.slo = slo
        self.prefill = prefill
        self.decode = decode
        self.routing = routing
        self.planner = planner
        self.kvPool = kvPool
    }
}

public struct ModelSpec: Codable, Sendable, Hashable {
    public var name: String
    public var source: ModelSource
    /// Only `gguf` today.
    public var format: String?

    public init(name: String, source: ModelSource, format: String? = "gguf") {
        self.name = name
        self.source = source
        self.format = format
    }
}

/// Where the weights come from: exactly one of a file path or a pip package that ships a GGUF.
public struct ModelSource: Codable, Sendable, Hashable {
    public var path: String?
    public var pip: String?
    /// With `pip`: the file inside the package, when it ships more than one.
    public var file: String?

    public init(path: String? = nil, pip: String? = nil, file: String? = nil) {
        self.path = path
        self.pip = pip
        self.file = file
    }
}

/// Service-level objectives, per round: TTFT counts every prefill, initial and incremental.
public struct SLOSpec: Codable, Sendable, Hashable {
    public var ttftMs: Double
    public var tpotMs: Double
    /// Fraction of rounds that must meet both objectives (0 < x ≤ 1).
    public var attainmentTarget: Double?

    public init(ttftMs: Double, tpotMs: Double, attainmentTarget: Double? = 0.9) {
        self.ttftMs = ttftMs
        self.tpotMs = tpotMs
        self.attainmentTarget = attainmentTarget
    }
}

public struct PoolSpec: Codable, Sendable, Hashable {
    /// A fixed number of instances; exclusive with `autoscale`.
    public var replicas: Int?
    /// Bounds within which the planner sizes the pool; exclusive with `replicas`.
    public var autoscale: AutoscaleSpec?
    public var parallelism: ParallelismSpec?
    public var resources: ResourceSpec?

    public init(replicas: Int? = nil, autoscale: AutoscaleSpec? = nil,
                parallelism: ParallelismSpec? = nil, resources: ResourceSpec? = nil) {
        self.replicas = replicas
        self.autoscale = autoscale
        self.parallelism = parallelism
        self.resources = resources
    }

    public var tensor: Int { parallelism?.tensor ?? 1 }
    public var acceleratorKind: String { resources?.accelerator ?? "cpu" }
    /// Accelerators one instance occupies.
    public var acceleratorsPerInstance: Int { resources?.count ?? tensor }
}

public struct AutoscaleSpec: Codable, Sendable, Hashable {
    public var min: Int
    public var max: Int
    public init(min: Int, max: Int) {
        self.min = min
        self.max = max
    }
}

public struct ParallelismSpec: Codable, Sendable, Hashable {
    /// Tensor-parallel degree: 1, 2, 4 or 8.
    public var tensor: Int
    public init(tensor: Int) { self.tensor = tensor }
}

public struct ResourceSpec: Codable, Sendable, Hashable {
    /// Accelerator kind: `cpu`, or a GPU model such as `nvidia-h100`.
    public var accelerator: String
    /// Accelerators per instance; defaults to the tensor degree.
    public var count: Int?
    public init(accelerator: String, count: Int? = nil) {
        self.accelerator = accelerator
        self.count = count
    }
}

public enum RoutingPolicy: String, Codable, Sendable, Hashable, CaseIterable {
    /// ampd's dispatcher: the paper's rule plus decode-stall, link-queueing and balancing terms.
    case ampd
    /// The paper's Algorithm 1 and 2 as published.
    case ampdPaper = "ampd-paper"
    /// Local prefill when the uncached part is shorter than a threshold.
    case conditionalPD = "conditional-pd"
    /// Every prefill, incremental included, on the prefill pool.
    case staticPD = "static-pd"
    /// No disaggregation: chunked prefill batched with decode.
    case colocated
}

public enum PrefillUnavailableAction: String, Codable, Sendable, Hashable, CaseIterable {
    /// Run the prefill on the decode instance.
    case aggregate
    /// Answer 503 with a reason.
    case fail
}

public struct RoutingSpec: Codable, Sendable, Hashable {
    public var policy: RoutingPolicy
    /// Algorithm 1: a prefill worker is eligible when its windowed TTFT ≤ alpha · TTFT SLO.
    public var alpha: Double?
    /// Algorithm 1: local prefill is allowed when the owner's windowed ITL ≤ beta · ITL SLO.
    public var beta: Double?
    /// Algorithm 2: how many queued prefills are reordered at each dequeue.
    public var reorderWindow: Int?
    /// `conditional-pd` only: prefills with fewer uncached tokens than this run locally.
    public var conditionalThresholdTokens: Int?
    public var onPrefillUnavailable: PrefillUnavailableAction?
    /// Admission: rounds each gateway runs at once (queued, prefilling, moving KV or decoding);
    /// a round beyond them is refused with 429 and Retry-After. Unset: no limit.
    public var maxRoundsInFlight: Int?

    public init(policy: RoutingPolicy, alpha: Double? = nil, beta: Double? = nil, reorderWindow: Int? = nil,
                conditionalThresholdTokens: Int? = nil, onPrefillUnavailable: PrefillUnavailableAction? = nil, maxRoundsInFlight: Int? = nil) {
        self.policy = policy
        self.maxRoundsInFlight = maxRoundsInFlight
        self.alpha = alpha
        self.beta = beta
        self.reorderWindow = reorderWindow
        self.conditionalThresholdTokens = conditionalThresholdTokens
        self.onPrefillUnavailable = onPrefillUnavailable
    }
}

public enum PlannerMode: String, Codable, Sendable, Hashable, CaseIterable {
    /// The planner resizes autoscaled pools itself.
    case auto
    /// The planner logs what it would do; nothing changes.
    case suggest
    case off
}

public struct PlannerSpec: Codable, Sendable, Hashable {
    public var mode: PlannerMode
    public var intervalSeconds: Int?
    public init(mode: PlannerMode, intervalSeconds: Int? = nil) {
        self.mode = mode
        self.intervalSeconds = intervalSeconds
    }
}

public enum TLSMode: String, Codable, Sendable, Hashable, CaseIterable {
    case mutual
    case disabled
}

public struct KVPoolTLSSpec: Codable, Sendable, Hashable {
    public var mode: TLSMode
    /// Must be `true` for `mode: disabled`: TLS is never off by accident.
    public var allowInsecure: Bool?
    public init(mode: TLSMode, allowInsecure: Bool? = nil) {
        self.mode = mode
        self.allowInsecure = allowInsecure
    }
}

public enum KVEncryption: String, Codable, Sendable, Hashable, CaseIterable {
    case aes256gcm = "aes-256-gcm"
    case none
}

public enum TransferFailureAction: String, Codable, Sendable, Hashable, CaseIterable {
    /// Recompute the prefill where the KV was needed.
    case recompute
    /// Fail the round with an error naming the transfer.
    case fail
}

public struct KVPoolSpec: Codable, Sendable, Hashable {
    /// Tokens per KV block of the engines (and so the granularity of prefix sharing and KV
    /// export): a power of two from 1 to 1024.
    public var blockTokens: Int?
    /// KV pool capacity on each agent, as a quantity (`512Mi`, `4Gi`, or bytes).
    public var capacityPerAgent: Quantity?
    public var tls: KVPoolTLSSpec?
    /// Salt block keys per tenant so that tenants never share or read each other's blocks.
    public var tenantIsolation: Bool?
    public var encryption: KVEncryption?
    public var onTransferFailure: TransferFailureAction?
    /// Seconds KV pushed into a pool stays reserved for its import (after that it may be evicted).
    public var leaseSeconds: Int?

    public init(blockTokens: Int? = nil, capacityPerAgent: Quantity? = nil, tls: KVPoolTLSSpec? = nil,
                tenantIsolation: Bool? = nil, encryption: KVEncryption? = nil,
                onTransferFailure: TransferFailureAction? = nil, leaseSeconds: Int? = nil) {
        self.blockTokens = blockTokens
        self.capacityPerAgent = capacityPerAgent
        self.tls = tls
        self.tenantIsolation = tenantIsolation
        self.encryption = encryption
        self.onTransferFailure = onTransferFailure
        self.leaseSeconds = leaseSeconds
    }
}

// MARK: - Status

public enum InstanceRole: String, Codable, Sendable, Hashable, CaseIterable {
    case prefill
    case decode
}

public struct PoolStatus: Codable, Sendable, Hashable {
    public var desired: Int
    /// Instances placed on a node.
    public var placed: Int
    /// Instances their node reports running.
    public var ready: Int
    public init(desired: Int = 0, placed: Int = 0, ready: Int = 0) {
        self.desired = desired
        self.placed = placed
        self.ready = ready
    }
}

public struct PoolsStatus: Codable, Sendable, Hashable {
    public var prefill: PoolStatus
    public var decode: PoolStatus
    public init(prefill: PoolStatus = .init(), decode: PoolStatus = .init()) {
        self.prefill = prefill
        self.decode = decode
    }

    public subscript(role: InstanceRole) -> PoolStatus {
        get { role == .prefill ? prefill : decode }
        set { if role == .prefill { prefill = newValue } else { decode = newValue } }
    }
}

/// One instance (a prefill or decode engine) of a deployment, placed on a node.
public struct InstanceAssignment: Codable, Sendable, Hashable {
    public var instance: String
    public var role: InstanceRole
    public var node: String
    public var accelerators: Int

    public init(instance: String, role: InstanceRole, node: String, accelerators: Int) {
        self.instance = instance
        self.role = role
        self.node = node
        self.accelerators = accelerators
    }
}

public struct ServingDeploymentStatus: Codable, Sendable, Hashable {
    public var observedGeneration: Int64?
    public var conditions: [Condition]
    public var pools: PoolsStatus
    public var assignments: [InstanceAssignment]
    /// Replica counts set through the scale subresource for autoscaled pools (the planner's
    /// recommendation goes here too), by role.
    public var scaleOverride: ScaleCounts?
    /// The planner's last conclusion (deployments with `planner.mode` auto or suggest).
    public var planner: PlannerStatus?

    public init(observedGeneration: Int64? = nil, conditions: [Condition] = [], pools: PoolsStatus = .init(),
                assignments: [InstanceAssignment] = [], scaleOverride: ScaleCounts? = nil, planner: PlannerStatus? = nil) {
        self.planner = planner
        self.observedGeneration = observedGeneration
        self.conditions = conditions
        self.pools = pools
        self.assignments = assignments
        self.scaleOverride = scaleOverride
    }
}
