/// What one forward pass computed and how long it took: the decode tokens (one per decoding
/// sequence, with the context each attends to) and the prefill chunks (new tokens over the
/// tokens already cached). Calibration fits the cost model's step times to these.
public struct EngineStepSample: Sendable, Equatable {
    public struct Chunk: Sendable, Equatable {
        public var history: Int
        public var new: Int
        public init(history: Int, new: Int) {
            self.history = history
            self.new = new
        }
    }

    public var decodeSequences: Int
    /// Tokens the decoding sequences attend to, summed.
    public var decodeContext: Int
    public var prefill: [Chunk]
    public var seconds: Double
    /// The forward pass alone (without any slowdown, sampling or work between steps).
    public var forwardSeconds: Double

    public init(decodeSequences: Int, decodeContext: Int, prefill: [Chunk], seconds: Double, forwardSeconds: Double = 0) {
        self.decodeSequences = decodeSequences
        self.decodeContext = decodeContext
        self.prefill = prefill
        self.seconds = seconds
        self.forwardSeconds = forwardSeconds
    }

    /// A step's sample from its items: a one-token item is a decode token, the rest prefill chunks.
    init(_ items: [ForwardItem], seconds: Double, forwardSeconds: Double) {
        var decode = 0, context = 0
        var chunks: [Chunk] = []
        for item in items {
            if item.tokens.count == 1 {
                decode += 1
                context += item.startPosition + 1
            } else {
                chunks.append(Chunk(history: item.startPosition, new: item.tokens.count))
            }
        }
        self.init(decodeSequences: decode, decodeContext: context, prefill: chunks, seconds: seconds, forwardSeconds: forwardSeconds)
    }
}

/// A KV export or import the engine ran on its thread: the tokens whose KV it serialised or
/// restored, and how long it held the engine (steps wait meanwhile).
public struct EngineKVWorkSample: Sendable, Equatable {
    public var tokens: Int
    public var seconds: Double
    public var export: Bool
    public init(tokens: Int, seconds: Double, export: Bool) {
        self.tokens = tokens
        self.seconds = seconds
        self.export = export
    }
}

/// The last `capacity` step samples and KV work samples not yet taken (older ones are dropped).
struct StepLog {
    static let capacity = 256
    private var samples: [EngineStepSample] = []
    private var kvWork: [EngineKVWorkSample] = []

    mutating func add(_ s: EngineStepSample) {
        if samples.count >= Self.capacity { samples.removeFirst(samples.count - Self.capacity + 1) }
        samples.append(s)
    }

    mutating func add(_ s: EngineKVWorkSample) {
        if kvWork.count >= Self.capacity { kvWork.removeFirst(kvWork.count - Self.capacity + 1) }
        kvWork.append(s)
    }

    mutating func take() -> [EngineStepSample] {
        defer { samples.removeAll(keepingCapacity: true) }
        return samples
    }

    mutating func takeKVWork() -> [EngineKVWorkSample] {
        defer { kvWork.removeAll(keepingCapacity: true) }
        return kvWork
    }
}
