import Foundation
import Yams

/// Reads submitted documents: YAML (one or more `---`-separated documents) or JSON (one object,
/// or a list of objects), into trees. Syntax errors name the line and column at fault.
public enum DocumentReader {
    public struct Document: Sendable {
        public var value: JSONValue
        /// 1-based index of the document in a multi-document stream.
        public var index: Int
        /// 1-based line where the document starts (YAML only).
        public var line: Int?
    }

    /// Reads a byte buffer as JSON when it starts with `{` or `[`, otherwise as YAML.
    public static func read(_ data: Data) throws(InvalidObjectError) -> [Document] {
        guard let text = String(data: data, encoding: .utf8) else {
            let offset = firstInvalidUTF8Offset(data)
            throw InvalidObjectError(kind: "document", causes: [
                FieldError("", "input is not valid UTF-8 (byte \(offset))")
            ])
        }
        let trimmed = text.drop(while: { $0.isWhitespace })
        if trimmed.first == "{" || trimmed.first == "[" {
            return try readJSON(data)
        }
        return try readYAML(text)
    }

    public static func readJSON(_ data: Data) throws(InvalidObjectError) -> [Document] {
        let value: JSONValue
        do {
            value = try JSONCoding.decoder.decode(JSONValue.self, from: data)
        } catch let error as DecodingError {
            throw InvalidObjectError(kind: "document", causes: [FieldError("", "invalid JSON: \(describe(error))")])
        } catch {
            throw InvalidObjectError(kind: "document", causes: [FieldError("", "invalid JSON: \(error)")])
        }
        if let path = JSONDuplicateKeys.first(in: data) {
            throw InvalidObjectError(kind: "document", causes: [FieldError(path, "duplicate key")])
        }
        if case .array(let items) = value {
            return items.enumerated().map { Document(value: $0.element, index: $0.offset + 1, line: nil) }
        }
        return [Document(value: value, index: 1, line: nil)]
    }

    /// Most nodes one submission may hold, and how deeply they may nest.
    public static let maxNodes = 100_000
    public static let maxDepth = 64

