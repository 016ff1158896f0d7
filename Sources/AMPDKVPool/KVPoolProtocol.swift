/// The KV pool's binary protocol, carried over mutual TLS. Every frame is
///
///     u32 length of the rest (big-endian, ≤ maxFrameBytes)
///     u8  opcode           (requests 0x01…; responses 0x80 | request opcode)
///     u32 request id       (echoed by the response)
///     pool                 (requests only: the deployment whose pool slice is addressed, `namespace/name`)
///     payload              (per opcode, below)
///
/// Strings are u16 length + UTF-8; block hashes are u64 (the chained prefix
/// hashes of the engine, `AMPDEngine.PrefixHash`). All integers big-endian.
///
///     PUT     tenant, u32 lease seconds, u32 n, n × block
///             block = u64 hash, u64 parent, u32 data length, u64 checksum, data
///     GET     tenant, u32 n, n × u64 hash     → the longest present prefix, as blocks
///     PROBE   tenant, u32 n, n × u64 hash     → u32 count of the longest present prefix
///     DELETE  tenant, u32 n, n × u64 hash     → u32 count deleted
///     RELEASE tenant, u32 n, n × u64 hash     → u32 count whose lease was dropped
///     LEASE   tenant, u32 lease seconds, u32 n, n × u64 hash
///                                             → u32 count of the longest present prefix, each now leased
///
/// Responses carry u8 status (0 ok, else an error code) then, when ok, the
/// payload above (PUT: u32 stored), else a string message.
public enum KVPoolOpcode: UInt8, Sendable {
    case put = 0x01, get = 0x02, probe = 0x03, delete = 0x04, release = 0x05, lease = 0x06
}

public struct KVBlock: Sendable, Equatable {
    public var hash: UInt64
    public var parent: UInt64
    public var checksum: UInt64
    public var data: [UInt8]

    public init(hash: UInt64, parent: UInt64, data: [UInt8]) {
        self.hash = hash
        self.parent = parent
        self.data = data
        self.checksum = KVBlock.checksum(data)
    }

    public init(hash: UInt64, parent: UInt64, checksum: UInt64, data: [UInt8]) {
        self.hash = hash
        self.parent = parent
        self.checksum = checksum
        self.data = data
    }

    /// FNV-1a over 8-byte words then the tail, avalanche-finished: a corruption check.
    public static func checksum(_ data: [UInt8]) -> UInt64 {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325 ^ UInt64(data.count)
        data.withUnsafeBytes { raw in
            let n = raw.count / 8
            for i in 0..<n {
                h = (h ^ raw.loadUnaligned(fromByteOffset: i * 8, as: UInt64.self)) &* 0x0000_0100_0000_01B3
                h ^= h >> 29
            }
            for i in (n * 8)..<raw.count { h = (h ^ UInt64(raw[i])) &* 0x0000_0100_0000_01B3 }
        }
        h ^= h >> 33
        h = h &* 0xFF51_AFD7_ED55_8CCD
        return h ^ (h >> 33)
    }
}

public enum KVPoolRequest: Sendable, Equatable {
    case put(tenant: String, leaseSeconds: UInt32, blocks: [KVBlock])
    case get(tenant: String, hashes: [UInt64])
    case probe(tenant: String, hashes: [UInt64])
    case delete(tenant: String, hashes: [UInt64])
    case release(tenant: String, hashes: [UInt64])
    /// A probe that also leases what it finds, so that it is still there when taken.
    case lease(tenant: String, leaseSeconds: UInt32, hashes: [UInt64])

    public var opcode: KVPoolOpcode {
        switch self {
        case .put: .put
        case .get: .get
        case .probe: .probe
        case .delete: .delete
        case .release: .release
        case .lease: .lease
        }
    }
}

public enum KVPoolStatus: UInt8, Sendable {
    case ok = 0
    case badRequest = 1
    case checksumMismatch = 2
    case capacityExceeded = 3
    case internalError = 4
    /// The endpoint does not serve this operation to peers (an agent's pools are read by it alone).
    case forbidden = 5
}

public enum KVPoolResponse: Sendable, Equatable {
    case stored(Int)
    case blocks([KVBlock])
    case count(Int)
    case error(KVPoolStatus, String)
}

/// A malformed frame, naming the byte at fault. The connection is closed.
public struct KVPoolProtocolError: Error, Equatable, CustomStringConvertible {
    public var offset: Int
    public var reason: String
    public var description: String { "malformed KV pool frame at byte \(offset): \(reason)" }
}

/// Encodes and decodes frames over plain byte arrays (the NIO handlers and the
/// fuzz tests share this code).
public enum KVPoolCodec {
    public static let maxFrameBytes = 64 << 20
    public static let maxBlocksPerFrame = 65_536
    public static let maxTenantBytes = 256

    // MARK: writing

