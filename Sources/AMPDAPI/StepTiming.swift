/// One engine step as an agent timed it: the decode tokens (one per decoding sequence, with
/// the context they attend to, summed) and the prefill chunks it computed, and its seconds.
public struct StepTiming: Codable, Sendable, Hashable {
    public struct Chunk: Codable, Sendable, Hashable {
        /// Tokens already cached before the chunk, and the chunk's new tokens.
        public var history: Int
        public var new: Int
        public init(history: Int, new: Int) {
            self.history = history
            self.new = new
        }
    }

    public var decodeSequences: Int
    public var decodeContext: Int
    public var prefill: [Chunk]
    public var seconds: Double

    public init(decodeSequences: Int, decodeContext: Int, prefill: [Chunk], seconds: Double) {
        self.decodeSequences = decodeSequences
        self.decodeContext = decodeContext
        self.prefill = prefill
        self.seconds = seconds
    }
}

/// A KV export or import an engine ran (it holds the engine meanwhile): the tokens whose KV
/// it moved, and its seconds.
public struct KVWorkTiming: Codable, Sendable, Hashable {
    public var tokens: Int
    public var seconds: Double
    public var export: Bool
    public init(tokens: Int, seconds: Double, export: Bool) {
        self.tokens = tokens
        self.seconds = seconds
        self.export = export
    }
}

/// The steps one instance timed since the node's last heartbeat (`Heartbeat.timings`): the
/// controller calibrates each deployment's cost model with them.
public struct InstanceTimings: Codable, Sendable, Hashable {
    public static let maxSteps = 256
    public var instance: String
    /// `namespace/name` of the owning deployment.
    public var deployment: String
    public var role: InstanceRole
    /// Tensor-parallel degree of the instance.
    public var tensor: Int
    /// Kernel threads of the node's running instances per core while these steps ran: above 1
    /// the instances shared cores, and each step took longer for it.
    public var coreSharing: Double
    public var steps: [StepTiming]
    /// Its KV exports and imports since the last heartbeat (at most `maxSteps`).
    public var kvWork: [KVWorkTiming]?

    public init(instance: String, deployment: String, role: InstanceRole, tensor: Int, coreSharing: Double, steps: [StepTiming],
                kvWork: [KVWorkTiming]? = nil) {
        self.kvWork = kvWork
        self.instance = instance
        self.deployment = deployment
        self.role = role
        self.tensor = tensor
        self.coreSharing = coreSharing
        self.steps = steps
    }

    /// Every out-of-range field, each named (`timings[i].…`).
    public func problems(at path: String) -> [FieldError] {
        var e: [FieldError] = []
        if steps.count > Self.maxSteps { e.append(FieldError("\(path).steps", "at most \(Self.maxSteps) steps per heartbeat; got \(steps.count)")) }
        if !(tensor >= 1 && tensor <= 64) { e.append(FieldError("\(path).tensor", "must be from 1 to 64; got \(tensor)")) }
        if !(coreSharing.isFinite && coreSharing >= 1 && coreSharing <= 1024) {
            e.append(FieldError("\(path).coreSharing", "must be from 1 to 1024; got \(coreSharing)"))
        }
        for (i, s) in steps.enumerated() {
            let p = "\(path).steps[\(i)]"
            if !(s.seconds.isFinite && s.seconds > 0 && s.seconds < 3600) { e.append(FieldError("\(p).seconds", "must be in (0, 3600); got \(s.seconds)")) }
            if s.decodeSequences < 0 || s.decodeContext < 0 { e.append(FieldError("\(p).decodeSequences", "decodeSequences and decodeContext must not be negative")) }
            if s.prefill.count > 1024 { e.append(FieldError("\(p).prefill", "at most 1024 chunks; got \(s.prefill.count)")) }
            if s.prefill.contains(where: { $0.history < 0 || $0.new < 1 || $0.history > 1 << 24 || $0.new > 1 << 24 }) {
                e.append(FieldError("\(p).prefill", "chunks need history ≥ 0 and new ≥ 1 (each below 2^24)"))
            }
            if s.decodeSequences + s.prefill.count == 0 { e.append(FieldError(p, "a step computes at least one token")) }
        }
        let work = kvWork ?? []
        if work.count > Self.maxSteps { e.append(FieldError("\(path).kvWork", "at most \(Self.maxSteps) per heartbeat; got \(work.count)")) }
        for (i, w) in work.enumerated() where !(w.seconds.isFinite && w.seconds >= 0 && w.seconds < 3600 && w.tokens >= 0 && w.tokens < 1 << 24) {
            e.append(FieldError("\(path).kvWork[\(i)]", "needs tokens in [0, 2^24) and seconds in [0, 3600)"))
        }
        return e
    }
}
