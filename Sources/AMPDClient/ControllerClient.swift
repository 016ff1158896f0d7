import AMPDAPI
import AMPDFailover
import AsyncHTTPClient
import Foundation
import NIOCore
import NIOFoundationCompat
import NIOHTTP1
import NIOSSL

extension ClientConfiguration {
    public static func load(_ url: URL) throws -> ClientConfiguration {
        let data: Data
        do { data = try Data(contentsOf: url) } catch {
            throw ClientError(message: "cannot read client config \(url.path): \(error.localizedDescription) (the controller writes it to <data-dir>/client.json)")
        }
        do { return try JSONCoding.decoder.decode(ClientConfiguration.self, from: data) } catch let e as DecodingError {
            throw ClientError(message: "client config \(url.path) is invalid: \(DocumentReader.describe(e))")
        }
    }
}

/// A failed call: the controller's Status (when it answered) or a transport problem.
public struct ClientError: Error, Sendable, CustomStringConvertible {
    public var status: APIStatus?
    public var message: String

    public init(status: APIStatus? = nil, message: String) {
        self.status = status
        self.message = message
    }

    public var code: Int? { status?.code }
    public var description: String { message }
}

/// A typed HTTPS client of the controller API, used by the CLI, agents, tests and benchmarks.
/// With several controller URLs (replicas: one leads and serves, the others wait with no port
/// open), a request goes to the one that last answered and moves to the next only when a
/// connection cannot be made.
public final class ControllerClient: Sendable {
    public let config: ClientConfiguration
    private let http: HTTPClient
    private let endpoints: Endpoints
    static let prefix = "/apis/\(APIGroup.group)/\(APIGroup.version)"

    public init(config: ClientConfiguration, timeout: TimeAmount = .seconds(90)) throws {
        self.config = config
        var tls = TLSConfiguration.makeClientConfiguration()
        tls.minimumTLSVersion = .tlsv12
        do {
            tls.trustRoots = .certificates(try NIOSSLCertificate.fromPEMFile(config.certificateAuthority))
        } catch {
            throw ClientError(message: "cannot load CA certificate \(config.certificateAuthority): \(error)")
        }
        let servers = config.servers
        guard !servers.isEmpty else { throw ClientError(message: "no controller URL in the client config's server field") }
        endpoints = Endpoints(servers)
        var c = HTTPClient.Configuration(tlsConfiguration: tls)
        c.timeout = .init(connect: .seconds(10), read: timeout)
        c.connectionPool = .init(idleTimeout: .seconds(30), concurrentHTTP1ConnectionsPerHostSoftLimit: 64)
        // With other replicas to try, a refused connection moves on at once instead of being
        // retried until the connect timeout.
        c.connectionPool.retryConnectionEstablishment = servers.count == 1
        self.http = HTTPClient(eventLoopGroupProvider: .singleton, configuration: c)
    }

    public func shutdown() async throws { try await http.shutdown() }

    // MARK: - Deployments

    public static func deploymentPath(_ namespace: String, _ name: String? = nil) -> String {
        "\(prefix)/namespaces/\(namespace)/servingdeployments" + (name.map { "/\($0)" } ?? "")
    }

    /// Creates or updates a deployment from a manifest document (YAML or JSON tree).
    public func apply(_ document: JSONValue) async throws -> ServingDeployment {
        let ns = document["metadata"]?["namespace"].flatMap { if case .string(let s) = $0 { s } else { nil } } ?? APIGroup.defaultNamespace
        guard case .string(let name)? = document["metadata"]?["name"] else {
            throw ClientError(message: "metadata.name: required field is missing")
        }
        return try await send(.PUT, Self.deploymentPath(ns, name), body: try JSONCoding.encoder.encode(document))
    }

    public func create(_ d: ServingDeployment) async throws -> ServingDeployment {
        try await send(.POST, Self.deploymentPath(d.metadata.namespaceOrDefault), body: try JSONCoding.encoder.encode(d))
    }

    public func update(_ d: ServingDeployment) async throws -> ServingDeployment {
        try await send(.PUT, Self.deploymentPath(d.metadata.namespaceOrDefault, d.metadata.name), body: try JSONCoding.encoder.encode(d))
    }

    public func deployment(_ name: String, namespace: String = APIGroup.defaultNamespace) async throws -> ServingDeployment {
        try await send(.GET, Self.deploymentPath(namespace, name))
    }

