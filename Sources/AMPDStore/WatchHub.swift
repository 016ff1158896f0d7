import Foundation
import Synchronization

/// Watches for a store whose writes all pass through this process (SQLite): the last `capacity`
/// events in memory, handed to each watcher in resourceVersion order. ResourceVersions are dense
/// (every write takes the next one), so an event that arrives before its predecessor waits for
/// it. A watch from before the oldest kept event, or from before this process opened the store,
/// is `expired`: the client lists again, as with Kubernetes.
final class WatchHub: Sendable {
    private struct Watcher {
        var kind: String
        var namespace: String?
        var continuation: AsyncThrowingStream<StoreEvent, any Error>.Continuation
    }

    private struct State {
        /// Delivered events, oldest first.
        var ring: [StoreEvent] = []
        /// Events are complete after this resourceVersion.
        var completeAfter: Int64
        /// The last resourceVersion delivered.
        var delivered: Int64
        /// Events that arrived ahead of a predecessor, by resourceVersion.
        var pending: [Int64: StoreEvent] = [:]
        var watchers: [UUID: Watcher] = [:]
    }

    private let state: Mutex<State>
    private let capacity: Int

    init(current: Int64, capacity: Int = 4096) {
        state = Mutex(State(completeAfter: current, delivered: current))
        self.capacity = capacity
    }

    /// A write took resourceVersion `event.object.resourceVersion`.
    func publish(_ event: StoreEvent) {
        state.withLock { s in
            s.pending[event.object.resourceVersion] = event
            while let next = s.pending.removeValue(forKey: s.delivered + 1) {
                s.delivered += 1
                s.ring.append(next)
                if s.ring.count > capacity {
                    s.completeAfter = s.ring.removeFirst().object.resourceVersion
                }
                for w in s.watchers.values where Self.matches(next, w.kind, w.namespace) {
                    w.continuation.yield(next)
                }
            }
        }
    }

    func watch(kind: String, namespace: String?, after resourceVersion: Int64) -> AsyncThrowingStream<StoreEvent, any Error> {
        let (stream, continuation) = AsyncThrowingStream<StoreEvent, any Error>.makeStream()
        let id = UUID()
        state.withLock { s in
            guard resourceVersion >= s.completeAfter else {
                continuation.finish(throwing: StoreError(.expired(oldest: s.completeAfter),
                    "resourceVersion \(resourceVersion) is too old: this controller has changes after \(s.completeAfter) only; list again"))
                return
            }
            for e in s.ring where e.object.resourceVersion > resourceVersion && Self.matches(e, kind, namespace) {
                continuation.yield(e)
            }
            s.watchers[id] = Watcher(kind: kind, namespace: namespace, continuation: continuation)
        }
        continuation.onTermination = { [weak self] _ in
            _ = self?.state.withLock { $0.watchers.removeValue(forKey: id) }
        }
        return stream
    }

    private static func matches(_ e: StoreEvent, _ kind: String, _ namespace: String?) -> Bool {
        e.object.kind == kind && (namespace == nil || e.object.namespace == namespace)
    }
}
