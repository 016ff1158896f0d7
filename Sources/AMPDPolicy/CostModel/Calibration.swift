import Foundation

/// One engine step as observed: what it computed, how long it took, and how many kernel
/// threads per core its node ran meanwhile (above 1, the step was slowed by sharing).
public struct StepObservation: Sendable, Equatable {
    public var decodeSequences: Int
    public var decodeContext: Int
    public var chunks: [Chunk]
    public var seconds: Double
    public var coreSharing: Double
    public var tp: Int

    public struct Chunk: Sendable, Equatable {
        public var history: Int
        public var new: Int
        public init(history: Int, new: Int) {
            self.history = history
            self.new = new
        }
    }

    public init(decodeSequences: Int, decodeContext: Int, chunks: [Chunk], seconds: Double, coreSharing: Double = 1, tp: Int = 1) {
        self.decodeSequences = decodeSequences
        self.decodeContext = decodeContext
        self.chunks = chunks
        self.seconds = seconds
        self.coreSharing = coreSharing
        self.tp = tp
    }
}

/// A KV export or import an engine ran, as observed.
public struct KVWorkObservation: Sendable, Equatable {
    public var tokens: Int
    public var seconds: Double
    public var coreSharing: Double
    public init(tokens: Int, seconds: Double, coreSharing: Double = 1) {
        self.tokens = tokens
        self.seconds = seconds
        self.coreSharing = coreSharing
    }
}

/// Online calibration of a cost model from observed engine steps: two scales, observed ÷
/// roofline time of decode steps and of prefill work, fitted by weighted least squares over
/// every step (`t ≈ s_d · D + s_p · P`, where D is the roofline time of the step's decode part
/// and P what its prefill chunks add; pure decode and pure prefill steps pin one scale each,
/// fused steps both). Each step weighs by the inverse square of its profile time, so short
/// and long steps count alike; old steps fade (`forgetting` per step), so the fit follows a machine that changes.
/// A step's time is first divided by the core sharing it ran under, so the scales describe an
/// instance with its cores to itself. Bounded: a scale moves by at most `maxStep`× per update
/// and stays within `range`; a phase is in force only after `minimumSamples` steps of it,
/// before that the profile's own figure holds. Pure: the controller feeds it and reads it.
public struct Calibration: Sendable, Equatable, Codable {
    public struct Phase: Sendable, Equatable, Codable {
        /// Observed ÷ profile time (1 until in force).
        public var scale: Double
        /// Steps that carried this phase's work.
        public var samples: Int
        /// How far the predicted total time of this phase's recent steps (the last ~50, older
        /// ones fading) was from the observed total, ÷ the observed: under the profile alone,
        /// and under the calibration in force when each step arrived (a prediction, not a fit).
        public var profileError: Double?
        public var calibratedError: Double?
        // Decayed sums behind the errors: observed, profile-predicted, calibration-predicted.
        var observed = 0.0, byProfile = 0.0, byCalibration = 0.0

        mutating func track(observed t: Double, profile: Double, calibrated: Double) {
            let keep = 0.98
            observed = observed * keep + t
            byProfile = byProfile * keep + profile
            byCalibration = byCalibration * keep + calibrated
            profileError = abs(observed - byProfile) / observed
            calibratedError = abs(observed - byCalibration) / observed
        }
        public init(scale: Double = 1, samples: Int = 0, profileError: Double? = nil, calibratedError: Double? = nil) {
            self.scale = scale
            self.samples = samples
            self.profileError = profileError
            self.calibratedError = calibratedError
        }
    }

    public static let minimumSamples = 20
    public static let range: ClosedRange<Double> = 0.02...100
    public static let maxStep = 2.0
    public static let forgetting = 0.99

    public var prefill = Phase()
    public var decode = Phase()
    /// What a KV export or import holds an engine for: `overhead + perToken × tokens`, fitted
    /// by least squares over the exports and imports (old ones fading); in force after
    /// `minimumKVSamples`.
    public var kvWork = KVWork()
    public static let minimumKVSamples = 10

    public struct KVWork: Sendable, Equatable, Codable {
        public var overheadSeconds = 0.0
        public var secondsPerToken = 0.0
        public var samples = 0
        var n = 0.0, sx = 0.0, sxx = 0.0, sy = 0.0, sxy = 0.0
        public init() {}

        mutating func observe(tokens: Int, seconds: Double) {
            let keep = Calibration.forgetting, x = Double(tokens)
            n = n * keep + 1; sx = sx * keep + x; sxx = sxx * keep + x * x; sy = sy * keep + seconds; sxy = sxy * keep + x * seconds
            samples += 1
            let det = n * sxx - sx * sx
            if det > 1e-9 * n * sxx {
                secondsPerToken = max(0, (n * sxy - sx * sy) / det)
                overheadSeconds = max(0, (sy - secondsPerToken * sx) / n)
            } else if sx > 0 {
                secondsPerToken = max(0, sy / sx)
                overheadSeconds = 0
            }
        }
    }
    // Decayed sums of the normal equations, each step weighted by 1/(its profile time)².
    var spp = 0.0, spd = 0.0, sdd = 0.0, spt = 0.0, sdt = 0.0