    /// Watches deployments (`?watch=true`): ADDED/MODIFIED/DELETED events until the stream is
    /// dropped or `timeoutSeconds` pass. Without `resourceVersion` the current ones come first as
    /// ADDED. An ERROR line ends the stream with the server's Status (410 Expired: list again).
    public func watchDeployments(namespace: String? = nil, resourceVersion: String? = nil,
                                 timeoutSeconds: Int? = nil) -> AsyncThrowingStream<WatchEvent<ServingDeployment>, any Error> {
        var path = (namespace.map { Self.deploymentPath($0) } ?? "\(Self.prefix)/servingdeployments") + "?watch=true"
        if let resourceVersion { path += "&resourceVersion=\(resourceVersion)" }
        if let timeoutSeconds { path += "&timeoutSeconds=\(timeoutSeconds)" }
        let (stream, continuation) = AsyncThrowingStream<WatchEvent<ServingDeployment>, any Error>.makeStream()
        let token = config.token, http = self.http, endpoints = self.endpoints, server = config.server
        let task = Task {
            do {
                let response = try await endpoints.attempt { base in
                    var req = HTTPClientRequest(url: base + path)
                    if !token.isEmpty { req.headers.add(name: "Authorization", value: "Bearer \(token)") }
                    return try await http.execute(req, timeout: .seconds(30))
                }
                guard response.status == .ok else {
                    let data = Data(buffer: try await response.body.collect(upTo: 1 << 20))
                    let _: ServingDeployment = try Self.decode(Int(response.status.code), data, .GET, path)
                    throw ClientError(message: "watch answered \(response.status.code)")
                }
                var buffer = Data()
                for try await chunk in response.body {
                    buffer.append(contentsOf: chunk.readableBytesView)
                    while let newline = buffer.firstIndex(of: UInt8(ascii: "\n")) {
                        let line = Data(buffer[buffer.startIndex..<newline])
                        buffer = Data(buffer[buffer.index(after: newline)...])
                        guard !line.isEmpty else { continue }
                        struct Head: Decodable { var type: String }
                        let head = try JSONCoding.decoder.decode(Head.self, from: line)
                        if head.type == "ERROR" {
                            let status = try JSONCoding.decoder.decode(WatchEvent<APIStatus>.self, from: line).object
                            throw ClientError(status: status, message: status.message)
                        }
                        continuation.yield(try JSONCoding.decoder.decode(WatchEvent<ServingDeployment>.self, from: line))
                    }
                }
                continuation.finish()
            } catch let e as ClientError {
                continuation.finish(throwing: e)
            } catch {
                continuation.finish(throwing: ClientError(message: "watch on controller at \(server): \(error)"))
            }
        }
        continuation.onTermination = { _ in task.cancel() }
        return stream
    }

    public func deployments(namespace: String? = nil) async throws -> [ServingDeployment] {
        let path = namespace.map { Self.deploymentPath($0) } ?? "\(Self.prefix)/servingdeployments"
        let list: ObjectList<ServingDeployment> = try await send(.GET, path)
        return list.items
    }

    @discardableResult
    public func delete(_ name: String, namespace: String = APIGroup.defaultNamespace) async throws -> ServingDeployment {
        try await send(.DELETE, Self.deploymentPath(namespace, name))
    }

    /// The deployment's calibrated cost-model profiles (YAML, `hardware:` and `models:`).
    public func calibratedProfile(_ name: String, namespace: String = APIGroup.defaultNamespace) async throws -> String {
        let path = Self.deploymentPath(namespace, name) + "/profile"
        let (status, data) = try await raw(.GET, path)
        guard (200..<300).contains(status) else {
            let _: JSONValue = try Self.decode(status, data, .GET, path)
            throw ClientError(message: "HTTP \(status)")
        }
        return String(decoding: data, as: UTF8.self)
    }

    public func scale(_ name: String, namespace: String = APIGroup.defaultNamespace) async throws -> Scale {
        try await send(.GET, Self.deploymentPath(namespace, name) + "/scale")
    }

    public func setScale(_ name: String, namespace: String = APIGroup.defaultNamespace, prefill: Int?, decode: Int?) async throws -> Scale {
        let s = Scale(metadata: ObjectMeta(name: name, namespace: namespace), spec: ScaleSpec(prefill: prefill, decode: decode))
        return try await send(.PUT, Self.deploymentPath(namespace, name) + "/scale", body: try JSONCoding.encoder.encode(s))
    }

    // MARK: - Nodes

