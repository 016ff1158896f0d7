#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Synchronization

/// A fixed team of threads for one engine's parallel loops: the engine's own thread (the caller)
/// and `count - 1` workers, started once with the engine and kept until it goes. Each loop is a
/// job whose iterations are handed out through an atomic counter; the caller works too and
/// returns once every iteration has run. A worker that is late (descheduled on a busy machine)
/// holds no one up: it finds the iterations taken and goes back to waiting.
///
/// Workers spin briefly after a job (a decode step runs hundreds of short loops back to back)
/// and then sleep on a condition, so an idle engine costs no CPU.
public final class KernelThreads: @unchecked Sendable {
    /// Threads that run a loop, the caller included.
    public let count: Int

    /// One parallel loop. `body` points at the caller's closure, which lives on its stack until
    /// `done == iterations`: a worker calls it only for an index below `iterations`.
    private final class Job: @unchecked Sendable {
        let iterations: Int
        let body: UnsafePointer<(Int) -> Void>
        let next = Atomic<Int>(0)
        let done = Atomic<Int>(0)
        init(iterations: Int, body: UnsafePointer<(Int) -> Void>) {
            self.iterations = iterations
            self.body = body
        }

        /// Runs iterations until none are left.
        func work() {
            while true {
                let i = next.wrappingAdd(1, ordering: .relaxed).oldValue
                guard i < iterations else { return }
                body.pointee(i)
                done.wrappingAdd(1, ordering: .releasing)
            }
        }
    }

    private let generation = Atomic<Int>(0)
    private let sleepers = Atomic<Int>(0)
    private let stopping = Atomic<Bool>(false)
    private let current = Mutex<Job?>(nil)
    private let wake = Condition()
    /// Set while a loop runs: a loop started from inside another (on any of the team's
    /// threads) runs serially where it is.
    private let busy = Atomic<Bool>(false)
    private var workers: [pthread_t] = []

    /// How long an idle worker keeps polling for the next loop before it sleeps.
    private static let spinNanoseconds: UInt64 = 100_000

    public init(count: Int, name: String) {
        self.count = max(1, count)
        for i in 1..<self.count {
            workers.append(NativeThread.start(name: "\(name)-k\(i)") { [self] in
                KernelThreads.adopt(self)
                self.workerLoop()
            })
        }
    }

    /// Stops and joins the workers (they hold the team until then); loops afterwards run
    /// serially on the caller.
    public func stop() {
        guard !stopping.exchange(true, ordering: .sequentiallyConsistent) else { return }
        wake.broadcast()
        for t in workers { pthread_join(t, nil) }
        workers = []
    }

    /// Runs `body(0..<iterations)` over the team and returns when all have run.
    /// Called from one thread at a time (the engine's).
    public func run(_ iterations: Int, _ body: (Int) -> Void) {
        if iterations <= 1 || count <= 1 || stopping.load(ordering: .relaxed)
            || busy.exchange(true, ordering: .acquiring) {
            for i in 0..<iterations { body(i) }
            return
        }
        defer { busy.store(false, ordering: .releasing) }
        withoutActuallyEscaping(body) { f in
            withUnsafePointer(to: f) { pointer in
                let job = Job(iterations: iterations, body: pointer)
                current.withLock { $0 = job }
                generation.wrappingAdd(1, ordering: .sequentiallyConsistent)
                if sleepers.load(ordering: .sequentiallyConsistent) > 0 { wake.broadcast() }
                job.work()
                var spins = 0
                while job.done.load(ordering: .acquiring) < iterations {
                    spins += 1
                    if spins & 63 == 0 { sched_yield() }
                }
                current.withLock { $0 = nil }
            }
        }
    }

    private func workerLoop() {
        var seen = 0
        while !stopping.load(ordering: .relaxed) {
            var g = generation.load(ordering: .sequentiallyConsistent)
            if g == seen {
                let deadline = Self.now() + Self.spinNanoseconds
                var spins = 0
                while g == seen {
                    spins += 1
                    if spins & 255 == 0 {
                        if Self.now() > deadline { break }
                        sched_yield()
                    }
                    g = generation.load(ordering: .sequentiallyConsistent)
                }
            }
            if g == seen {
                wake.lock()
                sleepers.wrappingAdd(1, ordering: .sequentiallyConsistent)
                while generation.load(ordering: .sequentiallyConsistent) == seen && !stopping.load(ordering: .sequentiallyConsistent) {
                    wake.wait()
                }
                sleepers.wrappingSubtract(1, ordering: .sequentiallyConsistent)
                wake.unlock()
                continue
            }
            seen = g
            if let job = current.withLock({ $0 }) { job.work() }
        }
    }

    private static func now() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
    }

    // MARK: the calling thread's team

    /// The team of the engine whose thread is running (nil elsewhere).
    public static var current: KernelThreads? {
        pthread_getspecific(currentKey).map { Unmanaged<KernelThreads>.fromOpaque($0).takeUnretainedValue() }
    }

    /// Makes `team` the calling thread's team (the thread keeps it for its life).
    static func adopt(_ team: KernelThreads?) {
        pthread_setspecific(currentKey, team.map { Unmanaged.passUnretained($0).toOpaque() })
    }
}

private let currentKey: pthread_key_t = {
    var key = pthread_key_t()
    pthread_key_create(&key, nil)
    return key
}()

/// A pthread mutex and condition variable.
final class Condition: @unchecked Sendable {
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let cond = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)

    init() {
        pthread_mutex_init(mutex, nil)
        pthread_cond_init(cond, nil)
    }

    deinit {
        pthread_cond_destroy(cond)
        pthread_mutex_destroy(mutex)
        mutex.deallocate()
        cond.deallocate()
    }

    func lock() { pthread_mutex_lock(mutex) }
    func unlock() { pthread_mutex_unlock(mutex) }
    /// Waits for a signal; call with the lock held.
    func wait() { pthread_cond_wait(cond, mutex) }
    /// Wakes one waiter; call with the lock held.
    func signal() { pthread_cond_signal(cond) }
    /// Takes the lock and wakes every waiter.
    func broadcast() { lock(); pthread_cond_broadcast(cond); unlock() }
}

/// Threads of our own (not the Swift cooperative pool, not Dispatch's), with a name `top` shows.
enum NativeThread {
    private final class Start {
        let body: () -> Void
        let name: String
        init(_ body: @escaping () -> Void, name: String) {
            self.body = body
            self.name = name
        }
    }

    /// Starts a joinable thread with an 8 MiB stack.
    static func start(name: String, _ body: @escaping () -> Void) -> pthread_t {
        var attr = pthread_attr_t()
        pthread_attr_init(&attr)
        pthread_attr_setstacksize(&attr, 8 << 20)
        defer { pthread_attr_destroy(&attr) }
        let context = Unmanaged.passRetained(Start(body, name: name)).toOpaque()
        var thread = pthread_t()
        let rc = pthread_create(&thread, &attr, { raw in
            let start = Unmanaged<Start>.fromOpaque(raw!).takeRetainedValue()
            // Linux keeps 15 bytes of a thread's name.
            Thread.current.name = String(decoding: start.name.utf8.prefix(15), as: UTF8.self)
            start.body()
            return nil
        }, context)
        precondition(rc == 0, "cannot start thread \(name): error \(rc)")
        return thread
    }
}
