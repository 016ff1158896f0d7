import AMPDAPI
import AMPDObservability
import AMPDStore
import Foundation
import Logging

/// The controller's decisions: every scale change, placement and eviction, with its reason.
/// Each is stored (for `GET .../decisions`) and written as one JSON log line.
actor DecisionLog {
    private let store: any ObjectStore
    private let logger: Logger
    private let notifier = Notifier<String>()
    static let all = "*"

    init(store: any ObjectStore, logger: Logger) {
        self.store = store
        self.logger = logger
    }

    @discardableResult
    func record(_ decisions: [Decision]) async throws -> [Decision] {
        guard !decisions.isEmpty else { return [] }
        let stored = try await store.append(records: decisions.map { d in
            (scope: d.deployment, encode: { @Sendable seq in
                var copy = d
                copy.seq = seq
                return try JSONCoding.encoder.encode(copy)
            })
        })
        var out: [Decision] = []
        for r in stored {
            let d = try JSONCoding.decoder.decode(Decision.self, from: r.body)
            out.append(d)
            var meta: Logger.Metadata = [
                "event": "\(d.event)", "deployment": "\(d.deployment)", "reason": "\(d.reason)",
                "actor": "\(d.actor)", "seq": "\(d.seq)",
            ]
            for (k, v) in d.fields { meta[k] = Self.metadata(v) }
            logger.info("\(d.message)", metadata: meta)
        }
        for scope in Set(out.map(\.deployment)) { await notifier.signal(scope) }
        await notifier.signal(Self.all)
        return out
    }

    func list(deployment: String?, since: Int64, limit: Int) async throws -> [Decision] {
        try await store.records(scope: deployment, since: since, limit: limit).map {
            try JSONCoding.decoder.decode(Decision.self, from: $0.body)
        }
    }

    /// Long-polls: returns as soon as there are records after `since`, or at the timeout.
    func follow(deployment: String?, since: Int64, limit: Int, timeout: Duration) async throws -> [Decision] {
        let deadline = ContinuousClock.now + timeout
        while true {
            let items = try await list(deployment: deployment, since: since, limit: limit)
            let left = deadline - ContinuousClock.now
            if !items.isEmpty || left <= .zero || Task.isCancelled { return items }
            await notifier.wait(deployment ?? Self.all, timeout: left)
        }
    }

    static func metadata(_ v: JSONValue) -> Logger.Metadata.Value {
        switch v {
        case .string(let s): return .string(s)
        case .int(let i): return .stringConvertible(i)
        case .double(let d): return .stringConvertible(d)
        case .bool(let b): return .stringConvertible(b)
        case .null: return .string("null")
        case .array(let a): return .array(a.map(metadata))
        case .object(let o): return .dictionary(o.mapValues(metadata))
        }
    }
}
