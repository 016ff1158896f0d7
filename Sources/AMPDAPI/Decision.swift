/// One decision of the controller (a scale change, a placement, an eviction, a planner
/// recommendation), with its reason. The same record goes to the JSON log and to
/// `GET /apis/ampd.dev/v1alpha1/decisions`.
public struct Decision: Codable, Sendable, Hashable {
    /// Monotonic sequence number; pass the last one seen as `since` to follow.
    public var seq: Int64
    public var ts: String
    /// `namespace/name` of the deployment concerned.
    public var deployment: String
    /// Past-tense, CamelCase event: `ScaledPool`, `PlacedInstance`, `RemovedInstance`, ...
    public var event: String
    public var reason: String
    /// Who caused it: a user name from the token file, or `controller`.
    public var actor: String
    public var message: String
    public var fields: [String: JSONValue]

    public init(seq: Int64 = 0, ts: String, deployment: String, event: String, reason: String,
                actor: String, message: String, fields: [String: JSONValue] = [:]) {
        self.seq = seq
        self.ts = ts
        self.deployment = deployment
        self.event = event
        self.reason = reason
        self.actor = actor
        self.message = message
        self.fields = fields
    }
}

public enum DecisionEvent {
    public static let scaledPool = "ScaledPool"
    public static let placedInstance = "PlacedInstance"
    public static let removedInstance = "RemovedInstance"
    public static let replacedInstance = "ReplacedInstance"
    public static let unschedulable = "InstanceUnschedulable"
    public static let finalized = "Finalized"
    /// A planner run: the plan it wants, its predictions, and whether it acted.
    public static let plannerDecision = "PlannerDecision"
}

public struct DecisionList: Codable, Sendable, Hashable {
    public var items: [Decision]
    /// The highest `seq` returned (or the `since` asked for, when nothing new).
    public var lastSeq: Int64
    public init(items: [Decision], lastSeq: Int64) {
        self.items = items
        self.lastSeq = lastSeq
    }
}
