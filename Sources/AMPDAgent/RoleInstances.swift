import AMPDAPI
import AMPDEngine
import AMPDKVPool
import Foundation
import Logging

/// The role instances (prefill or decode engine instances) this agent runs,
/// converged on the controller's assignments at every heartbeat: new ones
/// load their model and report Starting then Running (or Failed, with the
/// reason); ones whose assignment changed (the deployment's KV block size,
/// say) are replaced by a new engine; ones no longer assigned stop taking
/// work, drain (running sequences finish, up to `drainTimeout`) and are dropped.
actor RoleInstances {
    struct Instance {
        let spec: NodeInstance
        /// Distinguishes a re-created instance of the same name from the one a load task was started for.
        let generation: Int
        var engine: NativeEngine?
        var phase: InstancePhase = .starting
        var message: String?
        var drainDeadline: Date?
    }

    var instances: [String: Instance] = [:]
    var generation = 0
    let logger: Logger
    let drainTimeout: TimeInterval
    let kvCapacityTokens: Int
    let slowdown: Double
    let cores: Int

    init(logger: Logger, drainTimeout: TimeInterval = 30, kvCapacityTokens: Int = 8192, slowdown: Double = 1,
         cores: Int = ProcessInfo.processInfo.activeProcessorCount) {
        self.logger = logger
        self.drainTimeout = drainTimeout
        self.kvCapacityTokens = kvCapacityTokens
        self.slowdown = slowdown
        self.cores = cores
    }

    func reconcile(_ desired: [NodeInstance]) async {
        let wanted = Dictionary(desired.map { ($0.instance, $0) }, uniquingKeysWith: { a, _ in a })
        for (name, spec) in wanted where instances[name] == nil || (instances[name]!.spec != spec && instances[name]!.phase != .draining) {
            if let old = instances[name] {
                // Its engine's settings changed: a new engine takes the name; requests running on
                // the old one finish there, and sessions it held recompute on the new one.
                logger.info("Replacing instance", metadata: ["event": "InstanceReplacing", "instance": "\(name)",
                                                            "blockTokens": "\(spec.kvPool?.blockTokens ?? 16)",
                                                            "previousBlockTokens": "\(old.spec.kvPool?.blockTokens ?? 16)"])
            }
            generation += 1
            let inst = Instance(spec: spec, generation: generation)
            instances[name] = inst
            logger.info("Starting instance", metadata: ["event": "InstanceStarting", "instance": "\(name)", "role": "\(spec.role.rawValue)",
                                                         "model": "\(spec.model.name)"])
            start(inst)
        }
        for name in instances.keys where wanted[name] == nil {
            if instances[name]!.phase != .draining {
                instances[name]!.phase = .draining
                instances[name]!.drainDeadline = Date().addingTimeInterval(drainTimeout)
                logger.info("Draining instance", metadata: ["event": "InstanceDraining", "instance": "\(name)"])
            }
            let engine = instances[name]!.engine
            let deadline = instances[name]!.drainDeadline!
            let busy = await engine?.stats().liveSequences ?? 0
            if instances[name]?.phase == .draining, busy == 0 || Date() >= deadline {
                instances[name] = nil
                logger.info("Stopped instance", metadata: ["event": "InstanceStopped", "instance": "\(name)", "abandonedSequences": "\(busy)"])
            }
        }
    }

    func start(_ inst: Instance) {
        let spec = inst.spec
        let generation = inst.generation
        let capacity = kvCapacityTokens
        let slowdown = slowdown
        let threads = threads(spec)
        Task {
            do {
                let path = try ModelLocator.resolve(path: spec.model.source.path, pipPackage: spec.model.source.pip)
                var options = NativeEngineOptions()
                options.kvCapacityTokens = capacity
                options.blockTokens = spec.kvPool?.blockTokens ?? options.blockTokens
                // Ids start at a random point of 2⁶², not at the instance's generation: an agent
                // restarted under the same instance names would otherwise hand out the ids its
                // previous engines did, and a gateway's stale id for a session would name another
                // session's sequence.
                options.firstSequenceID = UInt64.random(in: 1...(1 << 62))
                options.threads = threads
                options.slowdown = slowdown
                let engine = try NativeEngine(modelPath: path, options: options)
                await self.loaded(spec.instance, generation, engine: engine, path: path)
            } catch {
                await self.failed(spec.instance, generation, "\(error)")
            }
        }
    }

    func loaded(_ name: String, _ generation: Int, engine: NativeEngine, path: String) {
        guard let inst = instances[name], inst.generation == generation, inst.phase == .starting else { return }
        instances[name]!.engine = engine
        instances[name]!.phase = .running
        logger.info("Instance running", metadata: ["event": "InstanceRunning", "instance": "\(name)",
                                                   "role": "\(inst.spec.role.rawValue)", "modelPath": "\(path)"])
    }

    func failed(_ name: String, _ generation: Int, _ message: String) {
        guard let inst = instances[name], inst.generation == generation else { return }
        instances[name]!.phase = inst.phase == .draining ? .draining : .failed
        instances[name]!.message = message
        logger.error("Instance failed", metadata: ["event": "InstanceFailed", "instance": "\(name)", "error": "\(message)"])
    }

    func reports() -> [InstanceReport] {
        instances.values.sorted { $0.spec.instance < $1.spec.instance }.map {
            InstanceReport(instance: $0.spec.instance, deployment: $0.spec.deployment, phase: $0.phase, message: $0.message, role: $0.spec.role)
        }
    }

    /// Live engine load, summed over instances; `tokens` counts every token computed so far.
    func load() async -> (running: Int, waiting: Int, kvUsed: Int, kvFree: Int, tokens: Int, evictedIdle: Int) {
        var out = (0, 0, 0, 0, 0, 0)
        for inst in instances.values {
            guard let s = await inst.engine?.stats() else { continue }
            out.0 += s.runningSequences
            out.1 += s.waitingSequences
            out.2 += s.kvBlocksUsed
            out.3 += s.kvBlocksFree
            out.4 += s.prefillTokens + s.decodeTokens
            out.5 += s.evictedIdleSequences
        }
        return out
    }

    /// An instance's kernel threads: its accelerators, at most the host's cores.
    func threads(_ spec: NodeInstance) -> Int { max(1, min(cores, spec.accelerators)) }

    /// The steps each running engine timed since the last call, with the core sharing they ran
    /// under (the running instances' threads per core), for the controller's calibration.
    func timings() -> [InstanceTimings] {
        let running = instances.values.filter { $0.engine != nil && $0.phase != .failed }
        let sharing = max(1, Double(running.reduce(0) { $0 + threads($1.spec) }) / Double(max(1, cores)))
        return running.sorted { $0.spec.instance < $1.spec.instance }.compactMap { inst in
            let steps = inst.engine!.takeStepSamples().suffix(InstanceTimings.maxSteps).map {
                StepTiming(decodeSequences: $0.decodeSequences, decodeContext: $0.decodeContext,
                           prefill: $0.prefill.map { StepTiming.Chunk(history: $0.history, new: $0.new) }, seconds: $0.seconds)
            }
            let work = inst.engine!.takeKVWorkSamples().map { KVWorkTiming(tokens: $0.tokens, seconds: $0.seconds, export: $0.export) }
            guard !steps.isEmpty || !work.isEmpty else { return nil }
            return InstanceTimings(instance: inst.spec.instance, deployment: inst.spec.deployment, role: inst.spec.role,
                                   tensor: inst.spec.tensor, coreSharing: sharing, steps: Array(steps), kvWork: work.isEmpty ? nil : work)
        }
    }

    func phases() -> [InstancePhase: Int] {
        var c: [InstancePhase: Int] = [:]
        for i in instances.values { c[i.phase, default: 0] += 1 }
        return c
    }

    func engine(_ instance: String) -> NativeEngine? { instances[instance]?.engine }

    /// The KV pool each served deployment asks for (`spec.kvPool`), by deployment.
    func poolConfigurations() -> [String: KVPoolConfiguration] {
        var out: [String: KVPoolConfiguration] = [:]
        for i in instances.values {
            let kv = i.spec.kvPool ?? KVPoolSpec()
            out[i.spec.deployment] = KVPoolConfiguration(
                capacityBytes: Int(kv.capacityPerAgent?.bytes ?? 1 << 30), encrypt: (kv.encryption ?? .aes256gcm) == .aes256gcm,
                tenantIsolation: kv.tenantIsolation ?? true, maxLeaseSeconds: UInt32(kv.leaseSeconds ?? 120))
        }
        return out
    }

    /// The engines' KV block size, by deployment.
    func blockTokens() -> [String: Int] {
        var out: [String: Int] = [:]
        for i in instances.values { out[i.spec.deployment] = i.spec.kvPool?.blockTokens ?? 16 }
        return out
    }

    /// Each running instance's engine block size (for metrics).
    func engineBlockTokens() -> [String: Int] {
        var out: [String: Int] = [:]
        for (name, i) in instances { if let e = i.engine { out[name] = e.options.blockTokens } }
        return out
    }
}