    public func nodes() async throws -> [Node] {
        let list: ObjectList<Node> = try await send(.GET, "\(Self.prefix)/nodes")
        return list.items
    }

    public func register(_ r: NodeRegistration) async throws -> Node {
        try await registerNode(r).node
    }

    /// Registers (or updates) a node; a first registration with a bootstrap token also returns
    /// the node's own credential, the token to act as it from then on.
    public func registerNode(_ r: NodeRegistration) async throws -> (node: Node, credential: String?) {
        let (status, data, headers) = try await exchange(.POST, "\(Self.prefix)/nodes", body: try JSONCoding.encoder.encode(r))
        let node: Node = try Self.decode(status, data, .POST, "\(Self.prefix)/nodes")
        return (node, headers.first(name: NodeCredentialHeader.name))
    }

    /// `token`: the node's credential when this client's token is another (a bootstrap token).
    public func heartbeat(node: String, _ hb: Heartbeat, token: String? = nil) async throws -> NodeAssignments {
        try await send(.PUT, "\(Self.prefix)/nodes/\(node)/heartbeat", body: try JSONCoding.encoder.encode(hb), token: token)
    }

    public func assignments(node: String, after: Int64 = -1, timeoutSeconds: Int = 0, token: String? = nil) async throws -> NodeAssignments {
        try await send(.GET, "\(Self.prefix)/nodes/\(node)/assignments?after=\(after)&timeoutSeconds=\(timeoutSeconds)", token: token)
    }

    public func deleteNode(_ name: String) async throws {
        let _: JSONValue = try await send(.DELETE, "\(Self.prefix)/nodes/\(name)")
    }

    // MARK: - Decisions

    public func decisions(deployment: String?, since: Int64 = 0, waitSeconds: Int = 0) async throws -> DecisionList {
        var q = "since=\(since)&waitSeconds=\(waitSeconds)"
        if let deployment { q += "&deployment=\(deployment.addingPercentEncoding(withAllowedCharacters: .urlQueryAllowed) ?? deployment)" }
        return try await send(.GET, "\(Self.prefix)/decisions?\(q)")
    }

    // MARK: - Raw

    /// Sends a request; decodes the body as `T` on 2xx, or throws the controller's Status.
    public func send<T: Decodable>(_ method: HTTPMethod, _ path: String, body: Data? = nil, token: String? = nil) async throws -> T {
        let (status, data) = try await raw(method, path, body: body, token: token)
        return try Self.decode(status, data, method, path)
    }

    static func decode<T: Decodable>(_ status: Int, _ data: Data, _ method: HTTPMethod, _ path: String) throws -> T {
        guard (200..<300).contains(status) else {
            if let s = try? JSONCoding.decoder.decode(APIStatus.self, from: data) {
                throw ClientError(status: s, message: s.message)
            }
            throw ClientError(message: "HTTP \(status): \(String(decoding: data.prefix(500), as: UTF8.self))")
        }
        do {
            return try JSONCoding.decoder.decode(T.self, from: data)
        } catch {
            throw ClientError(message: "unexpected response to \(method) \(path): \(error)")
        }
    }

    /// Sends a request and returns the status code and body, whatever they are.
    public func raw(_ method: HTTPMethod, _ path: String, body: Data? = nil, token: String? = nil) async throws -> (Int, Data) {
        let (status, data, _) = try await exchange(method, path, body: body, token: token)
        return (status, data)
    }

    /// Sends a request and returns the status code, body and headers, whatever they are.
    public func exchange(_ method: HTTPMethod, _ path: String, body: Data? = nil, token: String? = nil) async throws -> (Int, Data, HTTPHeaders) {
        let t = token ?? config.token
        do {
            return try await endpoints.attempt { server in
                var req = HTTPClientRequest(url: server + path)
                req.method = method
                if !t.isEmpty { req.headers.add(name: "Authorization", value: "Bearer \(t)") }
                if let body {
                    req.headers.add(name: "Content-Type", value: "application/json")
                    req.body = .bytes(ByteBuffer(data: body))
                }
                let resp = try await http.execute(req, timeout: .seconds(90))
                let buf = try await resp.body.collect(upTo: 64 << 20)
                return (Int(resp.status.code), Data(buffer: buf), resp.headers)
            }
        } catch let e as ClientError {
            throw e
        } catch let e as Endpoints.Unreachable {
            throw ClientError(message: "cannot reach controller at \(config.server): \(e)")
        } catch {
            throw ClientError(message: "cannot reach controller at \(endpoints.preferred): \(error)")
        }
    }
}
