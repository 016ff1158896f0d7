/// A status condition, as in Kubernetes: `lastTransitionTime` changes only when `status` flips.
public struct Condition: Codable, Sendable, Hashable {
    public enum Status: String, Codable, Sendable, Hashable {
        case `true` = "True"
        case `false` = "False"
        case unknown = "Unknown"
    }

    public var type: String
    public var status: Status
    public var reason: String
    public var message: String
    public var lastTransitionTime: String
    public var observedGeneration: Int64?

    public init(type: String, status: Status, reason: String, message: String,
                lastTransitionTime: String, observedGeneration: Int64? = nil) {
        self.type = type
        self.status = status
        self.reason = reason
        self.message = message
        self.lastTransitionTime = lastTransitionTime
        self.observedGeneration = observedGeneration
    }
}

/// Condition types and reasons, in one place so that clients can match on them.
public enum ConditionType {
    public static let ready = "Ready"
    public static let progressing = "Progressing"
    public static let degraded = "Degraded"
}

public enum ConditionReason {
    public static let allInstancesReady = "AllInstancesReady"
    public static let instancesStarting = "InstancesStarting"
    public static let insufficientCapacity = "InsufficientCapacity"
    public static let nodeLost = "NodeLost"
    public static let reconciled = "Reconciled"
    public static let placing = "PlacingInstances"
    public static let deleting = "Deleting"
    public static let noDegradation = "AsExpected"
}

extension [Condition] {
    /// Sets a condition, keeping `lastTransitionTime` when the status did not flip.
    public mutating func set(_ new: Condition) {
        if let i = firstIndex(where: { $0.type == new.type }) {
            var merged = new
            if self[i].status == new.status { merged.lastTransitionTime = self[i].lastTransitionTime }
            self[i] = merged
        } else {
            append(new)
        }
    }

    public func first(ofType type: String) -> Condition? { first { $0.type == type } }
}