    public static func readYAML(_ text: String) throws(InvalidObjectError) -> [Document] {
        // Anchors and aliases are refused before the YAML is composed: expanding them is how a
        // few hundred bytes become gigabytes ("billion laughs"), and manifests never need them.
        if let (line, column, what) = anchorOrAlias(in: text) {
            throw InvalidObjectError(kind: "document", causes: [
                FieldError("", "YAML \(what) are not accepted (line \(line), column \(column)): write the values out")
            ])
        }
        var docs: [Document] = []
        do {
            let parser = try Parser(yaml: text)
            var budget = maxNodes
            while let node = try parser.nextRoot() {
                let value = try convert(node, path: "", depth: 0, budget: &budget)
                if value == .null { continue }  // an empty document between separators
                docs.append(Document(value: value, index: docs.count + 1, line: node.mark.map { $0.line }))
            }
        } catch let error as InvalidObjectError {
            throw error
        } catch {
            throw InvalidObjectError(kind: "document", causes: [FieldError("", "invalid YAML: " + "\(error)".split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }.joined(separator: " | "))])
        }
        return docs
    }

    /// Where the first anchor (`&name`) or alias (`*name`) stands, outside quotes, comments and
    /// block scalars: at the start of a node (after indentation, `- `, `: `, `? `, `[`, `{` or `,`).
    static func anchorOrAlias(in text: String) -> (line: Int, column: Int, what: String)? {
        var blockIndent: Int?   // inside a block scalar: lines indented deeper than this are literal
        for (n, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let chars = Array(raw)
            let indent = chars.prefix { $0 == " " }.count
            if let b = blockIndent {
                if chars.allSatisfy({ $0 == " " || $0 == "\r" }) || indent > b { continue }
                blockIndent = nil
            }
            var quote: Character?
            var previous: Character?   // the last non-space character outside quotes
            var i = 0
            while i < chars.count {
                let c = chars[i]
                if let q = quote {
                    if q == "\"" && c == "\\" { i += 2; continue }
                    if c == q {
                        if q == "'" && i + 1 < chars.count && chars[i + 1] == "'" { i += 2; continue }
                        quote = nil
                    }
                    i += 1
                    continue
                }
                if c == "#" && (i == 0 || chars[i - 1] == " " || chars[i - 1] == "\t") { break }
                if (c == "\"" || c == "'") && (previous == nil || ":-[{,?".contains(previous!)) { quote = c; previous = c; i += 1; continue }
                if (c == "&" || c == "*") && (previous == nil || ":-[{,?".contains(previous!)) && i + 1 < chars.count
                    && !" \t,[]{}".contains(chars[i + 1]) && (i == 0 || " \t[{,".contains(chars[i - 1])) {
                    return (n + 1, i + 1, c == "&" ? "anchors" : "aliases")
                }
                if c != " " && c != "\t" { previous = c }
                i += 1
            }
            // A block scalar indicator ends the line: what follows, indented deeper, is text.
            let trimmed = String(raw).split(separator: "#").first.map { $0.trimmingCharacters(in: .whitespaces) } ?? ""
            if quote == nil, let last = trimmed.split(separator: " ").last, let first = last.first, first == "|" || first == ">",
               last.dropFirst().allSatisfy({ "+-0123456789".contains($0) }) {
                blockIndent = indent
            }
        }
        return nil
    }

    /// Converts a YAML node to a tree, resolving scalars by their YAML 1.1 tags, as Kubernetes does;
    /// at most `budget` nodes (shared with the rest of the submission), nested at most `maxDepth` deep.
    static func convert(_ node: Yams.Node, path: String, depth: Int, budget: inout Int) throws -> JSONValue {
        budget -= 1
        guard budget >= 0 else {
            throw InvalidObjectError(kind: "document", causes: [FieldError(path, "more than \(maxNodes) values in one submission")])
        }
        guard depth <= maxDepth else {
            throw InvalidObjectError(kind: "document", causes: [FieldError(path, "nested more than \(maxDepth) levels deep")])
        }
        switch node {
        case .scalar(let scalar):
            switch Tag.Name(rawValue: node.tag.rawValue) {
            case .null: return .null
            case .bool: return node.bool.map(JSONValue.bool) ?? .string(scalar.string)
            case .int:
                if let i = Int64(exactly: node.int ?? 0), node.int != nil { return .int(i) }
                return .string(scalar.string)
            case .float:
                if let d = node.float { return .double(d) }
                return .string(scalar.string)
            default: return .string(scalar.string)
            }
        case .mapping(let mapping):
            var out: [String: JSONValue] = [:]
            for (k, v) in mapping {
                guard case .scalar(let ks) = k else {
                    throw InvalidObjectError(kind: "document", causes: [
                        FieldError(path, "mapping keys must be strings\(where_(k))")
                    ])
                }
                let key = ks.string
                let childPath = FieldPath.join(path, key)
                if out[key] != nil {
                    throw InvalidObjectError(kind: "document", causes: [
                        FieldError(childPath, "duplicate key\(where_(k))")
                    ])
                }
                out[key] = try convert(v, path: childPath, depth: depth + 1, budget: &budget)
            }
            return .object(out)
        case .sequence(let seq):
            var items: [JSONValue] = []
            for (i, element) in seq.enumerated() { items.append(try convert(element, path: "\(path)[\(i)]", depth: depth + 1, budget: &budget)) }
            return .array(items)
        case .alias:
            return .null
        }
    }

    private static func where_(_ node: Yams.Node) -> String {
        guard let m = node.mark else { return "" }
        return " (line \(m.line), column \(m.column))"
    }

    private static func firstInvalidUTF8Offset(_ data: Data) -> Int {
        var offset = 0
        let bytes = [UInt8](data)
        while offset < bytes.count {
            let b = bytes[offset]
            let len: Int
            switch b {
            case 0x00...0x7F: len = 1
            case 0xC2...0xDF: len = 2
            case 0xE0...0xEF: len = 3
            case 0xF0...0xF4: len = 4
            default: return offset
            }
            if offset + len > bytes.count { return offset }
            for i in 1..<len where bytes[offset + i] & 0xC0 != 0x80 { return offset }
            if String(bytes: bytes[offset..<offset + len], encoding: .utf8) == nil { return offset }
            offset += len
        }
        return offset
    }

    /// Renders a `DecodingError` as "path: what was wrong".
    public static func describe(_ error: DecodingError) -> String {
        switch error {
        case .typeMismatch(let type, let ctx):
            return fieldPrefix(ctx.codingPath) + "expected \(typeWord(type))" + detail(ctx)
        case .valueNotFound(let type, let ctx):
            return fieldPrefix(ctx.codingPath) + "expected \(typeWord(type)), got null"
        case .keyNotFound(let key, let ctx):
            return fieldPrefix(ctx.codingPath + [key]) + "required field is missing"
        case .dataCorrupted(let ctx):
            return fieldPrefix(ctx.codingPath) + ctx.debugDescription + underlying(ctx)
        @unknown default:
            return "\(error)"
        }
    }

    private static func fieldPrefix(_ path: [any CodingKey]) -> String {
        let p = FieldPath.render(path)
        return p.isEmpty ? "" : "\(p): "
    }

    private static func detail(_ ctx: DecodingError.Context) -> String {
        let d = ctx.debugDescription
        return d.isEmpty ? "" : " (\(d))"
    }

    private static func underlying(_ ctx: DecodingError.Context) -> String {
        guard let u = ctx.underlyingError else { return "" }
        return " (\(u))"
    }

    static func typeWord(_ type: Any.Type) -> String {
        if type is String.Type { return "a string" }
        if type is Bool.Type { return "a boolean" }
        if type is Int.Type || type is Int64.Type || type is Int32.Type { return "an integer" }
        if type is Double.Type || type is Float.Type { return "a number" }
        let name = String(describing: type)
        if name.hasPrefix("Array") { return "a list" }
        return "an object"
    }
}
