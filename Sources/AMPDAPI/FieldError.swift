/// One problem with one field of a submitted object, named by its path
/// (`spec.decode.parallelism.tensor`), in the shape Kubernetes reports as a status cause.
public struct FieldError: Sendable, Hashable, Codable, CustomStringConvertible {
    public var field: String
    public var message: String

    public init(_ field: String, _ message: String) {
        self.field = field
        self.message = message
    }

    public var description: String { field.isEmpty ? message : "\(field): \(message)" }
}

/// A submitted document that cannot be accepted: a syntax error, a type error, an unknown field
/// or a value that fails validation. Carries every problem found, each with its field path.
public struct InvalidObjectError: Error, Sendable, CustomStringConvertible {
    public var kind: String
    public var name: String?
    public var causes: [FieldError]

    public init(kind: String, name: String? = nil, causes: [FieldError]) {
        self.kind = kind
        self.name = name
        self.causes = causes
    }

    public var description: String {
        let subject = name.map { "\(kind) \"\($0)\"" } ?? kind
        return "\(subject) is invalid: " + causes.map(\.description).joined(separator: "; ")
    }
}

/// Builds dotted field paths from coding paths: `spec.pools[0].name`.
public enum FieldPath {
    public static func render(_ path: [any CodingKey]) -> String {
        var out = ""
        for key in path {
            if let i = key.intValue, key.stringValue.hasPrefix("Index") || key.stringValue == String(i) {
                out += "[\(i)]"
            } else {
                if !out.isEmpty { out += "." }
                out += key.stringValue
            }
        }
        return out
    }

    public static func join(_ base: String, _ key: String) -> String {
        base.isEmpty ? key : "\(base).\(key)"
    }
}
