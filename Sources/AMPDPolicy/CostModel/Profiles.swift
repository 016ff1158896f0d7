import Yams

/// An accelerator's capabilities, as a roofline model needs them.
public struct HardwareProfile: Sendable, Equatable, Codable {
    public var name: String
    /// Dense BF16/FP16 tensor throughput, TFLOP/s.
    public var peakTFLOPS: Double
    /// HBM (or DRAM) bandwidth, GB/s.
    public var memoryGBps: Double
    /// Device memory, GiB.
    public var memoryGiB: Double
    /// Per-device bandwidth to peers in the same server (NVLink), GB/s.
    public var intraNodeGBps: Double
    /// Per-device bandwidth to other servers (InfiniBand/RoCE), GB/s.
    public var interNodeGBps: Double
    public var devicesPerNode: Int
    /// Fraction of peak compute reached by large matrix products (fitted).
    public var computeEfficiency: Double
    /// Fraction of peak bandwidth reached when streaming weights and KV (fitted).
    public var memoryEfficiency: Double
    /// Fixed cost of one forward pass (kernel launches, scheduling), seconds (fitted).
    public var stepOverheadSeconds: Double
    /// One-way latency of a KV transfer setup, seconds.
    public var transferLatencySeconds: Double
    /// Observed ÷ roofline time of prefill work and of decode steps on this hardware, as online
    /// calibration measured them (absent: 1, the roofline as fitted). A calibrated profile
    /// exported by the controller carries them.
    public var prefillTimeScale: Double?
    public var decodeTimeScale: Double?
    /// Seconds an engine is held by a KV export or import: a fixed part and a part per token
    /// moved (absent: 0; calibration measures them).
    public var kvHandlingOverheadSeconds: Double?
    public var kvHandlingSecondsPerToken: Double?
}

/// A model's shape, as a roofline model needs it.
public struct ModelProfile: Sendable, Equatable, Codable {
    public var name: String
    /// Parameters touched per token (all of them for dense models; the routed
    /// experts' share plus shared weights for mixture-of-experts).
    public var activeParams: Double
    /// All parameters (what must sit in memory).
    public var totalParams: Double
    public var layers: Int
    public var hidden: Int
    public var heads: Int
    public var kvHeads: Int
    public var headDim: Int
    public var bytesPerParam: Double
    public var kvBytesPerElement: Double

    /// KV cache bytes per token (keys and values, all layers).
    public var kvBytesPerToken: Double { 2 * Double(layers * kvHeads * headDim) * kvBytesPerElement }
    public var weightBytes: Double { totalParams * bytesPerParam }
}

/// A set of profiles, as read from YAML (`hardware:` and `models:` lists).
public struct ProfileCatalog: Sendable, Codable, Equatable {
    public var hardware: [HardwareProfile]
    public var models: [ModelProfile]

    public init(hardware: [HardwareProfile], models: [ModelProfile]) {
        self.hardware = hardware
        self.models = models
    }

    public func hardware(_ name: String) throws(PolicyError) -> HardwareProfile {
        guard let h = hardware.first(where: { $0.name == name }) else {
            throw .unknownProfile("hardware '\(name)' (known: \(hardware.map(\.name).joined(separator: ", ")))")
        }
        return h
    }

    public func model(_ name: String) throws(PolicyError) -> ModelProfile {
        guard let m = models.first(where: { $0.name == name }) else {
            throw .unknownProfile("model '\(name)' (known: \(models.map(\.name).joined(separator: ", ")))")
        }
        return m
    }

    /// Profiles from YAML text; a field error names the entry and field.
    public static func load(yaml: String) throws(PolicyError) -> ProfileCatalog {
        do {
            return try YAMLDecoder().decode(ProfileCatalog.self, from: yaml)
        } catch {
            throw .invalidProfile("\(error)")
        }
    }

    /// The catalog as YAML, as `load(yaml:)` reads it.
    public func yaml() throws(PolicyError) -> String {
        do { return try YAMLEncoder().encode(self) } catch { throw .invalidProfile("\(error)") }
    }

    /// This catalog with `other`'s entries added or replacing same-named ones.
    public func merging(_ other: ProfileCatalog) -> ProfileCatalog {
        var out = self
        for h in other.hardware { out.hardware.removeAll { $0.name == h.name }; out.hardware.append(h) }
        for m in other.models { out.models.removeAll { $0.name == m.name }; out.models.append(m) }
        return out
    }

    /// The built-in profiles, parsed from `builtinYAML`.
    public static let builtin: ProfileCatalog = {
        // The embedded YAML is covered by a test; it cannot fail at runtime.
        (try? load(yaml: builtinYAML)) ?? ProfileCatalog(hardware: [], models: [])
    }()

