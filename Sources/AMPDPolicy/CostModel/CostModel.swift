/// Predicted times of prefill, decode steps and KV transfers for one model on
/// one accelerator type at a tensor-parallel degree: a roofline (the larger of
/// compute time and memory time) plus all-reduce communication and a fixed
/// per-step overhead — the shape DistServe, Vidur and similar simulators use.
public struct CostModel: Sendable, Equatable {
    public var model: ModelProfile
    public var hardware: HardwareProfile

    public init(model: ModelProfile, hardware: HardwareProfile) {
        self.model = model
        self.hardware = hardware
    }

    var attentionWidth: Double { Double(model.heads * model.headDim) }

    /// FLOPs of a prefill of `n` new tokens over `h` cached ones: the linear
    /// layers (2 per active parameter per token) plus causal attention
    /// (QKᵀ and PV: 4 · layers · width per token per attended position).
    public func prefillFLOPs(history h: Int, new n: Int) -> Double {
        let linear = 2 * model.activeParams * Double(n)
        let attended = Double(n) * (Double(h) + Double(n + 1) / 2)
        return linear + 4 * Double(model.layers) * attentionWidth * attended
    }

    /// Weight bytes one forward pass reads for `tokens` tokens: all weights for
    /// dense models; for mixture-of-experts, the active share grows with the
    /// batch until every expert is touched.
    public func weightBytesRead(tokens: Int) -> Double {
        min(model.totalParams, model.activeParams * Double(max(1, tokens))) * model.bytesPerParam
    }

    /// Seconds of a ring all-reduce of `tokens` hidden vectors, twice per layer.
    public func allReduceSeconds(tokens: Int, tp: Int) -> Double {
        guard tp > 1 else { return 0 }
        let bytes = Double(tokens * model.hidden) * 2
        let perReduce = 2 * Double(tp - 1) / Double(tp) * bytes / (hardware.intraNodeGBps * 1e9)
        return 2 * Double(model.layers) * perReduce
    }

    func computeSeconds(_ flops: Double, tp: Int) -> Double {
        flops / (Double(tp) * hardware.peakTFLOPS * 1e12 * hardware.computeEfficiency)
    }

    func memorySeconds(_ bytes: Double, tp: Int) -> Double {
        bytes / (Double(tp) * hardware.memoryGBps * 1e9 * hardware.memoryEfficiency)
    }

    /// Observed ÷ roofline times (calibration); 1 when not calibrated.
    public var prefillScale: Double { hardware.prefillTimeScale ?? 1 }
    public var decodeScale: Double { hardware.decodeTimeScale ?? 1 }

    /// This model with its prefill and decode times multiplied by `prefill` and `decode`
    /// (on top of any calibration it has): instances sharing cores, say.
    public func scaled(prefill: Double, decode: Double) -> CostModel {
        var m = self
        m.hardware.prefillTimeScale = prefillScale * prefill
        m.hardware.decodeTimeScale = decodeScale * decode
        return m
    }

    /// This model on cores shared `factor` to one: all engine work takes that much longer.
    public func sharingCores(_ factor: Double) -> CostModel {
        guard factor != 1 else { return self }
        var m = scaled(prefill: factor, decode: factor)
        m.hardware.kvHandlingOverheadSeconds = hardware.kvHandlingOverheadSeconds.map { $0 * factor }
        m.hardware.kvHandlingSecondsPerToken = hardware.kvHandlingSecondsPerToken.map { $0 * factor }
        return m
    }

    /// Seconds to prefill `n` new tokens on top of `h` tokens already cached.
    public func prefillSeconds(history h: Int, new n: Int, tp: Int) -> Double {
        rooflinePrefillSeconds(history: h, new: n, tp: tp) * prefillScale
    }

    /// The roofline's prefill time, without calibration.
    public func rooflinePrefillSeconds(history h: Int, new n: Int, tp: Int) -> Double {
        guard n > 0 else { return 0 }
        let compute = computeSeconds(prefillFLOPs(history: h, new: n), tp: tp)
        let memory = memorySeconds(weightBytesRead(tokens: n) + kvBytes(tokens: h + n), tp: tp)
        return max(compute, memory) + allReduceSeconds(tokens: n, tp: tp) + hardware.stepOverheadSeconds
    }

    /// Seconds of one decode step for `batch` sequences holding `context` tokens in total.
    public func decodeStepSeconds(batch b: Int, context: Int, tp: Int) -> Double {
        rooflineDecodeStepSeconds(batch: b, context: context, tp: tp) * decodeScale
    }

    /// The roofline's decode step time, without calibration.
    public func rooflineDecodeStepSeconds(batch b: Int, context: Int, tp: Int) -> Double {
        guard b > 0 else { return 0 }
        let flops = 2 * model.activeParams * Double(b) + 4 * Double(model.layers) * attentionWidth * Double(context)
        let compute = computeSeconds(flops, tp: tp)
        let memory = memorySeconds(weightBytesRead(tokens: b) + kvBytes(tokens: context), tp: tp)
        return max(compute, memory) + allReduceSeconds(tokens: b, tp: tp) + hardware.stepOverheadSeconds
    }

    /// Seconds of one fused iteration of chunked-prefill continuous batching
    /// (vLLM): the decode batch plus prompt chunks in one forward pass, so the
    /// weights are read once for all of them. Calibrated as its parts: the decode step's
    /// roofline time at the decode scale, what the chunks add at the prefill scale.
    public func mixedStepSeconds(batch b: Int, context: Int, chunks: [(history: Int, new: Int)], tp: Int) -> Double {
        let (d, p) = mixedStepParts(batch: b, context: context, chunks: chunks, tp: tp)
        return d * decodeScale + p * prefillScale
    }

