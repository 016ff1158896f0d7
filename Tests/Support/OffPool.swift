import Foundation
import Synchronization

// Swift's cooperative pool has one thread per core: two on a CI machine. Every test of a test
// process shares it, so a test that blocks a pool thread (waiting for a child process, reading a
// pipe to its end, or a long synchronous computation) stalls every other test's timers,
// heartbeats and leases meanwhile. These run such work on threads of their own.

/// Runs blocking work (waiting for a process, reading a pipe) on a thread of its own.
public func onOwnThread<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { (c: CheckedContinuation<T, any Error>) in
        let thread = Thread { c.resume(with: Result { try body() }) }
        thread.stackSize = 8 << 20
        thread.start()
    }
}

/// Runs a test's heavy synchronous part on a thread of its own, as part of the same task (so
/// its expectations are recorded against the test as usual).
public func offPool<T: Sendable>(_ body: () async throws -> T) async rethrows -> T {
    let executor = OwnThreadExecutor()
    defer { executor.stop() }
    return try await withTaskExecutorPreference(executor) { try await body() }
}

/// A task executor with one thread of its own.
public final class OwnThreadExecutor: TaskExecutor, @unchecked Sendable {
    private let condition = NSCondition()
    private var jobs: [UnownedJob] = []
    private var stopping = false

    public init() {
        let thread = Thread { [self] in loop() }
        thread.stackSize = 8 << 20
        thread.start()
    }

    public func enqueue(_ job: consuming ExecutorJob) {
        let unowned = UnownedJob(job)
        condition.lock()
        jobs.append(unowned)
        condition.signal()
        condition.unlock()
    }

    /// Ends the thread once its queue is empty.
    public func stop() {
        condition.lock()
        stopping = true
        condition.signal()
        condition.unlock()
    }

    private func loop() {
        while true {
            condition.lock()
            while jobs.isEmpty && !stopping { condition.wait() }
            if jobs.isEmpty {
                condition.unlock()
                return
            }
            let batch = jobs
            jobs.removeAll()
            condition.unlock()
            for job in batch { job.runSynchronously(on: asUnownedTaskExecutor()) }
        }
    }
}

/// A process and the pipe it writes to, handed to a thread of our own.
private struct ProcessBox: @unchecked Sendable {
    let process: Process
    let pipe: Pipe?
}

/// Waits for a started process to exit, reading `pipe` (its output) to the end meanwhile, on a
/// thread of its own; returns its status and that output.
public func waitForExit(_ process: Process, reading pipe: Pipe? = nil) async throws -> (status: Int32, output: String) {
    let box = ProcessBox(process: process, pipe: pipe)
    return try await onOwnThread {
        let data = box.pipe?.fileHandleForReading.readDataToEndOfFile() ?? Data()
        box.process.waitUntilExit()
        return (box.process.terminationStatus, String(decoding: data, as: UTF8.self))
    }
}
