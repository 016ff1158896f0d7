import AMPDPolicy
import AMPDSim
import ArgumentParser
import Foundation

/// `ampd sim`: run the discrete-event simulator over the same routing code
/// the gateway uses; print a table and write CSV, markdown and SVG.
struct SimCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sim", abstract: "Simulate policies on a cluster under a multi-round workload (SLO attainment vs rate).")

    @Option(help: "Model profile (Qwen3-32B, Llama-3.1-70B, Mixtral-8x7B, Llama-3.1-8B, SmolLM2-135M).")
    var model = "Llama-3.1-70B"

    @Option(help: "Hardware profile (H20, H100, H200, A100, cpu-2core).")
    var hardware = "H20"

    @Option(help: "YAML file with extra or replacement profiles (hardware:, models:).")
    var profiles: String?

    @Option(help: "Prefill instances as TPxCOUNT, e.g. 4x1 (the paper's P<4,1>) or 2x1,4x1 (mixed); omit to let the planner choose.")
    var prefill: String?

    @Option(help: "Decode instances as TPxCOUNT, e.g. 4x1; omit to let the planner choose.")
    var decode: String?

    @Option(help: "Devices the planner may use when --prefill/--decode are omitted.")
    var devices = 8

    @Flag(help: "Let the planner mix two TP degrees per pool when it chooses the deployment.")
    var mixedTp = false

    @Option(help: "Arrival rate the planner sizes for (default: the middle of --rates).")
    var planRate: Double?

    @Flag(help: "Run the ablation (routing alone, reordering alone, both) instead of the policy comparison.")
    var ablation = false

    @Option(help: "Replay a trace instead of the preset: mooncake:FILE.jsonl (each rate is a time-compression factor) or sharegpt:FILE.json (sessions drawn at each rate).")
    var trace: String?

    @Option(help: "Workload preset: toolbench, gaia, hotpotqa, dureader, longprompt.")
    var workload = "toolbench"

    @Option(help: "Comma-separated session arrival rates (per second).")
    var rates = "0.5,1,2,3"

    @Option(help: "Comma-separated policies (default: all).")
    var policies = RoutingConfiguration.policies.map(\.label).joined(separator: ",")

    @Option(help: "TTFT SLO per round, seconds.")
    var ttft = 2.5

    @Option(help: "ITL (TPOT) SLO, seconds.")
    var itl = 0.1

    @Option(help: "Seconds of arrivals.")
    var duration = 600.0

    @Option(help: "Seed of the workload and of randomized policies.")
    var seed: UInt64 = 1

    @Option(help: "Directory for results.csv, report.md and attainment.svg (none: print only).")
    var out: String?

    func run() throws {
        var catalog = ProfileCatalog.builtin
        if let profiles { catalog = catalog.merging(try ProfileCatalog.load(yaml: try String(contentsOfFile: profiles, encoding: .utf8))) }
        let cost = CostModel(model: try catalog.model(model), hardware: try catalog.hardware(hardware))
        guard let spec = WorkloadSpec.presets[workload] else {
            throw ValidationError("--workload must be one of \(WorkloadSpec.presets.keys.sorted().joined(separator: ", ")); got \(workload)")
        }
        let rateList = try rates.split(separator: ",").map { s -> Double in
            guard let r = Double(s), r > 0 else { throw ValidationError("--rates: '\(s)' is not a positive number") }
            return r
        }
        let slo = LatencySLO(ttft: ttft, itl: itl)
        var source: ((Double) throws -> [SessionPlan])?
        var workloadName = workload
        if let trace {
            let parts = trace.split(separator: ":", maxSplits: 1).map(String.init)
            guard parts.count == 2 else { throw ValidationError("--trace must be mooncake:FILE or sharegpt:FILE; got \(trace)") }
            let data = try Data(contentsOf: URL(fileURLWithPath: parts[1]))
            workloadName = "\(parts[0]) trace \(URL(fileURLWithPath: parts[1]).lastPathComponent)"
            switch parts[0] {
            case "mooncake":
                let base = try TraceLoaders.mooncake(String(decoding: data, as: UTF8.self))
                source = { factor in
                    base.compactMap { p in
                        var q = p
                        q.arrival /= factor
                        return q.arrival < duration ? q : nil
                    }
                }
            case "sharegpt":
                let seed = self.seed
                let duration = self.duration
                source = { rate in try TraceLoaders.shareGPT(data, rate: rate, duration: duration, seed: seed) }
            default:
                throw ValidationError("--trace kind must be mooncake or sharegpt; got \(parts[0])")
            }
        }
        var prefillTP: [Int], decodeTP: [Int]
        var planNote = ""
        if let prefill, let decode {
            prefillTP = try Self.instances(prefill, "--prefill")
            decodeTP = try Self.instances(decode, "--decode")
        } else {
            let rate = planRate ?? rateList[rateList.count / 2]
            // A fixed budget, as in the paper: use every device rather than the fewest that suffice.
            var planner = Planner(cost: cost, slo: slo, devices: devices, minimizeDevices: false)
            let stats = try source.map { WorkloadStats.observed(try $0(rate), rate: rate) } ?? WorkloadStats(
                sessionRate: rate, meanRounds: spec.meanRounds, meanInitialPrefill: spec.initialPrefill.mean,
                meanIncrementalPrefill: spec.incrementalPrefill.mean, prefillCV: spec.incrementalPrefill.cv,
                meanDecode: spec.decode.mean, meanThink: spec.thinkSeconds)
            let decision = planner.plan(stats)
            guard let chosen = decision.chosen else { throw ValidationError("planner: \(decision.reason)") }
            prefillTP = Array(repeating: chosen.plan.prefillTP, count: chosen.plan.prefillReplicas)
            decodeTP = Array(repeating: chosen.plan.decodeTP, count: chosen.plan.decodeReplicas)
            planNote = "planner (sized for \(rate) sessions/s on \(devices) devices): \(decision.reason)"
            if mixedTp, let best = MixedPlanner(cost: cost, slo: slo, devices: devices, attainmentTarget: 1.1).search(stats).ranked.first,
               best.sessionAttainment > chosen.sessionAttainment + 0.002 {
                prefillTP = best.plan.prefillTPs
                decodeTP = best.plan.decodeTPs
                planNote += String(format: "; mixed TP: %@ predicts %.1f%% of sessions", best.plan.description, best.sessionAttainment * 100)
            }
        }
        let setup = ClusterSetup(name: "\(model) on \(hardware)", cost: cost, prefillTP: prefillTP, decodeTP: decodeTP)
        let routings = try ablation ? RoutingConfiguration.ablation.map { try RoutingConfiguration(label: $0.label, seed: seed) }
            : policies.split(separator: ",").map { try RoutingConfiguration(label: String($0), seed: seed) }
        let policyList = routings.map(\.label)
        let experiment = Experiment(setup: setup, workload: spec, slo: slo, rates: rateList,
                                    policies: routings, duration: duration, seed: seed)
        let start = Date()
        let results = try experiment.run(sessions: source)
        let elapsed = Date().timeIntervalSince(start)
        let title = "\(model), \(setup.notation) on \(setup.devices)×\(hardware), \(workloadName), SLO TTFT \(ttft)s ITL \(itl * 1000)ms"
        let table = (planNote.isEmpty ? "" : planNote + "\n\n") + Report.markdown(title: title, results: results, policies: policyList)
        print(table)
        print("local share of prefills: " + results.filter { $0.rate == rateList.last }.map { "\($0.policy) \(Int(($0.localShare * 100).rounded()))%" }.joined(separator: ", "))
        if let r = results.first(where: { $0.rate == rateList.last }), r.sessions > 0 {
            print(String(format: "rounds per session: %.2f (%d sessions, %d rounds at %@ sessions/s)", Double(r.rounds) / Double(max(1, r.sessionsFinished)),
                         r.sessions, r.rounds, "\(rateList.last!)"))
        }
        print(String(format: "simulated %d runs of %.0f s of arrivals in %.1f s", results.count, duration, elapsed))
        if let out {
            try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
            let csv = ([Report.csvHeader] + results.map { Report.csvRow($0, duration: duration) }).joined(separator: "\n") + "\n"
            try csv.write(toFile: out + "/results.csv", atomically: true, encoding: .utf8)
            try table.write(toFile: out + "/report.md", atomically: true, encoding: .utf8)
            try Report.svg(title: title, results: results, policies: policyList).write(toFile: out + "/attainment.svg", atomically: true, encoding: .utf8)
        }
    }

    /// `TPxCOUNT[,TPxCOUNT...]`: each instance's TP degree (several groups mix degrees).
    static func instances(_ spec: String, _ flag: String) throws -> [Int] {
        try spec.split(separator: ",").flatMap { group -> [Int] in
            let parts = group.lowercased().split(separator: "x")
            guard parts.count == 2, let tp = Int(parts[0]), [1, 2, 4, 8].contains(tp), let n = Int(parts[1]), n >= 0 else {
                throw ValidationError("\(flag) must be TPxCOUNT[,TPxCOUNT] with TP 1, 2, 4 or 8 (e.g. 4x2 or 2x1,4x1); got \(spec)")
            }
            return Array(repeating: tp, count: n)
        }
    }
}

