/// GPT-2's reversible map between bytes and printable Unicode scalars, used
/// by byte-level BPE vocabularies: printable Latin-1 bytes map to themselves,
/// the other 68 bytes to U+0100 and up, in byte order.
enum ByteLevel {
    static let byteToScalar: [Unicode.Scalar] = {
        var table = [Unicode.Scalar](repeating: " ", count: 256)
        var next: UInt32 = 256
        for b in 0..<256 {
            let printable = (33...126).contains(b) || (161...172).contains(b) || (174...255).contains(b)
            if printable {
                table[b] = Unicode.Scalar(UInt8(b))
            } else {
                table[b] = Unicode.Scalar(next)!
                next += 1
            }
        }
        return table
    }()

    static let scalarToByte: [UInt32: UInt8] = {
        var map: [UInt32: UInt8] = [:]
        for (b, s) in byteToScalar.enumerated() { map[s.value] = UInt8(b) }
        return map
    }()

    static func encode<S: Sequence>(_ bytes: S) -> [Unicode.Scalar] where S.Element == UInt8 {
        bytes.map { byteToScalar[Int($0)] }
    }

    /// Bytes of a vocabulary entry; scalars outside the map are kept as their UTF-8.
    static func decode(_ piece: String) -> [UInt8] {
        var out: [UInt8] = []
        for s in piece.unicodeScalars {
            if let b = scalarToByte[s.value] { out.append(b) } else { out.append(contentsOf: Array(String(s).utf8)) }
        }
        return out
    }
}
