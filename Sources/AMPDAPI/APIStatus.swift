/// The error body of every failed API call, shaped like Kubernetes' `Status`.
public struct APIStatus: Codable, Sendable, Hashable, Error, CustomStringConvertible {
    public enum Reason: String, Codable, Sendable, Hashable {
        case badRequest = "BadRequest"
        case unauthorized = "Unauthorized"
        case forbidden = "Forbidden"
        case notFound = "NotFound"
        case alreadyExists = "AlreadyExists"
        case conflict = "Conflict"
        case invalid = "Invalid"
        case methodNotAllowed = "MethodNotAllowed"
        case unsupportedMediaType = "UnsupportedMediaType"
        case serviceUnavailable = "ServiceUnavailable"
        case internalError = "InternalError"
        /// A watch's resourceVersion is older than the server keeps changes for (410).
        case expired = "Expired"
    }

    public struct Details: Codable, Sendable, Hashable {
        public var name: String?
        public var kind: String?
        public var causes: [FieldError]?
        public init(name: String? = nil, kind: String? = nil, causes: [FieldError]? = nil) {
            self.name = name
            self.kind = kind
            self.causes = causes
        }
    }

    public var apiVersion: String = "v1"
    public var kind: String = "Status"
    public var status: String = "Failure"
    public var message: String
    public var reason: Reason
    public var code: Int
    public var details: Details?

    public init(reason: Reason, code: Int, message: String, details: Details? = nil) {
        self.reason = reason
        self.code = code
        self.message = message
        self.details = details
    }

    public var description: String { message }

    public static func invalid(_ e: InvalidObjectError) -> APIStatus {
        APIStatus(reason: .invalid, code: 422, message: e.description,
                  details: Details(name: e.name, kind: e.kind, causes: e.causes))
    }
    public static func notFound(_ what: String) -> APIStatus {
        APIStatus(reason: .notFound, code: 404, message: "\(what) not found")
    }
    public static func conflict(_ message: String) -> APIStatus {
        APIStatus(reason: .conflict, code: 409, message: message)
    }
    public static func badRequest(_ message: String) -> APIStatus {
        APIStatus(reason: .badRequest, code: 400, message: message)
    }
}

/// A list response: `{"kind": "...List", "items": [...], "metadata": {"resourceVersion": ...}}`.
public struct ObjectList<Item: Codable & Sendable & Hashable>: Codable, Sendable, Hashable {
    public struct ListMeta: Codable, Sendable, Hashable {
        public var resourceVersion: String?
        public init(resourceVersion: String?) { self.resourceVersion = resourceVersion }
    }
    public var apiVersion: String = APIGroup.apiVersion
    public var kind: String
    public var metadata: ListMeta
    public var items: [Item]

    public init(kind: String, resourceVersion: String?, items: [Item]) {
        self.kind = kind
        self.metadata = ListMeta(resourceVersion: resourceVersion)
        self.items = items
    }
}

/// One line of a watch stream (`?watch=true`), as Kubernetes writes them: `ADDED`, `MODIFIED`,
/// `DELETED` with the object, or `ERROR` with a Status (410 Expired: list again).
public struct WatchEvent<Object: Codable & Sendable>: Codable, Sendable {
    public var type: String
    public var object: Object

    public init(type: String, object: Object) {
        self.type = type
        self.object = object
    }
}
