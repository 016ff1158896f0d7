import Foundation

/// The self-describing binary format of a sequence's KV blocks, the seam of
/// disaggregation: one engine exports, another (in another process) imports.
///
///     "AMPDKV01"                       8 bytes magic
///     u32 format version (1)           little-endian
///     u32 header length N
///     N bytes JSON `KVExportHeader`    geometry, dtype, tokens, block hashes
///     payload                          per block, per layer: keys then values,
///                                      blockTokens × kvDim Float16 each
///     u64 checksum                     `Checksum64` of everything before it
public struct KVExportHeader: Codable, Sendable, Equatable {
    public var modelFingerprint: String
    public var architecture: String
    public var layers: Int
    public var kvHeads: Int
    public var headDim: Int
    public var dtype: String
    public var blockTokens: Int
    /// Every token of the sequence, including sampled ones not yet computed.
    public var tokens: [Int32]
    /// How many leading tokens have KV in the payload.
    public var computedTokens: Int
    /// Chained prefix hash of each full block (hex), for cache registration.
    public var blockHashes: [String]
    /// Blocks in the payload: from block `startToken / blockTokens` to the last computed one.
    public var blockCount: Int
    /// An incremental export starts here (a multiple of the block size): the payload holds
    /// only the blocks from this token on, for a receiver that has the earlier ones (the
    /// session's decode instance, after a remote incremental prefill). Nil or 0: everything.
    public var startToken: Int?
    /// The salt of the block hashes (the sequence's tenant), nil for none.
    public var cacheSalt: UInt64?
}

public enum KVExportFormat {
    public static let magic: [UInt8] = Array("AMPDKV01".utf8)
    public static let version: UInt32 = 1

    public static func encode(header: KVExportHeader, payload: (inout [UInt8]) -> Void) throws -> [UInt8] {
        var out = magic
        let json = try JSONEncoder().encode(header)
        append(&out, version)
        append(&out, UInt32(json.count))
        out.append(contentsOf: json)
        payload(&out)
        append(&out, Checksum64.of(out[...]))
        return out
    }

    /// Validates framing, header and checksum; returns the header and the payload range.
    public static func decode(_ bytes: [UInt8]) throws(EngineError) -> (KVExportHeader, Range<Int>) {
        guard bytes.count >= 8 + 8 + 8 else { throw .invalidKVExport("\(bytes.count) bytes is shorter than the smallest export") }
        guard Array(bytes[0..<8]) == magic else { throw .invalidKVExport("bad magic at byte 0: not an AMPD KV export") }
        let version = read32(bytes, 8)
        guard version == Self.version else { throw .invalidKVExport("format version \(version) at byte 8; this engine reads version \(Self.version)") }
        let headerLength = Int(read32(bytes, 12))
        guard headerLength <= bytes.count - 24 else { throw .invalidKVExport("header length \(headerLength) at byte 12 runs past the end (\(bytes.count) bytes)") }
        let stored = read64(bytes, bytes.count - 8)
        let actual = Checksum64.of(bytes[0..<(bytes.count - 8)])
        guard stored == actual else {
            throw .invalidKVExport("checksum mismatch: stored \(String(stored, radix: 16)), computed \(String(actual, radix: 16)) — the export is corrupt or truncated")
        }
        let header: KVExportHeader
        do {
            header = try JSONDecoder().decode(KVExportHeader.self, from: Data(bytes[16..<(16 + headerLength)]))
        } catch {
            throw .invalidKVExport("header at byte 16 is not valid: \(error)")
        }
        return (header, (16 + headerLength)..<(bytes.count - 8))
    }

    /// An export cut for a content-addressed pool: its full blocks, each with the chained
    /// prefix hash of its tokens (equal hashes mean equal KV), and the rest — the framing and
    /// header before them, a partial last block and the checksum after them.
    public struct Parts: Sendable, Equatable {
        /// Framing and header: everything before the payload.
        public var head: ArraySlice<UInt8>
        public var blocks: [(hash: UInt64, bytes: ArraySlice<UInt8>)]
        /// What follows the full blocks: a partial last block, then the checksum.
        public var tail: ArraySlice<UInt8>

        public static func == (a: Parts, b: Parts) -> Bool {
            a.head == b.head && a.tail == b.tail && a.blocks.map(\.hash) == b.blocks.map(\.hash) && a.blocks.map(\.bytes) == b.blocks.map(\.bytes)
        }

        /// The export, byte for byte.
        public func joined() -> [UInt8] {
            var out = Array(head)
            for b in blocks { out += b.bytes }
            out += tail
            return out
        }
    }

    /// Cuts a valid export into `Parts`; `joined()` gives it back unchanged.
    public static func split(_ bytes: [UInt8]) throws(EngineError) -> Parts {
        let (h, payload) = try decode(bytes)
        guard h.blockCount > 0, payload.count % h.blockCount == 0 else {
            throw .invalidKVExport("payload of \(payload.count) bytes does not divide into \(h.blockCount) blocks")
        }
        let per = payload.count / h.blockCount
        let first = (h.startToken ?? 0) / h.blockTokens
        var blocks: [(hash: UInt64, bytes: ArraySlice<UInt8>)] = []
        for j in 0..<h.blockCount where first + j < h.blockHashes.count {
            guard let hash = UInt64(h.blockHashes[first + j], radix: 16) else { throw .invalidKVExport("block hash \(first + j) is not hex") }
            let start = payload.lowerBound + j * per
            blocks.append((hash, bytes[start..<(start + per)]))
        }
        let restStart = payload.lowerBound + blocks.count * per
        return Parts(head: bytes[0..<payload.lowerBound], blocks: blocks, tail: bytes[restStart...])
    }

    static func append<T: FixedWidthInteger>(_ out: inout [UInt8], _ v: T) {
        withUnsafeBytes(of: v.littleEndian) { out.append(contentsOf: $0) }
    }

    static func read32(_ b: [UInt8], _ at: Int) -> UInt32 {
        b.withUnsafeBytes { UInt32(littleEndian: $0.loadUnaligned(fromByteOffset: at, as: UInt32.self)) }
    }

    static func read64(_ b: [UInt8], _ at: Int) -> UInt64 {
        b.withUnsafeBytes { UInt64(littleEndian: $0.loadUnaligned(fromByteOffset: at, as: UInt64.self)) }
    }
}

/// A fast 64-bit checksum for corruption detection (not authentication: the
/// transport is mutual TLS). Words are mixed with multiply-rotate, tail bytes
/// one by one, finished with an avalanche.
public enum Checksum64 {
    public static func of(_ bytes: ArraySlice<UInt8>) -> UInt64 {
        var h: UInt64 = 0x243F_6A88_85A3_08D3 ^ UInt64(bytes.count)
        bytes.withUnsafeBytes { raw in
            let n = raw.count / 8
            for i in 0..<n {
                let w = raw.loadUnaligned(fromByteOffset: i * 8, as: UInt64.self)
                h = (h ^ (w &* 0x9E37_79B9_7F4A_7C15))
                h = (h << 31 | h >> 33) &* 0xBF58_476D_1CE4_E5B9
            }
            for i in (n * 8)..<raw.count {
                h = (h ^ UInt64(raw[i])) &* 0x0000_0100_0000_01B3
            }
        }
        h ^= h >> 33
        h = h &* 0xFF51_AFD7_ED55_8CCD
        h ^= h >> 33
        return h
    }
}
