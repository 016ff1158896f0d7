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
        return .object(o)
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
