/// The cost model a deployment's planner and dispatcher use, as calibrated online from the
/// engine steps its agents timed (`status.planner.calibration`).
public struct CalibrationStatus: Codable, Sendable, Hashable {
    public struct Phase: Codable, Sendable, Hashable {
        /// Observed ÷ profile time; applied only when `inForce`.
        public var scale: Double
        public var samples: Int
        public var inForce: Bool
        /// Mean relative error of the latest steps' times as the profile alone predicts them,
        /// and as the calibrated model does.
        public var profileError: Double?
        public var calibratedError: Double?
        public init(scale: Double, samples: Int, inForce: Bool, profileError: Double? = nil, calibratedError: Double? = nil) {
            self.scale = scale
            self.samples = samples
            self.inForce = inForce
            self.profileError = profileError
            self.calibratedError = calibratedError
        }
    }

    /// The hardware profile calibrated (`cpu-1core`, `H200`, …).
    public var profile: String
    public var prefill: Phase
    public var decode: Phase
    /// Kernel threads per core the running plan implies on its hosts (above 1: instances share
    /// cores, and the planner predicts every plan with its own sharing).
    public var coreSharing: Double?
    /// What a KV export or import holds an engine for (`overheadSeconds + secondsPerToken × tokens`).
    public var kvWork: KVWork?

    public struct KVWork: Codable, Sendable, Hashable {
        public var overheadSeconds: Double
        public var secondsPerToken: Double
        public var samples: Int
        public var inForce: Bool
        public init(overheadSeconds: Double, secondsPerToken: Double, samples: Int, inForce: Bool) {
            self.overheadSeconds = overheadSeconds
            self.secondsPerToken = secondsPerToken
            self.samples = samples
            self.inForce = inForce
        }
    }

    public init(profile: String, prefill: Phase, decode: Phase, coreSharing: Double? = nil) {
        self.profile = profile
        self.prefill = prefill
        self.decode = decode
        self.coreSharing = coreSharing
    }
}
