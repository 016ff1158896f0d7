import Foundation

/// The reconciler's work queue, as in controller-runtime: items are object keys only; a key
/// added while queued is not duplicated; a key added while being processed is queued again
/// when processing ends, so no change is ever lost.
actor WorkQueue {
    private var queue: [String] = []
    private var queued: Set<String> = []
    private var processing: Set<String> = []
    private var dirty: Set<String> = []
    private var waiter: CheckedContinuation<String?, Never>?
    private var shutDown = false

    var depth: Int { queue.count }

    func add(_ key: String) {
        guard !shutDown else { return }
        if processing.contains(key) {
            dirty.insert(key)
            return
        }
        guard queued.insert(key).inserted else { return }
        if let w = waiter {
            waiter = nil
            queued.remove(key)
            processing.insert(key)
            w.resume(returning: key)
        } else {
            queue.append(key)
        }
    }

    /// Adds a key after a delay (backoff, or waiting on agents).
    nonisolated func add(_ key: String, after delay: Duration) {
        Task {
            try? await Task.sleep(for: delay)
            await self.add(key)
        }
    }

    /// The next key to process, or nil once shut down.
    func next() async -> String? {
        if !queue.isEmpty {
            let key = queue.removeFirst()
            queued.remove(key)
            processing.insert(key)
            return key
        }
        if shutDown { return nil }
        return await withCheckedContinuation { waiter = $0 }
    }

    func done(_ key: String) {
        processing.remove(key)
        if dirty.remove(key) != nil { add(key) }
    }

    func shutdown() {
        shutDown = true
        waiter?.resume(returning: nil)
        waiter = nil
    }
}
