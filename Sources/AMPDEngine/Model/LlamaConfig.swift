/// The geometry of a llama-family model, every number read from the GGUF
/// metadata of the file (`<arch>.*` keys), never assumed.
public struct LlamaConfig: Sendable, Equatable, Codable {
    public var architecture: String
    public var layers: Int
    public var embedding: Int
    public var feedForward: Int
    public var heads: Int
    public var kvHeads: Int
    public var headDim: Int
    public var ropeDims: Int
    public var ropeBase: Float
    public var ropeNeox: Bool
    public var rmsEps: Float
    public var vocabSize: Int
    public var contextLength: Int
    public var hasQKVBias: Bool

    public var kvDim: Int { kvHeads * headDim }
    public var qDim: Int { heads * headDim }

    /// Architectures whose forward pass is this one (pre-norm, RoPE, GQA, SwiGLU).
    public static let supportedArchitectures: Set<String> = ["llama", "qwen2"]

    public init(gguf: GGUFFile) throws(EngineError) {
        do {
            let arch = try gguf.string("general.architecture")
            guard Self.supportedArchitectures.contains(arch) else {
                throw EngineError.unsupportedModel("architecture '\(arch)' is not supported by the native engine (supported: \(Self.supportedArchitectures.sorted().joined(separator: ", ")))")
            }
            architecture = arch
            layers = try gguf.int("\(arch).block_count")
            embedding = try gguf.int("\(arch).embedding_length")
            feedForward = try gguf.int("\(arch).feed_forward_length")
            heads = try gguf.int("\(arch).attention.head_count")
            kvHeads = (try? gguf.int("\(arch).attention.head_count_kv")) ?? heads
            headDim = (try? gguf.int("\(arch).attention.key_length")) ?? (heads > 0 ? embedding / heads : 0)
            ropeDims = (try? gguf.int("\(arch).rope.dimension_count")) ?? headDim
            ropeBase = Float((try? gguf.float("\(arch).rope.freq_base")) ?? 10_000)
            rmsEps = Float(try gguf.float("\(arch).attention.layer_norm_rms_epsilon"))
            contextLength = (try? gguf.int("\(arch).context_length")) ?? 2048
            ropeNeox = arch == "qwen2"
            hasQKVBias = gguf.tensors["blk.0.attn_q.bias"] != nil
            if let v = try? gguf.int("\(arch).vocab_size") {
                vocabSize = v
            } else {
                vocabSize = try gguf.tensor("token_embd.weight").dims[1]
            }
            if let scaling = gguf.metadata["\(arch).rope.scaling.type"]?.stringValue, scaling != "none" {
                let factor = (try? gguf.float("\(arch).rope.scaling.factor")) ?? 1
                if factor != 1 {
                    throw EngineError.unsupportedModel("RoPE scaling '\(scaling)' (factor \(factor)) is not supported by the native engine")
                }
            }
            if gguf.metadata["\(arch).expert_count"]?.intValue ?? 0 > 0 {
                throw EngineError.unsupportedModel("mixture-of-experts models are not supported by the native engine")
            }
        } catch let e as GGUFError {
            throw .invalidModel(e)
        } catch let e as EngineError {
            throw e
        } catch {
            throw .unsupportedModel("\(error)")
        }
        guard layers > 0, embedding > 0, heads > 0, kvHeads > 0, heads % kvHeads == 0, headDim > 0, headDim % 2 == 0,
              ropeDims <= headDim, ropeDims % 2 == 0, feedForward > 0, vocabSize > 0 else {
            throw .unsupportedModel("inconsistent geometry: \(layers) layers, embedding \(embedding), \(heads) heads, \(kvHeads) KV heads, head dim \(headDim), rope dims \(ropeDims)")
        }
        guard embedding % 32 == 0, feedForward % 32 == 0, qDim % 32 == 0 else {
            throw .unsupportedModel("embedding (\(embedding)), feed-forward (\(feedForward)) and attention (\(qDim)) widths must be multiples of 32")
        }
    }
}
