import AMPDAPI
import AMPDPolicy

/// The live side of calibration, pure: agents' step timings in, the planner's observations
/// out; a deployment's calibration as status and as an exportable profile; core sharing from
/// the nodes; and whether observed attainment disagrees with the prediction.
public enum LiveCalibration {
    /// The steps an instance timed, as the calibration takes them.
    public static func observations(_ t: InstanceTimings) -> [StepObservation] {
        t.steps.map {
            StepObservation(decodeSequences: $0.decodeSequences, decodeContext: $0.decodeContext,
                            chunks: $0.prefill.map { StepObservation.Chunk(history: $0.history, new: $0.new) },
                            seconds: $0.seconds, coreSharing: t.coreSharing, tp: t.tensor)
        }
    }

    /// The KV exports and imports an instance timed.
    public static func kvWork(_ t: InstanceTimings) -> [KVWorkObservation] {
        (t.kvWork ?? []).map { KVWorkObservation(tokens: $0.tokens, seconds: $0.seconds, coreSharing: t.coreSharing) }
    }

    /// How a CPU deployment's instances share their hosts' cores: each instance runs its
    /// pool's cores in threads, on the Ready nodes of its kind. Nil for GPUs.
    public static func sharing(_ d: ServingDeployment, nodes: [Node]) -> CoreSharing? {
        let pool = d.spec.prefill ?? d.spec.decode
        guard pool.acceleratorKind == "cpu" else { return nil }
        let hosts = nodes.filter { $0.status.phase == .ready && $0.spec.capacity.accelerator == "cpu" }
        let cores = hosts.reduce(0) { $0 + ($1.spec.capacity.cores ?? $1.spec.capacity.count) }
        guard cores > 0 else { return nil }
        return CoreSharing(threadsPerDevice: pool.acceleratorsPerInstance, cores: cores)
    }

    public static func status(_ c: Calibration, profile: String, sharing: CoreSharing?, running: DeploymentPlan?) -> CalibrationStatus {
        func phase(_ p: Calibration.Phase) -> CalibrationStatus.Phase {
            .init(scale: round3(p.scale), samples: p.samples, inForce: c.inForce(p),
                  profileError: p.profileError.map(round3), calibratedError: p.calibratedError.map(round3))
        }
        var s = CalibrationStatus(profile: profile, prefill: phase(c.prefill), decode: phase(c.decode),
                                  coreSharing: running.flatMap { plan in sharing.map { round3($0.factor(plan)) } })
        s.kvWork = CalibrationStatus.KVWork(overheadSeconds: c.kvWork.overheadSeconds, secondsPerToken: c.kvWork.secondsPerToken,
                                            samples: c.kvWork.samples, inForce: c.kvWork.samples >= Calibration.minimumKVSamples)
        return s
    }

    /// The deployment's calibrated profiles, for `ampd plan --profiles` and `ampd sim --profiles`:
    /// its hardware profile under the name `<profile>@<namespace>.<name>`, with the scales in
    /// force, and its model profile.
    public static func catalog(_ d: ServingDeployment, calibration: Calibration?, catalog: ProfileCatalog = .builtin) throws(AutoscalingProblem) -> ProfileCatalog {
        let profile = try LivePlanner.costModel(d, catalog: catalog)
        var hardware = (calibration?.apply(to: profile) ?? profile).hardware
        hardware.name = exportedName(profile.hardware.name, d)
        return ProfileCatalog(hardware: [hardware], models: [profile.model])
    }

    /// The cost model a gateway's dispatcher uses for `d`: its profile with the calibration the
    /// planner last published (`status.planner.calibration`, the scales in force), slowed by
    /// the core sharing of the running plan. Nil without a profile.
    public static func dispatcherCost(_ d: ServingDeployment) -> CostModel? {
        guard let profile = try? LivePlanner.costModel(d) else { return nil }
        guard let c = d.status?.planner?.calibration else { return profile }
        var m = profile.scaled(prefill: c.prefill.inForce ? c.prefill.scale : 1, decode: c.decode.inForce ? c.decode.scale : 1)
        if let kv = c.kvWork, kv.inForce {
            m.hardware.kvHandlingOverheadSeconds = kv.overheadSeconds
            m.hardware.kvHandlingSecondsPerToken = kv.secondsPerToken
        }
        return m.sharingCores(c.coreSharing ?? 1)
    }

    public static func exportedName(_ profile: String, _ d: ServingDeployment) -> String {
        "\(profile)@\(d.metadata.namespaceOrDefault).\(d.metadata.name)"
    }

    /// Whether what the gateways observed disagrees with what the planner predicts for the
    /// running plan: observed round attainment below the target and more than `tolerance`
    /// below the prediction. Names the component (TTFT or TPOT) with the larger gap.
    public static func mismatch(running: ScoredPlan?, observed s: WorkloadSummary, target: Double, tolerance: Double = 0.10) -> String? {
        guard let p = running, let o = s.roundAttainment, o < target, p.roundAttainment - o > tolerance else { return nil }
        let ttftGap = p.ttftAttainment - (s.ttftAttainment ?? o), tpotGap = p.itlAttainment - (s.tpotAttainment ?? o)
        let (what, predicted, observed) = ttftGap >= tpotGap
            ? ("TTFT (prefill, its queue and KV transfer)", p.ttftAttainment, s.ttftAttainment ?? o)
            : ("TPOT (decode steps)", p.itlAttainment, s.tpotAttainment ?? o)
        return "predicted \(pct(p.roundAttainment)) of rounds within the SLO for \(p.plan), observed \(pct(o)); "
            + "\(what) disagrees most: predicted \(pct(predicted)), observed \(pct(observed))"
    }

    static func pct(_ x: Double) -> String { "\((x * 1000).rounded() / 10)%" }
    static func round3(_ x: Double) -> Double { x.isFinite ? (x * 1000).rounded() / 1000 : -1 }
}
