import AMPDAPI
import AMPDObservability
import AMPDPKI
import AMPDStore
import Foundation
import Hummingbird
import HummingbirdTLS
import Logging
import NIOCore
import NIOSSL
import ServiceLifecycle

/// Settings of `ampd controller`.
public struct ControllerConfiguration: Sendable {
    public var dataDirectory: URL
    public var host: String = "127.0.0.1"
    /// 0 picks a free port; the chosen one is written to `<data>/client.yaml` and `portFile`.
    public var port: Int = 8443
    /// `token,user,role` lines; generated in the data directory on first start when nil.
    public var tokensFile: URL?
    /// Extra DNS names and IP addresses for the serving certificate.
    public var serverNames: [String] = []
    public var nodeGrace: Duration = .seconds(15)
    public var resync: Duration = .seconds(30)
    public var portFile: URL?
    /// Lifetime of agent and gateway certificates (hours, not years).
    public var agentCertificateValidity: TimeInterval = 24 * 3600
    /// Where objects, nodes and decisions live (nil: SQLite in the data directory).
    public var store: StoreLocation?

    public init(dataDirectory: URL) { self.dataDirectory = dataDirectory }
}

public struct ControllerError: Error, Sendable, CustomStringConvertible {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// `ampd controller`: store, CA, node registry, reconciler and REST API, run as one ServiceGroup
/// that shuts down gracefully on SIGTERM and SIGINT.
public struct Controller: Sendable {
    let config: ControllerConfiguration
    let logger: Logger

    public init(config: ControllerConfiguration, logger: Logger) {
        self.config = config
        self.logger = logger
    }

    public func run() async throws {
        let dir = config.dataDirectory
        do {
            try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        } catch {
            throw ControllerError("cannot create data directory \(dir.path): \(error.localizedDescription)")
        }

        // Identity: the CA and a fresh serving certificate for this start.
        let ca = try CertificateAuthority.loadOrCreate(directory: dir, commonName: "ampd controller CA")
        var dns = ["localhost"], ips = ["127.0.0.1", "::1"]
        for n in config.serverNames { if IPAddressBytes.parse(n) != nil { ips.append(n) } else { dns.append(n) } }
        if config.host != "0.0.0.0" && config.host != "::" && IPAddressBytes.parse(config.host) != nil && !ips.contains(config.host) { ips.append(config.host) }
        let serving = try ca.issue(commonName: "ampd-controller", dnsNames: dns, ipAddresses: ips, validity: 30 * 86_400, serverOnly: true)
        try PEMFile.write(serving.certificatePEM, to: dir.appendingPathComponent("tls.crt"), mode: 0o644)
        try PEMFile.write(serving.privateKeyPEM, to: dir.appendingPathComponent("tls.key"), mode: 0o600)

        // Tokens.
        let tokensURL = config.tokensFile ?? dir.appendingPathComponent("tokens.csv")
        if config.tokensFile == nil && !FileManager.default.fileExists(atPath: tokensURL.path) {
            _ = try Authenticator.generateFile(at: tokensURL)
            logger.info("Generated token file", metadata: ["event": "GeneratedTokens", "path": "\(tokensURL.path)"])
        }
        let tokenLogger = logger
        let auth = try Authenticator(file: tokensURL) { problem in
            if let problem {
                tokenLogger.error("Token file not reloaded", metadata: ["event": "TokensReloadFailed", "error": "\(problem)"])
            } else {
                tokenLogger.info("Token file reloaded", metadata: ["event": "TokensReloaded", "path": "\(tokensURL.path)"])
            }
        }

        // State.
        let location = config.store ?? .sqlite(path: dir.appendingPathComponent("ampd.sqlite").path)
        let store = try await location.open()
        logger.info("Opened store", metadata: ["event": "StoreOpened", "store": "\(location)"])
        let repo = Repository(store: store)
        let metrics = MetricsRegistry()
        let registry = NodeRegistry(repo: repo, grace: config.nodeGrace, logger: logger)
        try await registry.load()
        auth.setCredentials(try await repo.nodeCredentials())
        let board = AssignmentBoard(base: try await store.currentResourceVersion())
        let decisions = DecisionLog(store: store, logger: logger)
        let queue = WorkQueue()
        for d in try await repo.deployments(namespace: nil) {
            await board.set(deployment: d.metadata.key, instances: Reconciler.nodeInstances(d.status?.assignments ?? [], d))
            await queue.add(d.metadata.key)
        }
        let ready = ReadinessFlag()
        let reconciler = Reconciler(repo: repo, registry: registry, board: board, decisions: decisions, logger: logger)
        let issuer = try CertificateIssuer(ca: ca, validity: config.agentCertificateValidity, directory: dir, logger: logger)
        let reports = WorkloadReports()
        let api = APIServer(repo: repo, registry: registry, board: board, decisions: decisions, queue: queue,
                            auth: auth, metrics: metrics, logger: logger, ready: ready, issuer: issuer, reports: reports)

        var tls = TLSConfiguration.makeServerConfiguration(
            certificateChain: try NIOSSLCertificate.fromPEMBytes(Array(serving.certificatePEM.utf8)).map { .certificate($0) },
            privateKey: .privateKey(try NIOSSLPrivateKey(bytes: Array(serving.privateKeyPEM.utf8), format: .pem)))
        tls.minimumTLSVersion = .tlsv12

        let caPath = dir.appendingPathComponent("ca.crt").path
        let adminToken = auth.token(for: .admin) ?? ""
        let host = config.host
        let portFile = config.portFile
        let logger = self.logger
        let app = Application(
            router: api.router(),
            server: try .tls(.http1(), tlsConfiguration: tls),
            configuration: .init(address: .hostname(host, port: config.port), serverName: "ampd-controller"),
            onServerRunning: { channel in
                let port = channel.localAddress?.port ?? 0
                let shownHost = host == "0.0.0.0" || host == "::" ? "127.0.0.1" : host
                let urlHost = shownHost.contains(":") ? "[\(shownHost)]" : shownHost
                let client = ClientConfiguration(server: "https://\(urlHost):\(port)", certificateAuthority: caPath, token: adminToken)
                do {
                    try PEMFile.write(try JSONCoding.prettyEncoder.encode(client).string, to: dir.appendingPathComponent("client.json"), mode: 0o600)
                    if let portFile { try PEMFile.write("\(port)\n", to: portFile, mode: 0o644) }
                } catch {
                    logger.error("Cannot write client config", metadata: ["event": "ClientConfigFailed", "error": "\(error)"])
                }
                await ready.set()
                logger.info("Controller listening", metadata: ["event": "Listening", "address": "\(urlHost):\(port)",
                    "dataDirectory": "\(dir.path)", "clientConfig": "\(dir.appendingPathComponent("client.json").path)"])
            },
            logger: logger)

        let group = ServiceGroup(configuration: .init(
            services: [
                .init(service: app),
                .init(service: ReconcileLoop(reconciler: reconciler, queue: queue, repo: repo, resync: config.resync, metrics: metrics, logger: logger)),
                .init(service: NodeMonitor(registry: registry, queue: queue, repo: repo, interval: .milliseconds(500), metrics: metrics, logger: logger)),
                .init(service: PlannerLoop(repo: repo, registry: registry, decisions: decisions, queue: queue, reports: reports,
                                           metrics: metrics, logger: logger)),
            ],
            gracefulShutdownSignals: [.sigterm, .sigint],
            logger: logger))
        try await group.run()
        logger.info("Controller stopped", metadata: ["event": "Stopped"])
    }
}

extension Data {
    var string: String { String(decoding: self, as: UTF8.self) }
}
