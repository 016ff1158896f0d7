import AMPDAPI

/// How a deployment routes and schedules its prefills, typed from its manifest
/// (`spec.routing` and `spec.kvPool.onTransferFailure`) with the admission
/// defaults. The live gateway and the simulator build their round engine from
/// it; the simulator's ablation also uses combinations a manifest cannot state
/// (reordering with `static-pd`), which is why this is a value of its own.
public struct RoutingConfiguration: Sendable, Equatable, Hashable, Codable {
    public var policy: AMPDAPI.RoutingPolicy
    /// `ampd-paper`: a prefill worker is eligible when its windowed TTFT ≤ α·SLO.
    /// `ampd`: where the TTFT violation ramp starts, as a fraction of the SLO.
    public var alpha: Double
    /// `ampd-paper`: a local prefill is allowed when the owner's windowed ITL ≤ β·SLO.
    /// `ampd`: where the ITL violation ramp starts, as a fraction of the SLO.
    public var beta: Double
    /// Algorithm 2: queued prefills reordered at each dequeue (1: first in, first out).
    public var reorderWindow: Int
    /// `conditional-pd`: prefills with fewer uncached tokens run locally.
    public var conditionalThresholdTokens: Int
    /// `conditional-pd`: local also when every prefill queue holds this many.
    public var conditionalMaxQueue: Int
    public var onPrefillUnavailable: PrefillUnavailableAction
    public var onTransferFailure: TransferFailureAction
    /// Seeds `ampd-paper`'s random worker order.
    public var seed: UInt64
    /// Admission: rounds in flight at once; beyond, a round is refused (429). Nil: no limit.
    public var maxRoundsInFlight: Int?

    public init(policy: AMPDAPI.RoutingPolicy, alpha: Double = 0.9, beta: Double = 0.85, reorderWindow: Int? = nil,
                conditionalThresholdTokens: Int = 512, conditionalMaxQueue: Int = 8,
                onPrefillUnavailable: PrefillUnavailableAction = .aggregate, onTransferFailure: TransferFailureAction = .recompute,
                seed: UInt64 = 1, maxRoundsInFlight: Int? = nil) {
        self.policy = policy
        self.maxRoundsInFlight = maxRoundsInFlight
        self.alpha = alpha
        self.beta = beta
        self.reorderWindow = reorderWindow ?? Self.defaultWindow(policy)
        self.conditionalThresholdTokens = conditionalThresholdTokens
        self.conditionalMaxQueue = conditionalMaxQueue
        self.onPrefillUnavailable = onPrefillUnavailable
        self.onTransferFailure = onTransferFailure
        self.seed = seed
    }

    /// What a deployment's manifest asks for (fields it leaves out take the admission defaults).
    public init(_ spec: ServingDeploymentSpec) {
        let r = spec.routing ?? RoutingSpec(policy: .ampd)
        self.init(policy: r.policy, alpha: r.alpha ?? 0.9, beta: r.beta ?? 0.85, reorderWindow: r.reorderWindow,
                  conditionalThresholdTokens: r.conditionalThresholdTokens ?? 512,
                  onPrefillUnavailable: r.onPrefillUnavailable ?? .aggregate,
                  onTransferFailure: spec.kvPool?.onTransferFailure ?? .recompute, maxRoundsInFlight: r.maxRoundsInFlight)
    }

    /// Algorithm 2 runs for the paper's policies; the baselines serve first in, first out.
    static func defaultWindow(_ p: AMPDAPI.RoutingPolicy) -> Int { p == .ampd || p == .ampdPaper ? 3 : 1 }

    /// The router this configuration describes.
    public func makeRouter() -> any PrefillRouter {
        switch policy {
        case .ampd: AMPDRouting(alpha: alpha, beta: beta)
        case .ampdPaper: AMPDPaperRouting(alpha: alpha, beta: beta, seed: seed)
        case .conditionalPD: ConditionalPDRouting(threshold: conditionalThresholdTokens, maxQueue: conditionalMaxQueue)
        case .staticPD: StaticPDRouting()
        case .colocated: ColocatedRouting()
        }
    }

    /// Prefills one instance runs at a time; the rest wait in the round engine's queue, where
    /// Algorithm 2 reorders them. Co-located instances batch every prefill with decode
    /// (chunked prefill), so nothing waits outside the instance.
    public var prefillSlots: Int? { policy == .colocated ? nil : 1 }

    /// A short name for tables: the policy, marked where reordering departs from its default
    /// (`static-pd+reorder`, `ampd-routing-only`).
    public var label: String {
        let base = policy.rawValue
        let usual = Self.defaultWindow(policy)
        if reorderWindow == usual { return base }
        return reorderWindow > 1 ? "\(base)+reorder" : "\(base)-routing-only"
    }

    /// Parses a label as `label` writes it (command lines and benchmark scripts).
    public init(label: String, seed: UInt64 = 1) throws(PolicyError) {
        var name = label
        var window: Int?
        if name.hasSuffix("+reorder") { name.removeLast("+reorder".count); window = 3 }
        if name.hasSuffix("-routing-only") { name.removeLast("-routing-only".count); window = 1 }
        guard let p = AMPDAPI.RoutingPolicy(rawValue: name) else {
            throw .invalidInput("routing policy '\(label)' (known: \(Self.labels.joined(separator: ", ")))")
        }
        self.init(policy: p, reorderWindow: window, seed: seed)
    }

    /// Every policy a manifest can name.
    public static let policies = AMPDAPI.RoutingPolicy.allCases.map { RoutingConfiguration(policy: $0) }
    /// The ablation: reordering alone, routing alone, both.
    public static let ablation = [
        RoutingConfiguration(policy: .staticPD), RoutingConfiguration(policy: .staticPD, reorderWindow: 3),
        RoutingConfiguration(policy: .ampdPaper, reorderWindow: 1), RoutingConfiguration(policy: .ampdPaper),
        RoutingConfiguration(policy: .ampd, reorderWindow: 1), RoutingConfiguration(policy: .ampd),
    ]
    static var labels: [String] { (policies + ablation).map(\.label) }
}
