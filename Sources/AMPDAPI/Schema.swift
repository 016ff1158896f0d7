import Foundation

/// A structural OpenAPI v3 schema (the subset Kubernetes accepts for custom resources), built in
/// Swift beside the types and the validator it describes: enums come from the types' cases and
/// ranges from `ManifestLimits`, the constants validation checks. Served to kubectl (explain,
/// client-side checks) and, later, the CRD's schema.
public struct Schema: Sendable, Hashable {
    public var type: String?
    public var description: String?
    public var format: String?
    public var properties: [String: Schema] = [:]
    public var required: [String] = []
    /// The schema of a list's items (zero or one element).
    public var items: [Schema] = []
    /// The schema of a map's values (zero or one element).
    public var values: [Schema] = []
    public var enumValues: [JSONValue]?
    public var minimum: Double?
    public var exclusiveMinimum = false
    public var maximum: Double?
    public var maxLength: Int?
    public var pattern: String?
    public var intOrString = false
    /// Members not described are kept as they are (status parts that grow with the controller).
    public var preserveUnknownFields = false
    /// CEL rules across fields (`x-kubernetes-validations`), each with the message it gives.
    public var validations: [(rule: String, message: String)] = []

    public static func == (a: Schema, b: Schema) -> Bool { a.json == b.json }
    public func hash(into h: inout Hasher) { h.combine(json) }

    public init(type: String? = nil, description: String? = nil) {
        self.type = type
        self.description = description
    }

    // MARK: Builders

    public static func object(_ description: String, required: [String] = [], _ properties: [String: Schema]) -> Schema {
        var s = Schema(type: "object", description: description)
        s.properties = properties
        s.required = required
        return s
    }

    public static func string(_ description: String, pattern: String? = nil, maxLength: Int? = nil, format: String? = nil) -> Schema {
        var s = Schema(type: "string", description: description)
        s.pattern = pattern
        s.maxLength = maxLength
        s.format = format
        return s
    }

    public static func integer(_ description: String, _ range: ClosedRange<Int>? = nil) -> Schema {
        var s = Schema(type: "integer", description: description)
        s.format = "int64"
        s.minimum = range.map { Double($0.lowerBound) }
        s.maximum = range.map { Double($0.upperBound) }
        return s
    }

    /// A number in `(above, atMost]`.
    public static func number(_ description: String, above: Double, atMost: Double) -> Schema {
        var s = Schema(type: "number", description: description)
        s.format = "double"
        s.minimum = above
        s.exclusiveMinimum = true
        s.maximum = atMost
        return s
    }

    public static func boolean(_ description: String) -> Schema { Schema(type: "boolean", description: description) }

    public static func enumeration<E: RawRepresentable & CaseIterable>(_ type: E.Type, _ description: String) -> Schema where E.RawValue == String {
        var s = Schema(type: "string", description: description)
        s.enumValues = E.allCases.map { .string($0.rawValue) }
        return s
    }

    public static func list(_ description: String, of item: Schema) -> Schema {
        var s = Schema(type: "array", description: description)
        s.items = [item]
        return s
    }

    public static func map(_ description: String, of value: Schema) -> Schema {
        var s = Schema(type: "object", description: description)
        s.values = [value]
        return s
    }

    public static func intOrString(_ description: String) -> Schema {
        var s = Schema(description: description)
        s.intOrString = true
        return s
    }

    /// The same schema with a CEL rule (as a CRD's `x-kubernetes-validations`).
    public func validated(_ rule: String, _ message: String) -> Schema {
        var s = self
        s.validations.append((rule, message))
        return s
    }

    public func preservingUnknownFields() -> Schema {
        var s = self
        s.preserveUnknownFields = true
        return s
    }

    // MARK: Rendering

    /// The OpenAPI v3.0 form (the one kubectl and CRDs read).
    public var json: JSONValue {
        var o: [String: JSONValue] = [:]
        if let type { o["type"] = .string(type) }
        if let description { o["description"] = .string(description) }
        if let format { o["format"] = .string(format) }
        if !properties.isEmpty { o["properties"] = .object(properties.mapValues(\.json)) }
        if !required.isEmpty { o["required"] = .array(required.map(JSONValue.string)) }
        if let item = items.first { o["items"] = item.json }
        if let value = values.first { o["additionalProperties"] = value.json }
        if let enumValues { o["enum"] = .array(enumValues) }
        if let minimum { o["minimum"] = Self.number(minimum) }
        if exclusiveMinimum { o["exclusiveMinimum"] = .bool(true) }
        if let maximum { o["maximum"] = Self.number(maximum) }
        if let maxLength { o["maxLength"] = .int(Int64(maxLength)) }
        if let pattern { o["pattern"] = .string(pattern) }
        if intOrString { o["x-kubernetes-int-or-string"] = .bool(true) }
        if preserveUnknownFields { o["x-kubernetes-preserve-unknown-fields"] = .bool(true) }
        if !validations.isEmpty {
            o["x-kubernetes-validations"] = .array(validations.map { .object(["rule": .string($0.rule), "message": .string($0.message)]) })
        }
        return .object(o)
    }

