/// Where one tensor's data lies in a GGUF file and what it holds.
public struct GGUFTensorInfo: Sendable, Equatable {
    public let name: String
    /// Dimensions, innermost first (GGML order): a matrix of `rows` rows of
    /// `columns` elements has `dims == [columns, rows]`.
    public let dims: [Int]
    public let type: GGMLType
    /// Byte offset of the data from the start of the file.
    public let fileOffset: Int
    public let byteCount: Int

    public var elementCount: Int { dims.reduce(1, *) }
}

/// A parsed GGUF (v2/v3) file over a memory map: metadata, tensor infos, and
/// pointers into the mapped tensor data. Parsing checks every length against
/// the file size, so a truncated or corrupt file throws and never traps.
public struct GGUFFile: Sendable {
    public let file: MappedFile
    public let version: UInt32
    public let metadata: [String: GGUFValue]
    /// Metadata keys in file order.
    public let metadataKeys: [String]
    public let tensors: [String: GGUFTensorInfo]
    public let tensorOrder: [String]
    public let alignment: Int
    public let dataOffset: Int

    public init(path: String) throws(GGUFError) {
        try self.init(file: MappedFile(path: path))
    }

    public init(file: MappedFile) throws(GGUFError) {
        self.file = file
        var r = ByteReader(base: file.base, count: file.count)
        let magic = try r.u32("magic")
        guard magic == 0x4655_4747 else { throw .badMagic(found: magic) }
        version = try r.u32("version")
        guard version == 2 || version == 3 else { throw .unsupportedVersion(version) }
        let tensorCount = try r.count("tensor count", minBytesEach: 24)
        let kvCount = try r.count("metadata count", minBytesEach: 12)

        var metadata: [String: GGUFValue] = [:]
        var keys: [String] = []
        for _ in 0..<kvCount {
            let key = try r.string("metadata key")
            let typeOffset = r.offset
            let type = try r.u32("type of '\(key)'")
            let value = try r.value(type: type, key: key, typeOffset: typeOffset, depth: 0)
            if metadata.updateValue(value, forKey: key) == nil { keys.append(key) }
        }
        self.metadata = metadata
        self.metadataKeys = keys

        var alignment = 32
        if let a = metadata["general.alignment"] {
            guard let v = a.intValue, v > 0, v & (v - 1) == 0, v <= 1 << 20 else {
                throw .invalidTensor(name: "general.alignment", reason: "alignment must be a power of two, got \(a)")
            }
            alignment = v
        }
        self.alignment = alignment

        struct Raw { let name: String; let dims: [Int]; let type: UInt32; let offset: UInt64 }
        var raws: [Raw] = []
        raws.reserveCapacity(tensorCount)
        for _ in 0..<tensorCount {
            let name = try r.string("tensor name")
            let nDimsOffset = r.offset
            let nDims = try r.u32("dimension count of '\(name)'")
            guard (1...4).contains(nDims) else {
                throw .invalidTensor(name: name, reason: "has \(nDims) dimensions at byte \(nDimsOffset); GGUF allows 1 to 4")
            }
            var dims: [Int] = []
            for i in 0..<Int(nDims) {
                let d = try r.u64("dimension \(i) of '\(name)'")
                guard d > 0, d < 1 << 40 else { throw .invalidTensor(name: name, reason: "dimension \(i) is \(d)") }
                dims.append(Int(d))
            }
            let type = try r.u32("type of '\(name)'")
            let offset = try r.u64("data offset of '\(name)'")
            raws.append(Raw(name: name, dims: dims, type: type, offset: offset))
        }
        let dataOffset = (r.offset + alignment - 1) / alignment * alignment
        self.dataOffset = dataOffset

        var tensors: [String: GGUFTensorInfo] = [:]
        var order: [String] = []
        for raw in raws {
            guard let type = GGMLType(rawValue: raw.type) else {
                throw .invalidTensor(name: raw.name, reason: "tensor type \(GGMLType.name(ofRaw: raw.type)) is not supported by the native engine (supported: F32, F16, Q4_0, Q4_1, Q8_0)")
            }
            let elements = raw.dims.reduce(1) { $0.multipliedReportingOverflow(by: $1).partialValue }
            guard raw.dims[0] % type.blockElements == 0 else {
                throw .invalidTensor(name: raw.name, reason: "row length \(raw.dims[0]) is not a multiple of the \(type) block size \(type.blockElements)")
            }
            let bytes = elements / type.blockElements * type.blockBytes
            guard raw.offset % UInt64(alignment) == 0 else {
                throw .invalidTensor(name: raw.name, reason: "data offset \(raw.offset) is not aligned to \(alignment)")
            }
            let start = dataOffset + Int(clamping: raw.offset)
            guard start <= file.count, bytes <= file.count - start else {
                throw .truncated(what: "data of tensor '\(raw.name)' (\(bytes) bytes)", offset: start, fileSize: file.count)
            }
            guard tensors[raw.name] == nil else { throw .invalidTensor(name: raw.name, reason: "appears twice") }
            tensors[raw.name] = GGUFTensorInfo(name: raw.name, dims: raw.dims, type: type, fileOffset: start, byteCount: bytes)
            order.append(raw.name)
        }
        self.tensors = tensors
        self.tensorOrder = order
    }