/// `ampd plan`: one planner run, printed as the decision record the
/// controller logs (inputs, chosen plan, best alternatives, solve time).
struct PlanCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "plan", abstract: "Choose prefill/decode pool sizes and TP degrees for a workload; print the decision record (JSON).")

    @Option(help: "Model profile.") var model = "Llama-3.1-70B"
    @Option(help: "Hardware profile.") var hardware = "H20"
    @Option(help: "Devices available.") var devices = 8
    @Option(help: "Formulation: attainment (ours) or paper.") var formulation = "attainment"
    @Option(help: "Workload preset the statistics come from.") var workload = "toolbench"
    @Option(help: "Sessions per second.") var rate = 1.0
    @Option(help: "Share of prefills run locally, as observed (default: the planner assumes the best split).") var localShare: Double?
    @Option(help: "TTFT SLO, seconds.") var ttft = 2.5
    @Option(help: "ITL SLO, seconds.") var itl = 0.1
    @Flag(help: "Also search pools that mix two TP degrees (the paper's replicas-per-degree variables).") var mixedTp = false
    @Option(help: "YAML file with extra or replacement profiles (hardware:, models:), e.g. a calibrated profile from `ampd get profile NAME`.")
    var profiles: String?

    func run() throws {
        var catalog = ProfileCatalog.builtin
        if let profiles { catalog = catalog.merging(try ProfileCatalog.load(yaml: try String(contentsOfFile: profiles, encoding: .utf8))) }
        let cost = CostModel(model: try catalog.model(model), hardware: try catalog.hardware(hardware))
        guard let f = PlannerFormulation(rawValue: formulation) else { throw ValidationError("--formulation must be attainment or paper; got \(formulation)") }
        guard let spec = WorkloadSpec.presets[workload] else { throw ValidationError("unknown --workload \(workload)") }
        var planner = Planner(cost: cost, slo: LatencySLO(ttft: ttft, itl: itl), devices: devices, formulation: f)
        let decision = planner.plan(WorkloadStats(
            sessionRate: rate, meanRounds: spec.meanRounds, meanInitialPrefill: spec.initialPrefill.mean,
            meanIncrementalPrefill: spec.incrementalPrefill.mean, prefillCV: spec.incrementalPrefill.cv,
            meanDecode: spec.decode.mean, meanThink: spec.thinkSeconds, localShare: localShare))
        let enc = JSONEncoder()
        enc.outputFormatting = [.prettyPrinted, .sortedKeys]
        enc.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        guard mixedTp else {
            print(String(decoding: try enc.encode(decision), as: UTF8.self))
            return
        }
        let mixed = MixedPlanner(cost: cost, slo: LatencySLO(ttft: ttft, itl: itl), devices: devices).search(decision.inputs)
        struct Both: Encodable { var homogeneous: PlannerDecision; var mixed: [ScoredMixedPlan]; var mixedEvaluated: Int; var mixedSolveMicroseconds: Double }
        print(String(decoding: try enc.encode(Both(homogeneous: decision, mixed: mixed.ranked, mixedEvaluated: mixed.evaluated,
                                                   mixedSolveMicroseconds: mixed.microseconds)), as: UTF8.self))
    }
}