    struct Writer {
        var bytes: [UInt8] = []
        mutating func u8(_ v: UInt8) { bytes.append(v) }
        mutating func u16(_ v: UInt16) { withUnsafeBytes(of: v.bigEndian) { bytes += $0 } }
        mutating func u32(_ v: UInt32) { withUnsafeBytes(of: v.bigEndian) { bytes += $0 } }
        mutating func u64(_ v: UInt64) { withUnsafeBytes(of: v.bigEndian) { bytes += $0 } }
        mutating func string(_ s: String) {
            let utf8 = Array(s.utf8.prefix(Int(UInt16.max)))
            u16(UInt16(utf8.count))
            bytes += utf8
        }
        mutating func block(_ b: KVBlock) {
            u64(b.hash); u64(b.parent); u32(UInt32(b.data.count)); u64(b.checksum)
            bytes += b.data
        }
        func framed(_ opcode: UInt8, _ id: UInt32) -> [UInt8] {
            var out = Writer()
            out.u32(UInt32(bytes.count + 5))
            out.u8(opcode)
            out.u32(id)
            return out.bytes + bytes
        }
    }

    public static func encode(_ request: KVPoolRequest, pool: String = "", id: UInt32) -> [UInt8] {
        var w = Writer()
        w.string(pool)
        switch request {
        case .put(let tenant, let lease, let blocks):
            w.string(tenant); w.u32(lease); w.u32(UInt32(blocks.count))
            for b in blocks { w.block(b) }
        case .get(let tenant, let hashes), .probe(let tenant, let hashes), .delete(let tenant, let hashes), .release(let tenant, let hashes):
            w.string(tenant); w.u32(UInt32(hashes.count))
            for h in hashes { w.u64(h) }
        case .lease(let tenant, let lease, let hashes):
            w.string(tenant); w.u32(lease); w.u32(UInt32(hashes.count))
            for h in hashes { w.u64(h) }
        }
        return w.framed(request.opcode.rawValue, id)
    }

    public static func encode(_ response: KVPoolResponse, to opcode: KVPoolOpcode, id: UInt32) -> [UInt8] {
        var w = Writer()
        switch response {
        case .stored(let n), .count(let n):
            w.u8(KVPoolStatus.ok.rawValue); w.u32(UInt32(n))
        case .blocks(let blocks):
            w.u8(KVPoolStatus.ok.rawValue); w.u32(UInt32(blocks.count))
            for b in blocks { w.block(b) }
        case .error(let status, let message):
            w.u8(status.rawValue); w.string(message)
        }
        return w.framed(0x80 | opcode.rawValue, id)
    }

    // MARK: reading

    struct Reader {
        let bytes: ArraySlice<UInt8>
        var offset: Int
        /// Offset of `bytes.startIndex` in the frame, for error messages.
        let base: Int

        init(_ bytes: ArraySlice<UInt8>, base: Int) {
            self.bytes = bytes
            self.offset = bytes.startIndex
            self.base = base
        }

        var position: Int { base + offset - bytes.startIndex }
        var remaining: Int { bytes.endIndex - offset }

        mutating func take(_ n: Int, _ what: String) throws(KVPoolProtocolError) -> ArraySlice<UInt8> {
            guard n >= 0, n <= remaining else {
                throw KVPoolProtocolError(offset: position, reason: "\(what) needs \(n) bytes, \(remaining) left")
            }
            defer { offset += n }
            return bytes[offset..<offset + n]
        }

        mutating func int<T: FixedWidthInteger>(_ what: String, as: T.Type) throws(KVPoolProtocolError) -> T {
            let s = try take(MemoryLayout<T>.size, what)
            var v: T = 0
            for b in s { v = v << 8 | T(b) }
            return v
        }

        mutating func string(_ what: String, limit: Int = maxTenantBytes) throws(KVPoolProtocolError) -> String {
            let at = position
            let n = Int(try int("\(what) length", as: UInt16.self))
            guard n <= limit else { throw KVPoolProtocolError(offset: at, reason: "\(what) is \(n) bytes, more than \(limit)") }
            let raw = try take(n, what)
            guard let s = String(validating: raw, as: UTF8.self) else {
                throw KVPoolProtocolError(offset: at + 2, reason: "\(what) is not valid UTF-8")
            }
            return s
        }

        mutating func count(_ what: String, minBytesEach: Int) throws(KVPoolProtocolError) -> Int {
            let at = position
            let n = Int(try int(what, as: UInt32.self))
            guard n <= maxBlocksPerFrame, n * minBytesEach <= remaining else {
                throw KVPoolProtocolError(offset: at, reason: "\(what) \(n) does not fit the frame (\(remaining) bytes left, limit \(maxBlocksPerFrame))")
            }
            return n
        }