    public func tensor(_ name: String) throws(GGUFError) -> GGUFTensorInfo {
        guard let t = tensors[name] else { throw .missingTensor(name) }
        return t
    }

    public func data(of tensor: GGUFTensorInfo) -> UnsafeRawPointer { file.base + tensor.fileOffset }

    // MARK: typed metadata access

    public func int(_ key: String) throws(GGUFError) -> Int {
        guard let v = metadata[key] else { throw .missingKey(key) }
        guard let i = v.intValue else { throw .wrongKeyType(key: key, expected: "an integer", found: v.typeName) }
        return i
    }

    public func float(_ key: String) throws(GGUFError) -> Double {
        guard let v = metadata[key] else { throw .missingKey(key) }
        guard let f = v.floatValue else { throw .wrongKeyType(key: key, expected: "a number", found: v.typeName) }
        return f
    }

    public func string(_ key: String) throws(GGUFError) -> String {
        guard let v = metadata[key] else { throw .missingKey(key) }
        guard let s = v.stringValue else { throw .wrongKeyType(key: key, expected: "a string", found: v.typeName) }
        return s
    }

    public func array(_ key: String) throws(GGUFError) -> [GGUFValue] {
        guard let v = metadata[key] else { throw .missingKey(key) }
        guard case .array(let a) = v else { throw .wrongKeyType(key: key, expected: "an array", found: v.typeName) }
        return a
    }
}

/// Bounds-checked little-endian reader over the mapped bytes.
struct ByteReader {
    let base: UnsafeRawPointer
    let count: Int
    var offset = 0

    mutating func bytes(_ n: Int, _ what: @autoclosure () -> String) throws(GGUFError) -> UnsafeRawPointer {
        guard n >= 0, n <= count - offset else { throw .truncated(what: what(), offset: offset, fileSize: count) }
        defer { offset += n }
        return base + offset
    }

    mutating func u8(_ what: @autoclosure () -> String) throws(GGUFError) -> UInt8 { try bytes(1, what()).load(as: UInt8.self) }
    mutating func u16(_ what: @autoclosure () -> String) throws(GGUFError) -> UInt16 { UInt16(littleEndian: try bytes(2, what()).loadUnaligned(as: UInt16.self)) }
    mutating func u32(_ what: @autoclosure () -> String) throws(GGUFError) -> UInt32 { UInt32(littleEndian: try bytes(4, what()).loadUnaligned(as: UInt32.self)) }
    mutating func u64(_ what: @autoclosure () -> String) throws(GGUFError) -> UInt64 { UInt64(littleEndian: try bytes(8, what()).loadUnaligned(as: UInt64.self)) }

    /// A count that must be plausible: each counted item needs at least
    /// `minBytesEach` bytes, so a count larger than the rest of the file is corrupt.
    mutating func count(_ what: String, minBytesEach: Int) throws(GGUFError) -> Int {
        let at = offset
        let n = try u64(what)
        guard n <= UInt64(max(0, count - offset) / max(1, minBytesEach)) else {
            throw .implausibleCount(what: what, count: n, offset: at)
        }
        return Int(n)
    }

    mutating func string(_ what: String) throws(GGUFError) -> String {
        let at = offset
        let n = try count("length of \(what)", minBytesEach: 1)
        let p = try bytes(n, what)
        let buffer = UnsafeBufferPointer(start: p.assumingMemoryBound(to: UInt8.self), count: n)
        guard let s = String(validating: buffer, as: UTF8.self) else { throw .invalidString(what: what, offset: at) }
        return s
    }

    mutating func value(type: UInt32, key: String, typeOffset: Int, depth: Int) throws(GGUFError) -> GGUFValue {
        switch type {
        case 0: return .uint8(try u8(key))
        case 1: return .int8(Int8(bitPattern: try u8(key)))
        case 2: return .uint16(try u16(key))
        case 3: return .int16(Int16(bitPattern: try u16(key)))
        case 4: return .uint32(try u32(key))
        case 5: return .int32(Int32(bitPattern: try u32(key)))
        case 6: return .float32(Float(bitPattern: try u32(key)))
        case 7:
            let at = offset
            let b = try u8(key)
            guard b <= 1 else { throw .invalidValueType(key: "\(key) (bool byte \(b))", type: 7, offset: at) }
            return .bool(b == 1)
        case 8: return .string(try string("value of '\(key)'"))
        case 9:
            guard depth < 4 else { throw .invalidValueType(key: key, type: 9, offset: typeOffset) }
            let elemOffset = offset
            let elemType = try u32("element type of '\(key)'")
            let minBytes: Int = switch elemType {
            case 0, 1, 7: 1
            case 2, 3: 2
            case 4, 5, 6: 4
            case 10, 11, 12: 8
            case 8: 8
            case 9: 12
            default: throw .invalidValueType(key: key, type: elemType, offset: elemOffset)
            }
            let n = try count("element count of '\(key)'", minBytesEach: minBytes)
            var out: [GGUFValue] = []
            out.reserveCapacity(n)
            for _ in 0..<n { out.append(try value(type: elemType, key: key, typeOffset: elemOffset, depth: depth + 1)) }
            return .array(out)
        case 10: return .uint64(try u64(key))
        case 11: return .int64(Int64(bitPattern: try u64(key)))
        case 12: return .float64(Double(bitPattern: try u64(key)))
        default: throw .invalidValueType(key: key, type: type, offset: typeOffset)
        }
    }
}