    /// A fused step's roofline time split into the decode step alone and what the prefill
    /// chunks add to it (uncalibrated); what calibration fits its two scales to.
    public func mixedStepParts(batch b: Int, context: Int, chunks: [(history: Int, new: Int)], tp: Int) -> (decode: Double, prefill: Double) {
        let decode = rooflineDecodeStepSeconds(batch: b, context: context, tp: tp)
        return (decode, max(0, rooflineMixedStepSeconds(batch: b, context: context, chunks: chunks, tp: tp) - decode))
    }

    func rooflineMixedStepSeconds(batch b: Int, context: Int, chunks: [(history: Int, new: Int)], tp: Int) -> Double {
        let newTokens = chunks.reduce(0) { $0 + $1.new }
        guard b + newTokens > 0 else { return 0 }
        var flops = 2 * model.activeParams * Double(b) + 4 * Double(model.layers) * attentionWidth * Double(context)
        var kv = kvBytes(tokens: context)
        for c in chunks {
            flops += prefillFLOPs(history: c.history, new: c.new)
            kv += kvBytes(tokens: c.history + c.new)
        }
        let compute = computeSeconds(flops, tp: tp)
        let memory = memorySeconds(weightBytesRead(tokens: b + newTokens) + kv, tp: tp)
        return max(compute, memory) + allReduceSeconds(tokens: b + newTokens, tp: tp) + hardware.stepOverheadSeconds
    }

    public func kvBytes(tokens: Int) -> Double { Double(tokens) * model.kvBytesPerToken }

    /// Seconds a KV export or import of `tokens` tokens holds an engine (serialising or
    /// restoring its blocks), as calibrated; 0 when never measured.
    public func kvHandlingSeconds(tokens: Int) -> Double {
        guard tokens > 0 else { return 0 }
        return (hardware.kvHandlingOverheadSeconds ?? 0) + (hardware.kvHandlingSecondsPerToken ?? 0) * Double(tokens)
    }

    /// Seconds to move the KV of `tokens` tokens between instances (latency +
    /// bytes over the link; a TP group sends its shards in parallel).
    public func kvTransferSeconds(tokens: Int, crossNode: Bool, tp: Int = 1) -> Double {
        guard tokens > 0 else { return 0 }
        let bw = (crossNode ? hardware.interNodeGBps : hardware.intraNodeGBps) * 1e9 * Double(max(1, tp))
        return hardware.transferLatencySeconds + kvBytes(tokens: tokens) / bw
    }

    /// Tokens of KV one instance can hold: memory left after the weights (90% usable).
    public func kvCapacityTokens(tp: Int) -> Int {
        let free = Double(tp) * hardware.memoryGiB * 1_073_741_824 * 0.9 - model.weightBytes
        return max(0, Int(free / model.kvBytesPerToken))
    }

    /// Whether the weights fit on `tp` devices with room for some KV.
    public func fits(tp: Int) -> Bool { kvCapacityTokens(tp: tp) > 4096 }
}

/// Fits a hardware profile's efficiencies and step overhead to measured
/// timings (least squares), so the same model predicts a machine it was
/// measured on — the native engine on a CPU included.
public enum CostModelFit {
    public struct PrefillSample: Sendable { public var history, new: Int; public var seconds: Double
        public init(history: Int, new: Int, seconds: Double) { self.history = history; self.new = new; self.seconds = seconds } }
    public struct DecodeSample: Sendable { public var batch, context: Int; public var seconds: Double
        public init(batch: Int, context: Int, seconds: Double) { self.batch = batch; self.context = context; self.seconds = seconds } }

    /// Prefill is fitted as compute-bound (`t = c + FLOPs / (peak · e_c)`),
    /// decode as memory-bound (`t = c + bytes / (bw · e_m)`); the overhead is
    /// the mean of both intercepts. Needs two distinct sizes of each.
    public static func fit(_ base: CostModel, prefill: [PrefillSample], decode: [DecodeSample], tp: Int = 1) throws(PolicyError) -> CostModel {
        let px = prefill.map { base.prefillFLOPs(history: $0.history, new: $0.new) / Double(tp) }
        let dx = decode.map { base.weightBytesRead(tokens: $0.batch) / Double(tp) + base.kvBytes(tokens: $0.context) / Double(tp) }
        guard let (pc, pSlope) = linear(px, prefill.map(\.seconds)), let (dc, dSlope) = linear(dx, decode.map(\.seconds)),
              pSlope > 0, dSlope > 0 else {
            throw .invalidInput("fitting needs at least two prefill and two decode samples of different sizes, with times growing with size")
        }
        var m = base
        m.hardware.computeEfficiency = 1 / (pSlope * m.hardware.peakTFLOPS * 1e12)
        m.hardware.memoryEfficiency = 1 / (dSlope * m.hardware.memoryGBps * 1e9)
        m.hardware.stepOverheadSeconds = max(0, (pc + dc) / 2)
        return m
    }

    /// Ordinary least squares `y = a + b·x`; nil when x has no spread.
    static func linear(_ x: [Double], _ y: [Double]) -> (Double, Double)? {
        guard x.count >= 2, x.count == y.count else { return nil }
        let n = Double(x.count)
        let mx = x.reduce(0, +) / n, my = y.reduce(0, +) / n
        let sxx = x.reduce(0) { $0 + ($1 - mx) * ($1 - mx) }
        guard sxx > 0 else { return nil }
        let sxy = zip(x, y).reduce(0) { $0 + ($1.0 - mx) * ($1.1 - my) }
        let b = sxy / sxx
        return (my - b * mx, b)
    }
}
