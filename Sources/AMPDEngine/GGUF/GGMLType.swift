/// Tensor element types of GGML that this engine computes with, with their
/// block geometry (elements per block, bytes per block).
public enum GGMLType: UInt32, Sendable, CustomStringConvertible {
    case f32 = 0
    case f16 = 1
    case q4_0 = 2
    case q4_1 = 3
    case q8_0 = 8

    public var blockElements: Int {
        switch self {
        case .f32, .f16: 1
        case .q4_0, .q4_1, .q8_0: 32
        }
    }

    public var blockBytes: Int {
        switch self {
        case .f32: 4
        case .f16: 2
        case .q4_0: 18  // f16 scale + 16 bytes of nibbles
        case .q4_1: 20  // f16 scale, f16 min + 16 bytes of nibbles
        case .q8_0: 34  // f16 scale + 32 int8
        }
    }

    public var description: String {
        switch self {
        case .f32: "F32"
        case .f16: "F16"
        case .q4_0: "Q4_0"
        case .q4_1: "Q4_1"
        case .q8_0: "Q8_0"
        }
    }

    /// Names of GGML types this engine does not compute with, for error messages.
    static func name(ofRaw raw: UInt32) -> String {
        let names: [UInt32: String] = [
            6: "Q5_0", 7: "Q5_1", 9: "Q8_1", 10: "Q2_K", 11: "Q3_K", 12: "Q4_K", 13: "Q5_K", 14: "Q6_K", 15: "Q8_K",
            16: "IQ2_XXS", 17: "IQ2_XS", 18: "IQ3_XXS", 19: "IQ1_S", 20: "IQ4_NL", 21: "IQ3_S", 22: "IQ2_S",
            23: "IQ4_XS", 24: "I8", 25: "I16", 26: "I32", 27: "I64", 28: "F64", 29: "IQ1_M", 30: "BF16",
        ]
        return GGMLType(rawValue: raw)?.description ?? names[raw] ?? "type \(raw)"
    }
}