    /// Sources are cited per entry. Efficiencies and overheads are starting
    /// points that `CostModelFit` replaces with values fitted to measurements.
    public static let builtinYAML = """
        hardware:
          # NVIDIA H20 datasheet: 148 TFLOPS dense BF16, 4.0 TB/s HBM3, 96 GB; NVLink 900 GB/s
          # bidirectional (450 each way); the paper's GPU (4 servers x 8, InfiniBand between).
          - {name: H20, peakTFLOPS: 148, memoryGBps: 4000, memoryGiB: 96, intraNodeGBps: 450, interNodeGBps: 50,
             devicesPerNode: 8, computeEfficiency: 0.7, memoryEfficiency: 0.8, stepOverheadSeconds: 0.004, transferLatencySeconds: 0.0005}
          # NVIDIA H100 SXM datasheet: 989 TFLOPS dense BF16, 3.35 TB/s HBM3, 80 GB; NVLink 900 GB/s; 400 Gb/s NDR per GPU.
          - {name: H100, peakTFLOPS: 989, memoryGBps: 3350, memoryGiB: 80, intraNodeGBps: 450, interNodeGBps: 50,
             devicesPerNode: 8, computeEfficiency: 0.55, memoryEfficiency: 0.8, stepOverheadSeconds: 0.004, transferLatencySeconds: 0.0005}
          # NVIDIA H200 SXM datasheet: 989 TFLOPS dense BF16, 4.8 TB/s HBM3e, 141 GB; NVLink 900 GB/s; 400 Gb/s NDR per GPU.
          - {name: H200, peakTFLOPS: 989, memoryGBps: 4800, memoryGiB: 141, intraNodeGBps: 450, interNodeGBps: 50,
             devicesPerNode: 8, computeEfficiency: 0.55, memoryEfficiency: 0.8, stepOverheadSeconds: 0.004, transferLatencySeconds: 0.0005}
          # NVIDIA A100 SXM 80GB datasheet: 312 TFLOPS dense BF16, 2.04 TB/s HBM2e; NVLink 600 GB/s; 200 Gb/s HDR per GPU.
          - {name: A100, peakTFLOPS: 312, memoryGBps: 2039, memoryGiB: 80, intraNodeGBps: 300, interNodeGBps: 25,
             devicesPerNode: 8, computeEfficiency: 0.6, memoryEfficiency: 0.8, stepOverheadSeconds: 0.005, transferLatencySeconds: 0.0005}
          # This repository's CI machine (2 vCPU AMD EPYC) running the native engine on SmolLM2-135M Q4_1,
          # fitted to `ampd engine-bench` (about 310 prefill tokens/s for a 256-token prompt and 100 decode
          # tokens/s at 300 tokens of context, on 2 threads): "peak" is the effective integer-kernel
          # throughput, not a datasheet figure. Attention over long contexts costs about twice what the
          # roofline says on this machine (prefill 333 → 277 tokens/s from 64 to 512 tokens).
          - {name: cpu-2core, peakTFLOPS: 0.086, memoryGBps: 20, memoryGiB: 24, intraNodeGBps: 10, interNodeGBps: 1,
             devicesPerNode: 1, computeEfficiency: 1.0, memoryEfficiency: 0.57, stepOverheadSeconds: 0.0008, transferLatencySeconds: 0.0002}
          # One core of the same machine: an engine instance with `resources.count: 1` runs one
          # kernel thread. `ampd engine-bench --threads 1`: about 179 prefill tokens/s (256-token
          # prompt) and 95 decode tokens/s at 300 tokens of context (decode gains little from a
          # second thread).
          - {name: cpu-1core, peakTFLOPS: 0.0498, memoryGBps: 20, memoryGiB: 24, intraNodeGBps: 10, interNodeGBps: 1,
             devicesPerNode: 1, computeEfficiency: 1.0, memoryEfficiency: 0.54, stepOverheadSeconds: 0.0008, transferLatencySeconds: 0.0002}
        models:
          # Qwen3-32B config.json: 64 layers, hidden 5120, 64 query heads, 8 KV heads, head_dim 128; 32.8B parameters.
          - {name: Qwen3-32B, activeParams: 32.8e9, totalParams: 32.8e9, layers: 64, hidden: 5120, heads: 64, kvHeads: 8,
             headDim: 128, bytesPerParam: 2, kvBytesPerElement: 2}
          # Llama-3.1-70B config.json: 80 layers, hidden 8192, 64 query heads, 8 KV heads, head_dim 128; 70.6B parameters.
          - {name: Llama-3.1-70B, activeParams: 70.6e9, totalParams: 70.6e9, layers: 80, hidden: 8192, heads: 64, kvHeads: 8,
             headDim: 128, bytesPerParam: 2, kvBytesPerElement: 2}
          # Mixtral-8x7B config.json: 32 layers, hidden 4096, 32 query heads, 8 KV heads, 8 experts, top-2 routing:
          # 46.7B parameters in memory, 12.9B active per token (Mistral AI's announcement).
          - {name: Mixtral-8x7B, activeParams: 12.9e9, totalParams: 46.7e9, layers: 32, hidden: 4096, heads: 32, kvHeads: 8,
             headDim: 128, bytesPerParam: 2, kvBytesPerElement: 2}
          # Llama-3.1-8B config.json: 32 layers, hidden 4096, 32 query heads, 8 KV heads, head_dim 128; 8.03B parameters.
          - {name: Llama-3.1-8B, activeParams: 8.03e9, totalParams: 8.03e9, layers: 32, hidden: 4096, heads: 32, kvHeads: 8,
             headDim: 128, bytesPerParam: 2, kvBytesPerElement: 2}
          # SmolLM2-135M-Instruct GGUF metadata: 30 layers, hidden 576, 9 query heads, 3 KV heads, head_dim 64;
          # 134.5M parameters; Q4_1 weights as stored are 0.73 bytes/parameter (98 MB file); f16 KV cache.
          - {name: SmolLM2-135M, activeParams: 134.5e6, totalParams: 134.5e6, layers: 30, hidden: 576, heads: 9, kvHeads: 3,
             headDim: 64, bytesPerParam: 0.73, kvBytesPerElement: 2}
        """
}
