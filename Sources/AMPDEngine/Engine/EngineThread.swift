#if canImport(Glibc)
import Glibc
#endif

/// The thread an engine runs on: the executor of the engine's actor, so that its steps (whole
/// forward passes, hundreds of milliseconds on a CPU) never occupy a thread of Swift's
/// cooperative pool, which serves the process's heartbeats, APIs and streams. It owns the
/// engine's kernel team, whose loops it leads.
public final class EngineThread: SerialExecutor, @unchecked Sendable {
    public let kernels: KernelThreads
    private let wake = Condition()
    private var jobs: [UnownedJob] = []
    private var stopping = false
    private var finished = false

    /// Starts the thread and a team of `threads` (itself and `threads - 1` kernel workers).
    public init(name: String, threads: Int) {
        kernels = KernelThreads(count: threads, name: name)
        let thread = NativeThread.start(name: name) { [self] in
            KernelThreads.adopt(kernels)
            self.loop()
        }
        pthread_detach(thread)
    }

    /// Whether the thread has ended (after `stop()`, once its queue was empty).
    public var isFinished: Bool {
        wake.lock()
        defer { wake.unlock() }
        return finished
    }

    public func enqueue(_ job: consuming ExecutorJob) {
        let unowned = UnownedJob(job)
        wake.lock()
        if finished {
            // The thread has ended (its engine is gone): nothing else can run on this executor.
            wake.unlock()
            unowned.runSynchronously(on: asUnownedSerialExecutor())
            return
        }
        jobs.append(unowned)
        wake.signal()
        wake.unlock()
    }

    public func asUnownedSerialExecutor() -> UnownedSerialExecutor {
        UnownedSerialExecutor(ordinary: self)
    }

    public func isSameExclusiveExecutionContext(other: EngineThread) -> Bool { self === other }

    /// Ends the thread once the jobs already queued have run, and the kernel team with it.
    /// Called when the engine goes; a job enqueued after the thread ended runs on its caller.
    public func stop() {
        wake.lock()
        stopping = true
        wake.signal()
        wake.unlock()
    }

    private func loop() {
        while true {
            wake.lock()
            while jobs.isEmpty && !stopping { wake.wait() }
            if jobs.isEmpty {
                finished = true
                wake.unlock()
                break
            }
            let batch = jobs
            jobs.removeAll(keepingCapacity: true)
            wake.unlock()
            for job in batch { job.runSynchronously(on: asUnownedSerialExecutor()) }
        }
        kernels.stop()
    }
}