        mutating func block() throws(KVPoolProtocolError) -> KVBlock {
            let hash = try int("block hash", as: UInt64.self)
            let parent = try int("block parent", as: UInt64.self)
            let length = Int(try int("block length", as: UInt32.self))
            let checksum = try int("block checksum", as: UInt64.self)
            let data = Array(try take(length, "block data"))
            return KVBlock(hash: hash, parent: parent, checksum: checksum, data: data)
        }

        func end() throws(KVPoolProtocolError) {
            guard remaining == 0 else { throw KVPoolProtocolError(offset: position, reason: "\(remaining) unexpected trailing bytes") }
        }
    }

    /// The length of the first complete frame in `buffer` (including its
    /// 4-byte length), nil if more bytes are needed; throws if the announced
    /// length is impossible.
    public static func frameLength(_ buffer: ArraySlice<UInt8>) throws(KVPoolProtocolError) -> Int? {
        guard buffer.count >= 4 else { return nil }
        var r = Reader(buffer.prefix(4), base: 0)
        let n = Int(try r.int("frame length", as: UInt32.self))
        guard n >= 5 else { throw KVPoolProtocolError(offset: 0, reason: "frame length \(n) is shorter than its 5-byte header") }
        guard n <= maxFrameBytes else { throw KVPoolProtocolError(offset: 0, reason: "frame length \(n) exceeds the limit of \(maxFrameBytes)") }
        return buffer.count >= n + 4 ? n + 4 : nil
    }

    /// Decodes one complete request frame (as delimited by `frameLength`): its id, pool and request.
    public static func decodeRequest(_ frame: ArraySlice<UInt8>) throws(KVPoolProtocolError) -> (UInt32, String, KVPoolRequest) {
        var r = Reader(frame, base: 0)
        _ = try r.int("frame length", as: UInt32.self)
        let opAt = r.position
        let op = try r.int("opcode", as: UInt8.self)
        let id = try r.int("request id", as: UInt32.self)
        guard let opcode = KVPoolOpcode(rawValue: op) else {
            throw KVPoolProtocolError(offset: opAt, reason: "unknown request opcode 0x\(String(op, radix: 16))")
        }
        let pool = try r.string("pool")
        let tenant = try r.string("tenant")
        let request: KVPoolRequest
        switch opcode {
        case .put:
            let lease = try r.int("lease seconds", as: UInt32.self)
            let n = try r.count("block count", minBytesEach: 28)
            var blocks: [KVBlock] = []
            blocks.reserveCapacity(n)
            for _ in 0..<n { blocks.append(try r.block()) }
            request = .put(tenant: tenant, leaseSeconds: lease, blocks: blocks)
        case .get, .probe, .delete, .release, .lease:
            let lease = opcode == .lease ? try r.int("lease seconds", as: UInt32.self) : 0
            let n = try r.count("hash count", minBytesEach: 8)
            var hashes: [UInt64] = []
            hashes.reserveCapacity(n)
            for _ in 0..<n { hashes.append(try r.int("hash", as: UInt64.self)) }
            switch opcode {
            case .get: request = .get(tenant: tenant, hashes: hashes)
            case .probe: request = .probe(tenant: tenant, hashes: hashes)
            case .delete: request = .delete(tenant: tenant, hashes: hashes)
            case .lease: request = .lease(tenant: tenant, leaseSeconds: lease, hashes: hashes)
            default: request = .release(tenant: tenant, hashes: hashes)
            }
        }
        try r.end()
        return (id, pool, request)
    }

    /// Decodes one complete response frame.
    public static func decodeResponse(_ frame: ArraySlice<UInt8>) throws(KVPoolProtocolError) -> (UInt32, KVPoolOpcode, KVPoolResponse) {
        var r = Reader(frame, base: 0)
        _ = try r.int("frame length", as: UInt32.self)
        let opAt = r.position
        let op = try r.int("opcode", as: UInt8.self)
        let id = try r.int("request id", as: UInt32.self)
        guard op & 0x80 != 0, let opcode = KVPoolOpcode(rawValue: op & 0x7F) else {
            throw KVPoolProtocolError(offset: opAt, reason: "unknown response opcode 0x\(String(op, radix: 16))")
        }
        let statusAt = r.position
        let rawStatus = try r.int("status", as: UInt8.self)
        guard let status = KVPoolStatus(rawValue: rawStatus) else {
            throw KVPoolProtocolError(offset: statusAt, reason: "unknown status \(rawStatus)")
        }
        let response: KVPoolResponse
        if status != .ok {
            response = .error(status, try r.string("error message", limit: Int(UInt16.max)))
        } else if opcode == .get {
            let n = try r.count("block count", minBytesEach: 28)
            var blocks: [KVBlock] = []
            for _ in 0..<n { blocks.append(try r.block()) }
            response = .blocks(blocks)
        } else {
            let n = Int(try r.int("count", as: UInt32.self))
            response = opcode == .put ? .stored(n) : .count(n)
        }
        try r.end()
        return (id, opcode, response)
    }
}
