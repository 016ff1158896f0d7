import Testing
@testable import AMPDPolicy

@Suite("Cost model")
struct CostModelTests {
    let catalog = ProfileCatalog.builtin

    @Test("the built-in YAML parses and has the named profiles")
    func builtin() throws {
        #expect(Set(catalog.hardware.map(\.name)).isSuperset(of: ["H20", "H100", "H200", "A100", "cpu-2core"]))
        #expect(Set(catalog.models.map(\.name)).isSuperset(of: ["Qwen3-32B", "Llama-3.1-70B", "Mixtral-8x7B", "Llama-3.1-8B", "SmolLM2-135M"]))
        #expect(throws: PolicyError.self) { try catalog.hardware("B300") }
        #expect(throws: PolicyError.self) { try ProfileCatalog.load(yaml: "hardware: [{name: x}]\nmodels: []") }
    }

    @Test("Llama-3.1-70B on H20: hand-computed roofline values")
    func handComputed() throws {
        let m = try catalog.model("Llama-3.1-70B"), h = try catalog.hardware("H20")
        let c = CostModel(model: m, hardware: h)
        // KV per token: 2 (K,V) × 80 layers × 8 heads × 128 × 2 bytes = 327,680 bytes.
        #expect(m.kvBytesPerToken == 327_680)
        // Prefill of 1000 new tokens, no history, TP 4:
        // linear FLOPs 2 × 70.6e9 × 1000 = 1.412e14; attention 4 × 80 × 8192 × 1000 × 500.5 = 1.3120e12.
        let attention: Double = 4.0 * 80.0 * 8192.0 * 1000.0 * 500.5
        let flops: Double = 1.412e14 + attention
        #expect(abs(c.prefillFLOPs(history: 0, new: 1000) - flops) < 1)
        // compute = flops / (4 × 148e12 × 0.7); memory = (141.2e9 + 1000 × 327680) / (4 × 4000e9 × 0.8);
        // all-reduce = 2 × 80 × (2 × 3/4 × 1000 × 8192 × 2 / 450e9); + 4 ms overhead.
        let compute: Double = flops / (4.0 * 148e12 * 0.7)
        let memory: Double = (141.2e9 + 1000.0 * 327_680.0) / (4.0 * 4000e9 * 0.8)
        let perReduce: Double = 2.0 * 0.75 * 1000.0 * 8192.0 * 2.0 / 450e9
        let comm: Double = 2.0 * 80.0 * perReduce
        #expect(compute > memory)
        #expect(abs(c.prefillSeconds(history: 0, new: 1000, tp: 4) - (compute + comm + 0.004)) < 1e-12)
        // Decode step, batch 32, 64k context tokens in total, TP 4: memory-bound.
        let dMem: Double = (141.2e9 + 65536.0 * 327_680.0) / (4.0 * 4000e9 * 0.8)
        let dFlops: Double = 2.0 * 70.6e9 * 32.0 + 4.0 * 80.0 * 8192.0 * 65536.0
        let dCompute: Double = dFlops / (4.0 * 148e12 * 0.7)
        #expect(dMem > dCompute)
        let dPer: Double = 2.0 * 0.75 * 32.0 * 8192.0 * 2.0 / 450e9
        let dComm: Double = 2.0 * 80.0 * dPer
        #expect(abs(c.decodeStepSeconds(batch: 32, context: 65536, tp: 4) - (dMem + dComm + 0.004)) < 1e-12)
        // KV transfer of 2000 tokens across servers at TP 4: 0.5 ms + 655.36 MB / (4 × 50 GB/s).
        let transfer: Double = 0.0005 + 2000.0 * 327_680.0 / 200e9
        #expect(abs(c.kvTransferSeconds(tokens: 2000, crossNode: true, tp: 4) - transfer) < 1e-15)
    }

    @Test("mixture of experts reads only active weights at batch 1, all of them at large batches")
    func moe() throws {
        let c = CostModel(model: try catalog.model("Mixtral-8x7B"), hardware: try catalog.hardware("H100"))
        #expect(c.weightBytesRead(tokens: 1) == 12.9e9 * 2)
        #expect(c.weightBytesRead(tokens: 64) == 46.7e9 * 2)
    }

    @Test("fitting recovers efficiencies and overhead from timings the model itself produced")
    func fit() throws {
        let truth = CostModel(model: try catalog.model("SmolLM2-135M"), hardware: try catalog.hardware("cpu-2core"))
        var guess = truth
        guess.hardware.computeEfficiency = 0.3
        guess.hardware.memoryEfficiency = 0.9
        guess.hardware.stepOverheadSeconds = 0.01
        let pre = [64, 128, 256, 512].map { CostModelFit.PrefillSample(history: 0, new: $0, seconds: truth.prefillSeconds(history: 0, new: $0, tp: 1)) }
        // Decode at batch 1 is memory-bound here; the context (KV bytes) varies.
        let dec = [100, 1000, 3000, 6000].map { CostModelFit.DecodeSample(batch: 1, context: $0, seconds: truth.decodeStepSeconds(batch: 1, context: $0, tp: 1)) }
        let fitted = try CostModelFit.fit(guess, prefill: pre, decode: dec)
        #expect(abs(fitted.hardware.computeEfficiency - truth.hardware.computeEfficiency) / truth.hardware.computeEfficiency < 0.02)
        #expect(abs(fitted.hardware.memoryEfficiency - truth.hardware.memoryEfficiency) / truth.hardware.memoryEfficiency < 0.02)
        #expect(abs(fitted.hardware.stepOverheadSeconds - truth.hardware.stepOverheadSeconds) < 2e-4)
        #expect(throws: PolicyError.self) { try CostModelFit.fit(guess, prefill: [pre[0]], decode: dec) }
    }

    @Test("the CPU profile predicts the native engine's measured throughput within 10%")
    func cpuProfile() throws {
        // Measured on this repository's CI machine with `ampd engine-bench --threads 2`:
        // 256-token prefill ≈ 310 tokens/s; decode batch 1 ≈ 100 tokens/s (SIMD attention;
        // 195 and 68 before it).
        let c = CostModel(model: try catalog.model("SmolLM2-135M"), hardware: try catalog.hardware("cpu-2core"))
        let prefillRate = 256 / c.prefillSeconds(history: 0, new: 256, tp: 1)
        let decodeRate = 1 / c.decodeStepSeconds(batch: 1, context: 300, tp: 1)
        #expect(abs(prefillRate - 310) / 310 < 0.1, "predicted \(prefillRate) prefill tok/s")
        #expect(abs(decodeRate - 100) / 100 < 0.1, "predicted \(decodeRate) decode tok/s")
    }
}

extension CostModelTests {
    @Test("a fused chunked-prefill iteration reads the weights once: cheaper than a decode step plus a separate prefill")
    func mixedStep() throws {
        let c = CostModel(model: try catalog.model("Llama-3.1-70B"), hardware: try catalog.hardware("H20"))
        let fused = c.mixedStepSeconds(batch: 16, context: 16 * 2000, chunks: [(history: 0, new: 64)], tp: 4)
        let separate = c.decodeStepSeconds(batch: 16, context: 16 * 2000, tp: 4) + c.prefillSeconds(history: 0, new: 64, tp: 4)
        #expect(fused < separate)
        #expect(fused >= c.decodeStepSeconds(batch: 16, context: 16 * 2000, tp: 4))
        #expect(abs(c.mixedStepSeconds(batch: 16, context: 32000, chunks: [], tp: 4) - c.decodeStepSeconds(batch: 16, context: 32000, tp: 4)) < 1e-12)
    }
}
