import Foundation

/// The patch formats the API accepts on `PATCH`, by content type, as Kubernetes names them.
public enum PatchType: String, Sendable, CaseIterable {
    /// RFC 7386: objects merge, `null` deletes, everything else (lists too) replaces.
    case merge = "application/merge-patch+json"
    /// RFC 6902: a list of operations on JSON pointers.
    case json = "application/json-patch+json"
    /// Server-side apply: the body is the applier's whole intent for the object.
    case apply = "application/apply-patch+yaml"
    /// Kubernetes' strategic merge patch needs per-field merge keys the ampd types do not have;
    /// refused with 415 (as the Kubernetes API server refuses it for custom resources).
    case strategic = "application/strategic-merge-patch+json"

    /// The type named by a `Content-Type` header (parameters such as `charset` ignored).
    public init?(contentType: String) {
        let base = contentType.split(separator: ";").first.map { $0.trimmingCharacters(in: .whitespaces).lowercased() } ?? ""
        self.init(rawValue: base)
    }
}

/// A patch that cannot be applied: names the operation (`[2].path`) or the pointer and why.
public struct PatchError: Error, Sendable, Hashable, CustomStringConvertible {
    public var field: String
    public var message: String
    public init(_ field: String, _ message: String) {
        self.field = field
        self.message = message
    }
    public var description: String { "\(field): \(message)" }
}

/// RFC 7386 JSON merge patch.
public enum MergePatch {
    public static func apply(_ patch: JSONValue, to target: JSONValue) -> JSONValue {
        guard case .object(let p) = patch else { return patch }
        var out: [String: JSONValue]
        if case .object(let t) = target { out = t } else { out = [:] }
        for (key, value) in p {
            if value == .null {
                out[key] = nil
            } else {
                out[key] = apply(value, to: out[key] ?? .null)
            }
        }
        return .object(out)
    }
}

/// RFC 6902 JSON patch: add, remove, replace, move, copy, test; pointers per RFC 6901.
public enum JSONPatch {
    public static func apply(_ patch: JSONValue, to target: JSONValue) throws(PatchError) -> JSONValue {
        guard case .array(let ops) = patch else {
            throw PatchError("", "a JSON patch is a list of operations; got \(patch.typeName)")
        }
        var doc = target
        for (i, op) in ops.enumerated() {
            let at = "[\(i)]"
            guard case .object(let o) = op else { throw PatchError(at, "an operation is an object; got \(op.typeName)") }
            guard case .string(let name)? = o["op"] else { throw PatchError("\(at).op", "required: add, remove, replace, move, copy or test") }
            guard case .string(let pathText)? = o["path"] else { throw PatchError("\(at).path", "required: a JSON pointer such as /spec/decode/replicas") }
            let path = try pointer(pathText, field: "\(at).path")
            func value() throws(PatchError) -> JSONValue {
                guard let v = o["value"] else { throw PatchError("\(at).value", "required for \(name)") }
                return v
            }
            func from() throws(PatchError) -> [String] {
                guard case .string(let f)? = o["from"] else { throw PatchError("\(at).from", "required for \(name)") }
                return try pointer(f, field: "\(at).from")
            }
            switch name {
            case "add":
                doc = try add(try value(), at: path, in: doc, field: "\(at).path")
            case "remove":
                doc = try remove(at: path, in: doc, field: "\(at).path").doc
            case "replace":
                _ = try get(path, in: doc, field: "\(at).path")
                doc = try remove(at: path, in: doc, field: "\(at).path").doc
                doc = try add(try value(), at: path, in: doc, field: "\(at).path")
            case "move":
                let source = try from()
                if path.count > source.count && Array(path.prefix(source.count)) == source {
                    throw PatchError("\(at).path", "cannot move a value into itself")
                }
                let (rest, moved) = try remove(at: source, in: doc, field: "\(at).from")
                doc = try add(moved, at: path, in: rest, field: "\(at).path")
            case "copy":
                doc = try add(try get(try from(), in: doc, field: "\(at).from"), at: path, in: doc, field: "\(at).path")
            case "test":
                let actual = try get(path, in: doc, field: "\(at).path")
                let expected = try value()
                if actual != expected {
                    throw PatchError("\(at).path", "test failed: \(pathText) is \(actual.shortDescription), not \(expected.shortDescription)")
                }
            default:
                throw PatchError("\(at).op", "unknown operation \"\(name)\"; expected add, remove, replace, move, copy or test")
            }
        }
        return doc
    }

