/// Replica counts of both pools.
public struct ScaleCounts: Codable, Sendable, Hashable {
    public var prefill: Int?
    public var decode: Int?
    public init(prefill: Int? = nil, decode: Int? = nil) {
        self.prefill = prefill
        self.decode = decode
    }
}

/// The `scale` subresource (`GET`/`PUT`/`PATCH .../servingdeployments/{name}/scale`), an
/// `autoscaling/v1` Scale so that `kubectl scale` works: `spec.replicas` is the decode pool (the
/// one `kubectl scale --replicas N` sets); `spec.prefill` and `spec.decode` name each pool
/// (`kubectl patch --subresource=scale --type=merge -p '{"spec":{"prefill":2}}'`, `ampd scale`).
public struct Scale: Codable, Sendable, Hashable {
    public static let kind = "Scale"
    public static let apiVersion = "autoscaling/v1"
    public var apiVersion: String = Scale.apiVersion
    public var kind: String = Scale.kind
    public var metadata: ObjectMeta
    public var spec: ScaleSpec
    public var status: ScaleStatus?

    public init(metadata: ObjectMeta, spec: ScaleSpec, status: ScaleStatus? = nil) {
        self.metadata = metadata
        self.spec = spec
        self.status = status
    }
}

public struct ScaleSpec: Codable, Sendable, Hashable {
    /// The decode pool's replicas (what `kubectl scale` reads and sets).
    public var replicas: Int?
    public var prefill: Int?
    public var decode: Int?

    public init(replicas: Int? = nil, prefill: Int? = nil, decode: Int? = nil) {
        self.replicas = replicas
        self.prefill = prefill
        self.decode = decode
    }

    /// The counts asked for: `decode` from `decode` or `replicas` (equal when both are given).
    public func counts() throws(InvalidObjectError) -> ScaleCounts {
        if let r = replicas, let d = decode, r != d {
            throw InvalidObjectError(kind: Scale.kind, causes: [FieldError("spec.replicas", "is the decode pool; it says \(r) but spec.decode says \(d) (give one, or the same)")])
        }
        return ScaleCounts(prefill: prefill, decode: decode ?? replicas)
    }
}

public struct ScaleStatus: Codable, Sendable, Hashable {
    /// Ready decode instances.
    public var replicas: Int
    public var prefill: PoolStatus?
    public var decode: PoolStatus
    public init(replicas: Int, prefill: PoolStatus?, decode: PoolStatus) {
        self.replicas = replicas
        self.prefill = prefill
        self.decode = decode
    }
}
