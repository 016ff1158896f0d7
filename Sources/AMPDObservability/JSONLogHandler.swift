import Foundation
import Logging

/// A swift-log handler that writes one JSON object per line with stable keys:
/// `ts` (RFC 3339, UTC, milliseconds), `level`, `event`, `component`, `msg`, plus metadata fields.
/// `event` is the `event` metadata value when given (a stable CamelCase name such as
/// `PlacedInstance`), else the message itself.
public struct JSONLogHandler: LogHandler {
    public var metadata: Logger.Metadata = [:]
    public var logLevel: Logger.Level = .info
    public var metadataProvider: Logger.MetadataProvider?
    private let component: String
    private let sink: @Sendable (String) -> Void

    public init(label: String, sink: @escaping @Sendable (String) -> Void = JSONLogHandler.standardOutput) {
        self.component = label
        self.sink = sink
    }

    /// Writes each line with one `write(2)` so that lines from concurrent tasks never interleave.
    public static let standardOutput: @Sendable (String) -> Void = { line in
        var bytes = Array(line.utf8)
        bytes.append(0x0A)
        bytes.withUnsafeBytes { buf in
            var off = 0
            while off < buf.count {
                let n = write(1, buf.baseAddress! + off, buf.count - off)
                if n <= 0 { break }
                off += n
            }
        }
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var fields = metadata
        if let p = metadataProvider { fields.merge(p.get(), uniquingKeysWith: { _, new in new }) }
        if let m = event.metadata { fields.merge(m, uniquingKeysWith: { _, new in new }) }
        var obj: [String: Any] = [:]
        for (k, v) in fields { obj[k] = Self.json(v) }
        let msg = event.message.description
        obj["ts"] = Timestamp.rfc3339(Date())
        obj["level"] = event.level.rawValue
        obj["component"] = component
        obj["msg"] = msg
        if obj["event"] == nil { obj["event"] = msg }
        sink(Self.encode(obj))
    }

    static func json(_ v: Logger.Metadata.Value) -> Any {
        switch v {
        case .string(let s): return s
        case .stringConvertible(let c):
            if let i = c as? Int { return i }
            if let i = c as? Int64 { return i }
            if let d = c as? Double { return d.isFinite ? d : String(d) }
            if let b = c as? Bool { return b }
            return c.description
        case .array(let a): return a.map(json)
        case .dictionary(let d): return d.mapValues(json)
        }
    }

    static func encode(_ obj: [String: Any]) -> String {
        // Stable key order: the four fixed keys first, then the rest sorted.
        let fixed = ["ts", "level", "event", "component", "msg"]
        var parts: [String] = []
        for k in fixed { if let v = obj[k] { parts.append("\(quote(k)):\(value(v))") } }
        for k in obj.keys.sorted() where !fixed.contains(k) { parts.append("\(quote(k)):\(value(obj[k]!))") }
        return "{" + parts.joined(separator: ",") + "}"
    }

    static func value(_ v: Any) -> String {
        switch v {
        case let s as String: return quote(s)
        case let b as Bool: return b ? "true" : "false"
        case let i as Int: return String(i)
        case let i as Int64: return String(i)
        case let d as Double: return String(d)
        case let a as [Any]: return "[" + a.map(value).joined(separator: ",") + "]"
        case let o as [String: Any]: return "{" + o.keys.sorted().map { "\(quote($0)):\(value(o[$0]!))" }.joined(separator: ",") + "}"
        default: return quote("\(v)")
        }
    }

    static func quote(_ s: String) -> String {
        var out = "\""
        for u in s.unicodeScalars {
            switch u {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where u.value < 0x20: out += String(format: "\\u%04x", u.value)
            default: out.unicodeScalars.append(u)
            }
        }
        return out + "\""
    }
}

/// RFC 3339 timestamps in UTC with milliseconds, as every component writes them.
public enum Timestamp {
    public static func rfc3339(_ date: Date) -> String {
        date.formatted(.iso8601.year().month().day().time(includingFractionalSeconds: true).timeZone(separator: .omitted))
            .replacingOccurrences(of: "+0000", with: "Z")
    }

    public static func parse(_ s: String) -> Date? {
        if let d = try? Date(s, strategy: .iso8601.year().month().day().time(includingFractionalSeconds: true)) { return d }
        return try? Date(s, strategy: .iso8601)
    }
}

/// Bootstraps swift-log once per process with the JSON handler at a level.
public enum LogSetup {
    public static func bootstrap(level: Logger.Level) {
        LoggingSystem.bootstrap { label in
            var h = JSONLogHandler(label: label)
            h.logLevel = level
            return h
        }
    }
}