    public init() {}

    /// Whether a phase's scale is in force.
    public func inForce(_ phase: Phase) -> Bool { phase.samples >= Self.minimumSamples }

    /// `profile` with the scales in force (a phase not yet in force keeps the profile's figure),
    /// and the KV handling times once measured.
    public func apply(to profile: CostModel) -> CostModel {
        var m = profile.scaled(prefill: inForce(prefill) ? prefill.scale : 1, decode: inForce(decode) ? decode.scale : 1)
        if kvWork.samples >= Self.minimumKVSamples {
            m.hardware.kvHandlingOverheadSeconds = kvWork.overheadSeconds
            m.hardware.kvHandlingSecondsPerToken = kvWork.secondsPerToken
        }
        return m
    }

    /// Takes in KV exports and imports (their time divided by the core sharing they ran under).
    public mutating func observe(kvWork work: [KVWorkObservation]) {
        for w in work where w.seconds.isFinite && w.seconds >= 0 && w.tokens > 0 {
            kvWork.observe(tokens: w.tokens, seconds: w.seconds / max(1, w.coreSharing))
        }
    }

    /// Takes in a batch of steps observed on instances that `profile` describes.
    public mutating func observe(_ steps: [StepObservation], profile: CostModel) {
        var parts: [(d: Double, p: Double, t: Double)] = []
        for s in steps where s.seconds > 0 && s.seconds.isFinite {
            let (d, p) = profile.mixedStepParts(batch: s.decodeSequences, context: s.decodeContext,
                                                chunks: s.chunks.map { ($0.history, $0.new) }, tp: s.tp)
            let t = s.seconds / max(1, s.coreSharing)
            guard d + p > 0 else { continue }
            parts.append((d, p, t))
            // Relative to the step's size under the profile (not its observed time, which
            // would favour the faster steps and hold a slowing machine back).
            let w = 1 / ((d + p) * (d + p))
            spp = spp * Self.forgetting + w * p * p
            spd = spd * Self.forgetting + w * p * d
            sdd = sdd * Self.forgetting + w * d * d
            spt = spt * Self.forgetting + w * p * t
            sdt = sdt * Self.forgetting + w * d * t
            if p > 0.1 * (d + p) { prefill.samples += 1 }
            if d > 0.1 * (d + p) { decode.samples += 1 }
        }
        guard !parts.isEmpty else { return }
        // How well the profile, and the calibration in force, predicted these steps (each
        // counts for the phase that is the larger part of it).
        let (pIn, dIn) = (inForce(prefill) ? prefill.scale : 1, inForce(decode) ? decode.scale : 1)
        for x in parts {
            let calibrated = dIn * x.d + pIn * x.p
            if x.p > x.d { prefill.track(observed: x.t, profile: x.d + x.p, calibrated: calibrated) }
            else { decode.track(observed: x.t, profile: x.d + x.p, calibrated: calibrated) }
        }
        let before = (prefill.scale, decode.scale)
        var (ps, ds) = before
        let det = spp * sdd - spd * spd
        if det > 1e-9 * spp * sdd {
            ps = (spt * sdd - sdt * spd) / det
            ds = (sdt * spp - spt * spd) / det
        } else if spp > 0 && sdd == 0 {
            ps = spt / spp
        } else if sdd > 0 && spp == 0 {
            ds = sdt / sdd
        } else if sdd > 0 {
            // Collinear: fit the decode scale with the prefill one held.
            ds = (sdt - ps * spd) / sdd
        }
        func bounded(_ x: Double, from old: Double) -> Double {
            guard x.isFinite, x > 0 else { return old }
            return min(max(x, old / Self.maxStep, Self.range.lowerBound), old * Self.maxStep, Self.range.upperBound)
        }
        prefill.scale = bounded(ps, from: before.0)
        decode.scale = bounded(ds, from: before.1)
    }

    /// Lets the newest steps dominate: what the planner asks for when observed attainment
    /// disagrees with the prediction (the machine may have changed).
    public mutating func quicken(keeping share: Double = 0.1) {
        spp *= share; spd *= share; sdd *= share; spt *= share; sdt *= share
    }
}

/// Instances that share a host's cores: a plan running more kernel threads than the hosts
/// have cores runs each step that many times slower (the planner's "capacity as it is").
public struct CoreSharing: Sendable, Equatable, Codable {
    /// Kernel threads of one device (a CPU instance of N cores runs N).
    public var threadsPerDevice: Int
    /// Cores of the hosts the pools run on.
    public var cores: Int

    public init(threadsPerDevice: Int, cores: Int) {
        self.threadsPerDevice = threadsPerDevice
        self.cores = cores
    }

    /// How much slower each instance of `plan` runs than on cores of its own.
    public func factor(_ plan: DeploymentPlan) -> Double {
        max(1, Double(plan.devices * threadsPerDevice) / Double(max(1, cores)))
    }
}
