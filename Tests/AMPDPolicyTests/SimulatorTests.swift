import Foundation
import Testing
@testable import AMPDPolicy
@testable import AMPDSim

@Suite("Simulator")
struct SimulatorTests {
    let cost = CostModel(model: try! ProfileCatalog.builtin.model("Llama-3.1-70B"), hardware: try! ProfileCatalog.builtin.hardware("H20"))
    var setup: ClusterSetup { ClusterSetup(name: "8xH20", cost: cost, prefillTP: [4], decodeTP: [4]) }
    var options: Simulator.Options { Simulator.Options(slo: LatencySLO(ttft: 2.0, itl: 0.1)) }

    func simulate(_ policy: String, rate: Double = 0.5, seed: UInt64 = 9) throws -> SimulationResult {
        let plans = WorkloadGenerator.sessions(WorkloadSpec.presets["toolbench"]!, rate: rate, duration: 120, seed: seed)
        return Simulator(setup: setup, routing: try RoutingConfiguration(label: policy), options: options).run(plans, workload: "toolbench", rate: rate)
    }

    @Test("deterministic for a seed")
    func determinism() throws {
        let a = try simulate("ampd"), b = try simulate("ampd")
        #expect(a.ttft == b.ttft && a.itl == b.itl && a.events == b.events)
        let c = try simulate("ampd", seed: 10)
        #expect(a.ttft != c.ttft)
    }

    @Test("conservation: every session finishes; rounds add up; prefills are counted once", arguments: RoutingConfiguration.policies.map(\.label))
    func conservation(policy: String) throws {
        let plans = WorkloadGenerator.sessions(WorkloadSpec.presets["toolbench"]!, rate: 0.5, duration: 120, seed: 9)
        let r = try simulate(policy)
        #expect(r.sessions == plans.count)
        #expect(r.sessionsFinished == plans.count)
        #expect(r.rounds == plans.reduce(0) { $0 + $1.prefills.count })
        #expect(r.localPrefills + r.remotePrefills == r.rounds)
        #expect(r.ttft.count == r.rounds)
        #expect(r.sessionsAttained <= r.sessionsFinished)
        if policy == "static-pd" { #expect(r.localPrefills == 0 && r.kvBytesMoved > 0) }
        if policy == "colocated" { #expect(r.remotePrefills == 0 && r.kvBytesMoved == 0) }
    }

    @Test("an overloaded cluster is reported, not hidden: attainment falls with rate")
    func overload() throws {
        let light = try simulate("static-pd", rate: 0.2)
        let heavy = try simulate("static-pd", rate: 4)
        #expect(heavy.roundAttainment < light.roundAttainment)
    }

    @Test("workload presets carry the paper's averages")
    func presets() {
        let plans = WorkloadGenerator.sessions(WorkloadSpec.presets["gaia"]!, rate: 5, duration: 400, seed: 1)
        let rounds = Double(plans.reduce(0) { $0 + $1.prefills.count }) / Double(plans.count)
        #expect(abs(rounds - 11.32) < 0.6)
        let prefill = Double(plans.flatMap(\.prefills).reduce(0, +)) / Double(plans.flatMap(\.prefills).count)
        #expect(abs(prefill - 6161) / 6161 < 0.08)
    }
}

@Suite("Trace loaders")
struct TraceLoaderTests {
    @Test("Mooncake JSONL: a request sharing all but (at most) the last block of a session's last request is its next round; a shared system prompt is not")
    func mooncake() throws {
        let text = """
        {"timestamp": 0, "input_length": 1500, "output_length": 20, "hash_ids": [1, 2, 3]}
        {"timestamp": 500, "input_length": 900, "output_length": 10, "hash_ids": [7, 8]}
        {"timestamp": 4000, "input_length": 2300, "output_length": 30, "hash_ids": [1, 2, 3, 4, 5]}
        {"timestamp": 6000, "input_length": 3000, "output_length": 5, "hash_ids": [1, 2, 3, 4, 9, 10]}
        {"timestamp": 7000, "input_length": 1200, "output_length": 8, "hash_ids": [1, 2, 11]}
        {"timestamp": 8000, "input_length": 1300, "output_length": 9, "hash_ids": [7, 12, 13]}
        """
        let s = try TraceLoaders.mooncake(text)
        // Session 0: its third turn shares [1,2,3,4] with the second turn's [1,2,3,4,5], all but
        // the last block. [1,2,11] shares only two blocks with a 6-block turn: a new session.
        // [7,12,13] shares all of [7,8] but its last block: session 1's next round.
        #expect(s.count == 3)
        #expect(s[0].prefills == [1500, 2300 - 3 * 512, 3000 - 4 * 512] && s[0].decodes == [20, 30, 5])
        #expect(s[0].thinks[0] == 4.0 && s[0].thinks[1] == 2.0)
        #expect(s[1].arrival == 0.5 && s[1].prefills == [900, 1300 - 512] && s[1].thinks[0] == 7.5)
        #expect(s[2].prefills == [1200])
        #expect(throws: TraceError.self) { try TraceLoaders.mooncake("{\"timestamp\": 1}") }
    }

    @Test("ShareGPT: human turns are prefills, gpt turns decodes; bad files are named")
    func shareGPT() throws {
        let json = """
        [{"id": "a", "conversations": [{"from": "human", "value": "\(String(repeating: "x", count: 400))"},
                                        {"from": "gpt", "value": "\(String(repeating: "y", count: 80))"},
                                        {"from": "human", "value": "\(String(repeating: "z", count: 40))"},
                                        {"from": "gpt", "value": "\(String(repeating: "w", count: 8))"}]}]
        """
        let s = try TraceLoaders.shareGPT(Data(json.utf8), rate: 1, duration: 50, seed: 3)
        #expect(!s.isEmpty)
        #expect(s[0].prefills == [100, 10] && s[0].decodes == [20, 2])
        #expect(throws: TraceError.self) { try TraceLoaders.shareGPT(Data("{}".utf8), rate: 1, duration: 5, seed: 1) }
    }
}