    /// The reference tokens of an RFC 6901 pointer (`~1` is `/`, `~0` is `~`).
    static func pointer(_ text: String, field: String) throws(PatchError) -> [String] {
        if text.isEmpty { return [] }
        guard text.hasPrefix("/") else { throw PatchError(field, "a JSON pointer starts with /; got \"\(text)\"") }
        return text.dropFirst().split(separator: "/", omittingEmptySubsequences: false).map {
            $0.replacingOccurrences(of: "~1", with: "/").replacingOccurrences(of: "~0", with: "~")
        }
    }

    static func rendered(_ path: [String]) -> String { "/" + path.joined(separator: "/") }

    static func get(_ path: [String], in doc: JSONValue, field: String) throws(PatchError) -> JSONValue {
        var cur = doc
        for (i, token) in path.enumerated() {
            switch cur {
            case .object(let o):
                guard let next = o[token] else { throw PatchError(field, "\(rendered(Array(path[...i]))) does not exist") }
                cur = next
            case .array(let a):
                guard let idx = Int(token), a.indices.contains(idx) else {
                    throw PatchError(field, "\(rendered(Array(path[...i]))): no element \(token) in a list of \(a.count)")
                }
                cur = a[idx]
            default:
                throw PatchError(field, "\(rendered(Array(path[..<i]))) is \(cur.typeName), not an object or a list")
            }
        }
        return cur
    }

    static func add(_ value: JSONValue, at path: [String], in doc: JSONValue, field: String) throws(PatchError) -> JSONValue {
        guard let token = path.first else { return value }
        let rest = Array(path.dropFirst())
        switch doc {
        case .object(var o):
            if rest.isEmpty {
                o[token] = value
            } else {
                guard let child = o[token] else { throw PatchError(field, "\(rendered(Array(path.prefix(1)))) does not exist") }
                o[token] = try add(value, at: rest, in: child, field: field)
            }
            return .object(o)
        case .array(var a):
            if rest.isEmpty {
                if token == "-" { a.append(value); return .array(a) }
                guard let idx = Int(token), idx >= 0, idx <= a.count else {
                    throw PatchError(field, "index \(token) is outside a list of \(a.count)")
                }
                a.insert(value, at: idx)
            } else {
                guard let idx = Int(token), a.indices.contains(idx) else {
                    throw PatchError(field, "no element \(token) in a list of \(a.count)")
                }
                a[idx] = try add(value, at: rest, in: a[idx], field: field)
            }
            return .array(a)
        default:
            throw PatchError(field, "cannot add under \(doc.typeName)")
        }
    }

    static func remove(at path: [String], in doc: JSONValue, field: String) throws(PatchError) -> (doc: JSONValue, removed: JSONValue) {
        guard let token = path.first else { throw PatchError(field, "cannot remove the whole document") }
        let rest = Array(path.dropFirst())
        switch doc {
        case .object(var o):
            guard let child = o[token] else { throw PatchError(field, "\(rendered(path)) does not exist") }
            if rest.isEmpty {
                o[token] = nil
                return (.object(o), child)
            }
            let (newChild, removed) = try remove(at: rest, in: child, field: field)
            o[token] = newChild
            return (.object(o), removed)
        case .array(var a):
            guard let idx = Int(token), a.indices.contains(idx) else {
                throw PatchError(field, "no element \(token) in a list of \(a.count)")
            }
            if rest.isEmpty {
                let removed = a.remove(at: idx)
                return (.array(a), removed)
            }
            let (newChild, removed) = try remove(at: rest, in: a[idx], field: field)
            a[idx] = newChild
            return (.array(a), removed)
        default:
            throw PatchError(field, "cannot remove under \(doc.typeName)")
        }
    }
}
