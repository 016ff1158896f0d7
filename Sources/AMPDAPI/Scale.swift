/// Replica counts of both pools.
public struct ScaleCounts: Codable, Sendable, Hashable {
    public var prefill: Int?
    public var decode: Int?
    public init(prefill: Int? = nil, decode: Int? = nil) {
        self.prefill = prefill
        self.decode = decode
    }
}

/// The `scale` subresource: `GET`/`PUT .../servingdeployments/{name}/scale`.
public struct Scale: Codable, Sendable, Hashable {
    public static let kind = "Scale"
    public var apiVersion: String = APIGroup.apiVersion
    public var kind: String = Scale.kind
    public var metadata: ObjectMeta
    public var spec: ScaleCounts
    public var status: PoolsStatus?

    public init(metadata: ObjectMeta, spec: ScaleCounts, status: PoolsStatus? = nil) {
        self.metadata = metadata
        self.spec = spec
        self.status = status
    }
}
