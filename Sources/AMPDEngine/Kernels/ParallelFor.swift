import Dispatch

/// Data-parallel loops over the machine's cores for the numeric kernels: the one place where
/// kernels go parallel. On an engine's thread a loop runs on that engine's own team
/// (`KernelThreads`); elsewhere (a test calling the model directly) on Dispatch's threads.
public enum ParallelFor {
    /// Threads a loop off an engine's thread uses.
    nonisolated(unsafe) public static var fallbackThreads: Int = max(1, System.coreCount)

    /// Threads the calling thread's loops run on.
    public static var threads: Int { KernelThreads.current?.count ?? fallbackThreads }

    @inline(__always) public static func run(_ iterations: Int, _ body: (Int) -> Void) {
        if let team = KernelThreads.current {
            team.run(iterations, body)
        } else if iterations <= 1 || fallbackThreads <= 1 {
            for i in 0..<iterations { body(i) }
        } else {
            // The kernels' bodies write disjoint ranges of buffers they own for
            // the duration of the call; concurrentPerform joins before returning.
            withoutActuallyEscaping(body) { f in
                let job = DisjointJob(body: f)
                DispatchQueue.concurrentPerform(iterations: iterations) { job.body($0) }
            }
        }
    }

    /// Splits `0..<count` into about `threads * oversubscribe` chunks aligned to `granularity`.
    @inline(__always) public static func chunks(_ count: Int, granularity: Int = 1, oversubscribe: Int = 4, _ body: (Range<Int>) -> Void) {
        let parts = max(1, min(threads * oversubscribe, count / max(1, granularity)))
        var size = (count + parts - 1) / parts
        size = (size + granularity - 1) / granularity * granularity
        let n = (count + size - 1) / max(1, size)
        run(n) { i in
            let lo = i * size
            body(lo..<min(count, lo + size))
        }
    }
}

private struct DisjointJob: @unchecked Sendable {
    let body: (Int) -> Void
}

enum System {
    static var coreCount: Int {
        #if canImport(Glibc)
        Int(sysconf(Int32(_SC_NPROCESSORS_ONLN)))
        #else
        1
        #endif
    }
}

#if canImport(Glibc)
import Glibc
#endif
