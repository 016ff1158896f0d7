/// The paper's Algorithm 2: at each dequeue, among the first `window` queued
/// prefills, try every order; keep the one in which the most tasks meet the
/// TTFT SLO (ties: the earlier order in lexicographic enumeration, FIFO
/// first); never let a task be postponed more than `window` times.
public enum Reordering {
    /// The task to run next and why.
    public struct Choice: Sendable, Equatable {
        /// Index into the queue: also how many earlier tasks it overtakes.
        public var index: Int
        /// Tasks of the window that meet the TTFT SLO in the chosen order, and first in, first out.
        public var metChosen: Int
        public var metFIFO: Int
        /// Tasks the window considered.
        public var window: Int
    }

    /// The index (into `queue`) of the task to run next, updating the
    /// postponement counts of the tasks it overtakes.
    public static func next(_ queue: inout [QueuedPrefill], now: Double, ttftSLO: Double, window: Int) -> Int? {
        choose(&queue, now: now, ttftSLO: ttftSLO, window: window)?.index
    }

    /// As `next`, with the counts that justify the choice.
    public static func choose(_ queue: inout [QueuedPrefill], now: Double, ttftSLO: Double, window: Int) -> Choice? {
        guard !queue.isEmpty else { return nil }
        let w = min(max(1, window), queue.count, 6)
        guard w > 1 else { return Choice(index: 0, metChosen: 0, metFIFO: 0, window: w) }
        var best = Array(0..<w)
        var bestCount = -1
        var fifoCount = 0
        var perm = Array(0..<w)
        var identity = true
        repeat {
            // Skip orders whose first task overtakes one that hit the cap.
            let first = perm[0]
            if (0..<first).contains(where: { queue[$0].postponed >= window }) { continue }
            var t = now, met = 0
            for i in perm {
                t += queue[i].predictedSeconds
                if t - queue[i].enqueuedAt <= ttftSLO { met += 1 }
            }
            if identity { fifoCount = met; identity = false }
            if met > bestCount { bestCount = met; best = perm }
        } while nextPermutation(&perm)
        let chosen = best[0]
        for i in 0..<chosen { queue[i].postponed += 1 }
        return Choice(index: chosen, metChosen: max(0, bestCount), metFIFO: fifoCount, window: w)
    }

    /// Lexicographic next permutation; false after the last.
    static func nextPermutation(_ a: inout [Int]) -> Bool {
        guard a.count > 1 else { return false }
        var i = a.count - 2
        while i >= 0 && a[i] >= a[i + 1] { i -= 1 }
        if i < 0 { return false }
        var j = a.count - 1
        while a[j] <= a[i] { j -= 1 }
        a.swapAt(i, j)
        a[(i + 1)...].reverse()
        return true
    }
}
