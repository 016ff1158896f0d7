import Foundation

/// A Kubernetes label selector (`?labelSelector=`): `k=v`, `k==v`, `k!=v`, `k in (a,b)`,
/// `k notin (a,b)`, `k`, `!k`, joined by commas; every requirement must hold.
public struct LabelSelector: Sendable, Hashable {
    public enum Requirement: Sendable, Hashable {
        case equals(String, String)
        case notEquals(String, String)
        case isIn(String, Set<String>)
        case notIn(String, Set<String>)
        case exists(String)
        case doesNotExist(String)
    }

    public var requirements: [Requirement]

    public init(parsing text: String) throws(InvalidParameter) {
        var reqs: [Requirement] = []
        for part in Self.split(text) {
            let p = part.trimmingCharacters(in: .whitespaces)
            if p.isEmpty { continue }
            if let r = p.range(of: " notin ") ?? p.range(of: " in ") {
                let key = String(p[..<r.lowerBound]).trimmingCharacters(in: .whitespaces)
                let rest = p[r.upperBound...].trimmingCharacters(in: .whitespaces)
                guard rest.hasPrefix("("), rest.hasSuffix(")") else {
                    throw InvalidParameter("labelSelector", "\"\(p)\": the values of in and notin go in parentheses: k in (a,b)")
                }
                let values = Set(rest.dropFirst().dropLast().split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) })
                try Self.checkKey(key, in: p)
                reqs.append(p[r].contains("notin") ? .notIn(key, values) : .isIn(key, values))
            } else if let r = p.range(of: "!=") {
                let key = p[..<r.lowerBound].trimmingCharacters(in: .whitespaces)
                try Self.checkKey(key, in: p)
                reqs.append(.notEquals(key, p[r.upperBound...].trimmingCharacters(in: .whitespaces)))
            } else if let r = p.range(of: "==") ?? p.range(of: "=") {
                let key = p[..<r.lowerBound].trimmingCharacters(in: .whitespaces)
                try Self.checkKey(key, in: p)
                reqs.append(.equals(key, p[r.upperBound...].trimmingCharacters(in: .whitespaces)))
            } else if p.hasPrefix("!") {
                let key = p.dropFirst().trimmingCharacters(in: .whitespaces)
                try Self.checkKey(key, in: p)
                reqs.append(.doesNotExist(key))
            } else {
                try Self.checkKey(p, in: p)
                reqs.append(.exists(p))
            }
        }
        requirements = reqs
    }

    public func matches(_ labels: [String: String]?) -> Bool {
        let l = labels ?? [:]
        return requirements.allSatisfy { r in
            switch r {
            case .equals(let k, let v): l[k] == v
            case .notEquals(let k, let v): l[k] != v
            case .isIn(let k, let vs): l[k].map(vs.contains) ?? false
            case .notIn(let k, let vs): !(l[k].map(vs.contains) ?? false)
            case .exists(let k): l[k] != nil
            case .doesNotExist(let k): l[k] == nil
            }
        }
    }

    /// Splits on commas outside parentheses.
    static func split(_ text: String) -> [String] {
        var parts: [String] = [], cur = "", depth = 0
        for c in text {
            if c == "(" { depth += 1 } else if c == ")" { depth -= 1 }
            if c == "," && depth == 0 { parts.append(cur); cur = "" } else { cur.append(c) }
        }
        parts.append(cur)
        return parts
    }

    static func checkKey(_ key: String, in part: String) throws(InvalidParameter) {
        let ok = !key.isEmpty && key.allSatisfy { $0.isLetter || $0.isNumber || "-_./".contains($0) }
        if !ok { throw InvalidParameter("labelSelector", "\"\(part)\": \"\(key)\" is not a label key") }
    }
}

/// A field selector (`?fieldSelector=`) on `metadata.name` and `metadata.namespace`, with `=`,
/// `==` or `!=`; any other field is refused by name.
public struct FieldSelector: Sendable, Hashable {
    public static let fields = ["metadata.name", "metadata.namespace"]
    public var requirements: [(field: String, value: String, equal: Bool)] = []

    public init(parsing text: String) throws(InvalidParameter) {
        for part in text.split(separator: ",") {
            let p = String(part)
            let (field, value, equal): (String, String, Bool)
            if let r = p.range(of: "!=") {
                (field, value, equal) = (String(p[..<r.lowerBound]), String(p[r.upperBound...]), false)
            } else if let r = p.range(of: "==") ?? p.range(of: "=") {
                (field, value, equal) = (String(p[..<r.lowerBound]), String(p[r.upperBound...]), true)
            } else {
                throw InvalidParameter("fieldSelector", "\"\(p)\": expected field=value or field!=value")
            }
            guard Self.fields.contains(field) else {
                throw InvalidParameter("fieldSelector", "\"\(field)\" is not a supported field selector; supported: \(Self.fields.joined(separator: ", "))")
            }
            requirements.append((field, value, equal))
        }
    }

    public func matches(_ meta: ObjectMeta) -> Bool {
        requirements.allSatisfy { r in
            let actual = r.field == "metadata.name" ? meta.name : meta.namespaceOrDefault
            return (actual == r.value) == r.equal
        }
    }

    public static func == (a: FieldSelector, b: FieldSelector) -> Bool {
        a.requirements.elementsEqual(b.requirements) { $0.field == $1.field && $0.value == $1.value && $0.equal == $1.equal }
    }
    public func hash(into h: inout Hasher) {
        for r in requirements { h.combine(r.field); h.combine(r.value); h.combine(r.equal) }
    }
}

/// A query parameter the API cannot use, named with the reason.
public struct InvalidParameter: Error, Sendable, Hashable, CustomStringConvertible {
    public var parameter: String
    public var message: String
    public init(_ parameter: String, _ message: String) {
        self.parameter = parameter
        self.message = message
    }
    public var description: String { "\(parameter): \(message)" }
}
