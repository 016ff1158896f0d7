import Foundation
import Synchronization
import AMPDTestSupport
import Testing
@testable import AMPDEngine

extension NativeEngine {
    /// The name of the thread the actor's code runs on.
    func executingThreadName() -> String? { Thread.current.name }
}

@Suite("Engine threads")
struct EngineThreadTests {
    @Test("a team runs every index of a loop exactly once, for any size and team; a loop inside a loop runs serially")
    func everyIndexOnce() {
        for threads in [1, 2, 3, 5] {
            let team = KernelThreads(count: threads, name: "test-team")
            defer { team.stop() }
            for n in [0, 1, 2, 3, 7, 64, 1000, 4099] {
                let hits = Mutex([Int](repeating: 0, count: n))
                team.run(n) { i in hits.withLock { $0[i] += 1 } }
                #expect(hits.withLock { $0.allSatisfy { $0 == 1 } }, "\(threads) threads, \(n) iterations")
            }
            let outer = Atomic<Int>(0)
            team.run(8) { _ in
                team.run(4) { _ in outer.wrappingAdd(1, ordering: .relaxed) }
            }
            #expect(outer.load(ordering: .relaxed) == 32)
        }
    }

    @Test("the engine's code runs on its own thread, not on Swift's cooperative pool; the thread ends when the engine goes")
    func ownThread() async throws {
        var options = NativeEngineOptions()
        options.threads = 2
        options.threadName = "engine-test"
        var engine: NativeEngine? = try TinyModel.engine(options: options)
        let name = await engine!.executingThreadName()
        #expect(name == "engine-test")
        _ = try await run(engine!, GenerationRequest(tokens: [1, 2, 3, 4, 5], maxTokens: 4))
        #expect(engine!.stats().steps >= 4)
        let thread = engine!.thread
        #expect(!thread.isFinished)
        engine = nil
        let deadline = ContinuousClock.now + .seconds(10)
        while !thread.isFinished && ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(10)) }
        #expect(thread.isFinished)
    }
}

@Suite("engine-bench")
struct EngineBenchTests {
    struct Output: Decodable {
        let engines: Int
        let batch: Int
        let prefillTokensPerSecond: Double
        let decodeTokensPerSecond: Double
        let poolLagMaxMs: Double
    }

    @Test("--engines and --batch run that many engines and sequences at once; the figures and the pool lag are reported")
    func enginesAndBatch() async throws {
        let model = try TinyModel.file()
        let base = ["engine-bench", "--model", model, "--threads", "1", "--prompt-tokens", "8", "--decode-tokens", "12", "--repeats", "1"]
        let one = try await offPool { try AMPDBinary.run(base) }
        let many = try await offPool { try AMPDBinary.run(base + ["--engines", "2", "--batch", "3"]) }
        let a = try JSONDecoder().decode(Output.self, from: Data(one.utf8))
        let b = try JSONDecoder().decode(Output.self, from: Data(many.utf8))
        #expect(a.engines == 1 && a.batch == 1 && b.engines == 2 && b.batch == 3)
        #expect(a.prefillTokensPerSecond > 0 && a.decodeTokensPerSecond > 0 && b.decodeTokensPerSecond > 0)
        #expect(b.poolLagMaxMs >= 0)
        let refused = Process()
        refused.executableURL = AMPDBinary.url
        refused.arguments = base + ["--batch", "0"]
        let out = Pipe()
        refused.standardOutput = out
        refused.standardError = out
        try refused.run()
        let (status, text) = try await waitForExit(refused, reading: out)
        #expect(status != 0 && text.contains("--batch"), "\(text)")
    }
}
