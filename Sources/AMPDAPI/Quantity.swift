/// A Kubernetes-style byte quantity: `4Gi`, `512Mi`, `1G`, `100k` or a plain integer.
/// Encodes as the string the user wrote (normalised), decodes from a string or an integer.
public struct Quantity: Codable, Sendable, Hashable, CustomStringConvertible {
    public let bytes: Int64
    public let text: String

    private static let suffixes: [(String, Int64)] = [
        ("Ki", 1 << 10), ("Mi", 1 << 20), ("Gi", 1 << 30), ("Ti", 1 << 40),
        ("k", 1_000), ("M", 1_000_000), ("G", 1_000_000_000), ("T", 1_000_000_000_000),
    ]

    public init(bytes: Int64) {
        self.bytes = bytes
        self.text = String(bytes)
    }

    /// Parses a quantity; returns nil when the text is not one.
    public init?(parsing raw: String) {
        let s = raw.trimmingCharacters(in: .whitespaces)
        var multiplier: Int64 = 1
        var digits = Substring(s)
        for (suffix, m) in Self.suffixes where s.hasSuffix(suffix) {
            multiplier = m
            digits = s.dropLast(suffix.count)
            break
        }
        guard !digits.isEmpty, digits.allSatisfy(\.isASCII), let n = Int64(digits), n >= 0 else { return nil }
        let (product, overflow) = n.multipliedReportingOverflow(by: multiplier)
        guard !overflow else { return nil }
        self.bytes = product
        self.text = s
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.singleValueContainer()
        if let i = try? c.decode(Int64.self) {
            self.init(bytes: i)
            return
        }
        let s = try c.decode(String.self)
        guard let q = Quantity(parsing: s) else {
            throw DecodingError.dataCorruptedError(
                in: c, debugDescription: "not a quantity: \"\(s)\" (use bytes or a suffix Ki, Mi, Gi, Ti, k, M, G, T)")
        }
        self = q
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(text)
    }

    public var description: String { text }

    public static func == (a: Quantity, b: Quantity) -> Bool { a.bytes == b.bytes }
    public func hash(into h: inout Hasher) { h.combine(bytes) }
}

import Foundation
