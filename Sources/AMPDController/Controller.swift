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
import UnixSignals

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
    /// On etcd: the file whose SHA-256 seals the shared CA key (required there).
    public var caKeyEncryptionKey: URL?
    /// On etcd: this replica's name in the leader election.
    public var replicaName: String = ProcessInfo.processInfo.hostName + "-\(getpid())"
    /// On etcd: the leader's lease; a standby takes over within about this long after the
    /// leader dies.
    public var leaseSeconds: Int64 = 5

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
        // Before anything else: a SIGTERM at any moment from here on is a graceful stop.
        let stop = await StopSignals.trap()
        let dir = config.dataDirectory
        do {
            try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        } catch {
            throw ControllerError("cannot create data directory \(dir.path): \(error.localizedDescription)")
        }

        // State. On etcd several replicas may share the store: this one waits to be elected, and
        // every write it makes as leader is fenced.
        let location = config.store ?? .sqlite(path: dir.appendingPathComponent("ampd.sqlite").path)
        var store = try await location.open()
        logger.info("Opened store", metadata: ["event": "StoreOpened", "store": "\(location)"])
        var leadership: Leadership?
        let ca: CertificateAuthority
        if case .etcd(let etcd) = location {
            guard let kekFile = config.caKeyEncryptionKey else {
                throw ControllerError("--store etcd://… needs --ca-kek FILE: the replicas share the CA, its key sealed under that file's key")
            }
            let kek = try SharedAuthority.keyEncryptionKey(file: kekFile)
            // A replica whose key cannot open the shared CA fails now, not once elected.
            if let stored = try await store.get(kind: SharedAuthority.kind, namespace: "", name: SharedAuthority.name) {
                _ = try SharedAuthority.open(stored.body, kek: kek)
            }
            let election = LeaderElection(location: etcd, identity: config.replicaName, ttlSeconds: config.leaseSeconds)
            let current = (try? await election.leader()) ?? nil
            logger.info("Waiting to lead", metadata: ["event": "Campaigning", "replica": "\(config.replicaName)",
                                                      "leader": "\(current ?? "none")"])
            guard let won = try await Self.campaign(election, until: stop.requested) else {
                logger.info("Controller stopped before it led", metadata: ["event": "Stopped"])
                return
            }
            if stop.requested.isOpen {
                await won.resign()
                logger.info("Controller stopped as it was elected", metadata: ["event": "Stopped"])
                return
            }
            leadership = won
            logger.info("Elected leader", metadata: ["event": "ElectedLeader", "replica": "\(config.replicaName)",
                                                     "fenceRevision": "\(won.fence.createRevision)", "leaseSeconds": "\(config.leaseSeconds)"])
            store = (store as! EtcdObjectStore).fenced(by: won.fence)
            ca = try await SharedAuthority.load(store: store, kek: kek, directory: dir, commonName: "ampd controller CA")
        } else {
            ca = try CertificateAuthority.loadOrCreate(directory: dir, commonName: "ampd controller CA")
        }

        // Identity: a fresh serving certificate for this start.
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
        let issuer = try await CertificateIssuer(ca: ca, validity: config.agentCertificateValidity, store: store, directory: dir, logger: logger)
        let reports = WorkloadReports()
        let calibrations = Calibrations()
        let api = APIServer(repo: repo, registry: registry, board: board, decisions: decisions, queue: queue,
                            auth: auth, metrics: metrics, logger: logger, ready: ready, issuer: issuer, reports: reports,
                            calibrations: calibrations)

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

        var services: [ServiceGroupConfiguration.ServiceConfiguration] = [.init(service: app), .init(service: ShutdownNotice(latch: api.shuttingDown))]
        if let leadership { services.append(.init(service: LeadershipGuard(leadership: leadership, logger: logger))) }
        let group = ServiceGroup(configuration: .init(
            services: services + [

                .init(service: ReconcileLoop(reconciler: reconciler, queue: queue, repo: repo, resync: config.resync, metrics: metrics, logger: logger)),
                .init(service: NodeMonitor(registry: registry, queue: queue, repo: repo, interval: .milliseconds(500), metrics: metrics, logger: logger)),
                .init(service: PlannerLoop(repo: repo, registry: registry, decisions: decisions, queue: queue, reports: reports, calibrations: calibrations,
                                           metrics: metrics, logger: logger)),
            ],
            logger: logger))
        let forwarding = stop.forward(to: group)
        defer { forwarding.cancel() }
        do {
            try await group.run()
        } catch {
            await leadership?.resign()
            throw error
        }
        // Handing over at once: the standby need not wait for the lease to run out.
        await leadership?.resign()
        logger.info("Controller stopped", metadata: ["event": "Stopped"])
    }

    /// Campaigns until elected (the leadership) or until `stop` opens (nil).
    static func campaign(_ election: LeaderElection, until stop: Latch) async throws -> Leadership? {
        try await withThrowingTaskGroup(of: Leadership?.self) { group in
            group.addTask { try await election.campaign() }
            group.addTask {
                await stop.wait()
                return nil
            }
            let first = try await group.next() ?? nil
            group.cancelAll()
            return first
        }
    }
}

/// Opens a latch when graceful shutdown begins (so that long-lived responses, watches, end).
struct ShutdownNotice: Service {
    let latch: Latch

    func run() async throws {
        try? await gracefulShutdown()
        latch.open()
    }
}

/// Ends the controller when it stops leading (its lease could not be renewed in time, or
/// another replica leads): its writes are refused from then on anyway. Exit 1; a supervisor
/// restarts it as a standby. On a graceful shutdown it resigns at once.
struct LeadershipGuard: Service {
    let leadership: Leadership
    let logger: Logger

    func run() async throws {
        let lost: Bool = await withTaskGroup(of: Bool.self) { group in
            group.addTask { await leadership.waitUntilLost(); return true }
            group.addTask { try? await gracefulShutdown(); return false }
            let first = await group.next() ?? false
            group.cancelAll()
            return first
        }
        if lost && !Task.isCancelled {
            logger.critical("Lost leadership", metadata: ["event": "LostLeadership", "holder": "\(leadership.fence.holder)"])
            throw ControllerError("lost leadership: another replica may lead now")
        }
        // Shutting down: hand over first, so that a standby takes over while this replica drains
        // (its writes from here on are refused as fenced, and its clients retry there).
        await leadership.resign()
        logger.info("Resigned leadership", metadata: ["event": "Resigned", "holder": "\(leadership.fence.holder)"])
    }
}

extension Data {
    var string: String { String(decoding: self, as: UTF8.self) }
}