    /// What the schema finds wrong with a value, as a Kubernetes API server checking a custom
    /// resource would (types, enums, ranges, lengths, required and unknown fields; the CEL
    /// rules are not evaluated here: admission checks the same things by name).
    public func problems(in value: JSONValue, at path: String = "") -> [FieldError] {
        var out: [FieldError] = []
        let here = path.isEmpty ? "<root>" : path
        if value == .null { return [] }
        if intOrString {
            switch value {
            case .int, .string: break
            default: out.append(FieldError(here, "must be an integer or a string; got \(value.typeName)"))
            }
            return out
        }
        switch (type, value) {
        case ("object", .object(let o)):
            for r in required where o[r] == nil || o[r] == .null { out.append(FieldError(path.isEmpty ? r : "\(path).\(r)", "required")) }
            for (k, v) in o.sorted(by: { $0.key < $1.key }) {
                let p = path.isEmpty ? k : "\(path).\(k)"
                if let child = properties[k] {
                    out += child.problems(in: v, at: p)
                } else if let valueSchema = values.first {
                    out += valueSchema.problems(in: v, at: p)
                } else if !preserveUnknownFields {
                    out.append(FieldError(p, "unknown field"))
                }
            }
        case ("array", .array(let a)):
            if let item = items.first {
                for (i, v) in a.enumerated() { out += item.problems(in: v, at: "\(path)[\(i)]") }
            }
        case ("string", .string(let s)):
            if let maxLength, s.count > maxLength { out.append(FieldError(here, "must be at most \(maxLength) characters")) }
            if let pattern, s.range(of: pattern, options: .regularExpression) == nil { out.append(FieldError(here, "must match \(pattern)")) }
        case ("integer", .int), ("number", .int), ("number", .double), ("boolean", .bool):
            break
        case (nil, _):
            break
        default:
            out.append(FieldError(here, "must be \(type ?? "any"); got \(value.typeName)"))
            return out
        }
        if let enumValues, !enumValues.contains(value) {
            out.append(FieldError(here, "must be one of \(enumValues.map(\.shortDescription).joined(separator: ", ")); got \(value.shortDescription)"))
        }
        let number: Double? = switch value {
        case .int(let i): Double(i)
        case .double(let d): d
        default: nil
        }
        if let number {
            if let minimum, exclusiveMinimum ? number <= minimum : number < minimum {
                out.append(FieldError(here, "must be \(exclusiveMinimum ? "greater than" : "at least") \(Self.number(minimum).shortDescription)"))
            }
            if let maximum, number > maximum { out.append(FieldError(here, "must be at most \(Self.number(maximum).shortDescription)")) }
        }
        return out
    }

    /// Where the schema is not structural, as Kubernetes requires of a CRD's: every node has a
    /// type (or is int-or-string, or keeps unknown fields).
    public func structuralProblems(at path: String = "") -> [String] {
        var out: [String] = []
        if type == nil && !intOrString && !preserveUnknownFields { out.append("\(path.isEmpty ? "<root>" : path): no type") }
        for (k, v) in properties { out += v.structuralProblems(at: path.isEmpty ? k : "\(path).\(k)") }
        if let item = items.first { out += item.structuralProblems(at: "\(path)[]") }
        if let value = values.first { out += value.structuralProblems(at: "\(path).{}") }
        return out
    }

    static func number(_ d: Double) -> JSONValue {
        d == d.rounded() && abs(d) < 1e15 ? .int(Int64(d)) : .double(d)
    }

    /// Every property path the schema describes (`spec.decode.replicas`; `[]` for list items,
    /// `{}` for map values), for checking it against what the types decode.
    public func paths(_ prefix: String = "") -> [String] {
        var out: [String] = []
        for (k, v) in properties {
            let p = prefix.isEmpty ? k : "\(prefix).\(k)"
            out.append(p)
            out += v.paths(p)
        }
        if let item = items.first { out += item.paths("\(prefix)[]") }
        if let value = values.first { out += value.paths("\(prefix).{}") }
        return out
    }

    /// The schema at a property path, if it describes one.
    public func at(_ path: String) -> Schema? {
        var cur = self
        for key in path.split(separator: ".") {
            guard let next = cur.properties[String(key)] else { return nil }
            cur = next
        }
        return cur
    }
}
