import AMPDPolicy
import AMPDSim
import ArgumentParser
import Foundation

/// `ampd policy-bench`: dispatcher decision latency, planner solve time and
/// simulator speed, printed as a table (`Benchmarks/policy.sh`).
struct PolicyBenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "policy-bench", abstract: "Measure dispatcher decision latency, planner solve time and simulator speed.")

    @Option(help: "Simulated seconds for the simulator-speed run.")
    var simSeconds = 3600.0

    func run() throws {
        let catalog = ProfileCatalog.builtin
        let cost = CostModel(model: try catalog.model("Llama-3.1-70B"), hardware: try catalog.hardware("H20"))
        let slo = LatencySLO(ttft: 2.5, itl: 0.1)
        print("benchmark                                   value")
        // Dispatcher: one decision against a view of W workers with queues.
        for workers in [8, 64] {
            var rng = SplitMix(seed: 1)
            let view = ClusterView(now: 10, workers: (0..<workers).map { i in
                WorkerView(id: i, role: i % 2 == 0 ? .prefill : .decode, tp: 4, node: i / 2,
                           queue: (0..<Int(rng.next() % 6)).map { QueuedPrefill(id: UInt64($0), session: 0, history: 1000, new: 700, enqueuedAt: 9, predictedSeconds: 0.2) },
                           busyUntil: 10.1, windowedTTFT: 0.8, windowedITL: 0.06, decodeBatch: 24, decodeContext: 60_000, meanRemainingDecode: 30, linkFreeAt: 10.05)
            }, slo: slo)
            let p = Predictions(cost: cost)
            for routing in [RoutingConfiguration(policy: .ampd), RoutingConfiguration(policy: .ampdPaper)] {
                let name = routing.label
                var policy = routing.makeRouter()
                let n = 20_000
                let start = DispatchTime.now().uptimeNanoseconds
                var sink = 0
                for i in 0..<n {
                    let d = policy.route(PrefillJob(session: UInt64(i), owner: 1, history: 2000 + i % 500, new: 300 + i % 700), in: view, predictions: p)
                    sink &+= d.target.worker
                }
                let us = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e3 / Double(n)
                print(pad("dispatch \(name), \(workers) workers") + String(format: "%8.2f µs/decision", us) + (sink < 0 ? "!" : ""))
            }
        }
        // Planner: one full run (search over every split and TP, nine local shares).
        for devices in [8, 64, 512] {
            var planner = Planner(cost: cost, slo: slo, devices: devices)
            let stats = WorkloadStats(sessionRate: Double(devices) / 8, meanRounds: 3.96, meanInitialPrefill: 703.79,
                                      meanIncrementalPrefill: 703.79, meanDecode: 50.39)
            _ = planner.plan(stats)
            var times: [Double] = []
            var evaluated = 0
            for _ in 0..<5 {
                var fresh = Planner(cost: cost, slo: slo, devices: devices)
                let d = fresh.plan(stats)
                times.append(d.solveMicroseconds / 1000)
                evaluated = d.evaluatedPlans
            }
            print(pad("planner solve, \(devices) devices") + String(format: "%8.2f ms (median of 5; %d predictions)", times.sorted()[2], evaluated))
            // Mixed TP degrees (up to two per pool): a larger space, searched pool by pool.
            var mixed: [Double] = []
            var mixedEvaluated = 0
            for _ in 0..<(devices > 64 ? 1 : 3) {
                let r = MixedPlanner(cost: cost, slo: slo, devices: devices).search(stats)
                mixed.append(r.microseconds / 1000)
                mixedEvaluated = r.evaluated
            }
            print(pad("mixed-TP planner solve, \(devices) devices") + String(format: "%8.2f ms (median of %d; %d pool predictions)", mixed.sorted()[mixed.count / 2], mixed.count, mixedEvaluated))
        }
        // Simulator: a 64-accelerator cluster (8 prefill + 8 decode instances at TP 4) for an hour of arrivals.
        let setup = ClusterSetup(name: "64xH20", cost: cost, prefillTP: Array(repeating: 4, count: 8), decodeTP: Array(repeating: 4, count: 8))
        let plans = WorkloadGenerator.sessions(WorkloadSpec.presets["toolbench"]!, rate: 8, duration: simSeconds, seed: 1)
        let start = Date()
        let result = Simulator(setup: setup, routing: RoutingConfiguration(policy: .ampd), options: Simulator.Options(slo: slo)).run(plans, workload: "toolbench", rate: 8)
        let wall = Date().timeIntervalSince(start)
        print(pad("simulator, 64 H20, \(Int(simSeconds)) s, ampd") + String(format: "%8.2f s wall (%d sessions, %d events, %.0f× real time)",
                                                                        wall, plans.count, result.events, result.simulatedSeconds / wall))
    }

    func pad(_ s: String) -> String { s.padding(toLength: 44, withPad: " ", startingAt: 0) }
}
