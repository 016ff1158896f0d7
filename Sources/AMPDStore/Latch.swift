import Foundation
import Synchronization

/// A one-shot event that any number of tasks wait for (leadership lost, shutdown begun): once
/// opened it stays open. Waiting ends when it opens or when the waiting task is cancelled.
public final class Latch: Sendable {
    private let state = Mutex<(open: Bool, waiters: [(id: UUID, continuation: CheckedContinuation<Void, Never>)])>((false, []))

    public init() {}

    public var isOpen: Bool { state.withLock { $0.open } }

    /// Opens it; returns false if it was open already.
    @discardableResult
    public func open() -> Bool {
        let waiters = state.withLock { s -> [CheckedContinuation<Void, Never>]? in
            guard !s.open else { return nil }
            s.open = true
            defer { s.waiters = [] }
            return s.waiters.map(\.continuation)
        }
        guard let waiters else { return false }
        for w in waiters { w.resume() }
        return true
    }

    /// Returns once it is open, or when the calling task is cancelled.
    public func wait() async {
        let id = UUID()
        await withTaskCancellationHandler {
            await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
                let resumeNow = state.withLock { s -> Bool in
                    if s.open || Task.isCancelled { return true }
                    s.waiters.append((id, c))
                    return false
                }
                if resumeNow { c.resume() }
            }
        } onCancel: {
            let waiter = state.withLock { s -> CheckedContinuation<Void, Never>? in
                guard let i = s.waiters.firstIndex(where: { $0.id == id }) else { return nil }
                return s.waiters.remove(at: i).continuation
            }
            waiter?.resume()
        }
    }
}
