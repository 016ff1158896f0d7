import Foundation

/// Wakes long-polling callers when something they watch changes. Keyed: a caller waits on one
/// key (a node's assignments, a deployment's decisions) and is woken only by that key's signal.
actor Notifier<Key: Hashable & Sendable> {
    private var waiters: [Key: [UUID: CheckedContinuation<Void, Never>]] = [:]

    /// Returns when `key` is signalled, after `timeout`, or when the caller is cancelled.
    func wait(_ key: Key, timeout: Duration) async {
        let id = UUID()
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await self.suspend(key, id) }
            group.addTask {
                try? await Task.sleep(for: timeout)
                await self.wake(key, id)
            }
            await group.next()
            group.cancelAll()
            await self.wake(key, id)
            await group.waitForAll()
        }
    }

    func signal(_ key: Key) {
        guard let ws = waiters.removeValue(forKey: key) else { return }
        for c in ws.values { c.resume() }
    }

    private func suspend(_ key: Key, _ id: UUID) async {
        await withCheckedContinuation { c in
            waiters[key, default: [:]][id] = c
        }
    }

    private func wake(_ key: Key, _ id: UUID) {
        if let c = waiters[key]?.removeValue(forKey: id) { c.resume() }
        if waiters[key]?.isEmpty == true { waiters[key] = nil }
    }
}
