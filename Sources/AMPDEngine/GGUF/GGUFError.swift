/// Everything that can be wrong with a GGUF file, each naming what and where.
public enum GGUFError: Error, Equatable, CustomStringConvertible {
    case cannotOpen(path: String, reason: String)
    case badMagic(found: UInt32)
    case unsupportedVersion(UInt32)
    /// The file ends before a value that should start at `offset`.
    case truncated(what: String, offset: Int, fileSize: Int)
    case invalidValueType(key: String, type: UInt32, offset: Int)
    case invalidString(what: String, offset: Int)
    case implausibleCount(what: String, count: UInt64, offset: Int)
    case invalidTensor(name: String, reason: String)
    case missingKey(String)
    case wrongKeyType(key: String, expected: String, found: String)
    case missingTensor(String)

    public var description: String {
        switch self {
        case .cannotOpen(let path, let reason): "cannot open GGUF file \(path): \(reason)"
        case .badMagic(let found):
            "not a GGUF file: magic is 0x\(String(found, radix: 16)), expected 0x46554747 (\"GGUF\") at byte 0"
        case .unsupportedVersion(let v): "unsupported GGUF version \(v) at byte 4 (supported: 2, 3)"
        case .truncated(let what, let offset, let size):
            "GGUF file is truncated: \(what) at byte \(offset) runs past the end of the file (\(size) bytes)"
        case .invalidValueType(let key, let type, let offset):
            "GGUF metadata key '\(key)' has unknown value type \(type) at byte \(offset)"
        case .invalidString(let what, let offset): "GGUF \(what) at byte \(offset) is not valid UTF-8"
        case .implausibleCount(let what, let count, let offset):
            "GGUF \(what) at byte \(offset) is \(count), larger than the file could hold"
        case .invalidTensor(let name, let reason): "GGUF tensor '\(name)': \(reason)"
        case .missingKey(let key): "GGUF metadata has no '\(key)'"
        case .wrongKeyType(let key, let expected, let found): "GGUF metadata '\(key)' should be \(expected), is \(found)"
        case .missingTensor(let name): "GGUF file has no tensor '\(name)'"
        }
    }
}
