import AMPDAPI
import AMPDClient
import AMPDKVPool
import AMPDObservability
import AMPDPKI
import Foundation
import Hummingbird
import HummingbirdTLS
import Logging
import NIOConcurrencyHelpers
import NIOSSL
import ServiceLifecycle

/// Configuration of `ampd agent`.
public struct AgentConfiguration: Sendable {
    public var controller: String
    /// The controller's CA certificate (PEM file): trusted for the API and for KV peers.
    public var caFile: String
    /// The bootstrap (node) token.
    public var token: String
    /// The node's stable identity.
    public var name: String
    public var dataDirectory: URL
    public var accelerator = "cpu"
    public var count = 1
    public var memoryBytes: Int64 = 8 << 30
    public var addresses = ["127.0.0.1"]
    public var kvHost = "127.0.0.1"
    public var kvPort = 0
    public var apiPort = 0
    /// KV cache capacity of each engine instance, in tokens.
    public var engineKVTokens = 8192
    /// Every engine step takes this many times as long as it computes (testing; ≥ 1).
    public var engineSlowdown = 1.0
    /// CPU cores of the host (reported with the capacity; engine threads above them share cores).
    public var cores = ProcessInfo.processInfo.activeProcessorCount
    public var heartbeat: Duration = .seconds(1)
    /// Renew the certificate once this share of its lifetime has passed.
    public var renewAt = 2.0 / 3.0
    /// Written once both endpoints listen: `{"kvPort": N, "apiPort": M, "serial": S}`.
    public var portFile: URL?
    /// Plain-HTTP `/healthz` and `/readyz` for kubelet probes (nil: none).
    public var healthPort: Int?

    public init(controller: String, caFile: String, token: String, name: String, dataDirectory: URL) {
        self.controller = controller
        self.caFile = caFile
        self.token = token
        self.name = name
        self.dataDirectory = dataDirectory
    }
}

public struct AgentError: Error, CustomStringConvertible {
    public var message: String
    public var description: String { message }
    public init(_ message: String) { self.message = message }
}

/// The node agent: enrolls with the controller (its key never leaves this
/// host: it sends a CSR), serves its KV pool endpoint over mutual TLS with the
/// certificate it got, heart-beats with live KV metrics, renews the
/// certificate well before expiry (new connections take the new one; open
/// ones continue), and refuses peers whose certificates were revoked.
/// It runs the role instances assigned to it (`RoleInstances`): an engine
/// per instance, reported Starting, Running or Failed, drained before removal.
public struct Agent: Sendable {
    let config: AgentConfiguration
    let logger: Logger

    public init(config: AgentConfiguration, logger: Logger) {
        self.config = config
        self.logger = logger
    }

    struct Credentials: Sendable {
        var certificatePEM: String
        var keyPEM: String
        var serial: String
        var notValidAfter: Date
        var issuedAt: Date
    }

    public func run() async throws {
        let dir = config.dataDirectory
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let caPEM: String
        do { caPEM = try String(contentsOfFile: config.caFile, encoding: .utf8) } catch {
            throw AgentError("cannot read the controller CA \(config.caFile): \(error.localizedDescription)")
        }
        let client = try await register()
        defer { Task { try? await client.shutdown() } }
        logger.info("Registered", metadata: ["event": "Registered", "node": "\(config.name)"])
        let first = try await enroll(client)

        let tlsBox = NIOLockedValueBox(try KVPoolTLS.server(certificatePEM: first.certificatePEM, privateKeyPEM: first.keyPEM, caPEM: caPEM))
        let revocations = RevocationCache()
        await revocations.update(try await client.send(.GET, "/apis/\(APIGroup.group)/\(APIGroup.version)/revokedcertificates") as RevocationList)
        // One pool per deployment served, configured from its manifest (`spec.kvPool`) as assignments arrive.
        let pools = KVPools()
        let server = try await KVPoolServer.bind(
            host: config.kvHost, port: config.kvPort, tls: { tlsBox.withLockedValue { $0 } }, pools: pools, logger: logger,
            checkPeer: { der in await PeerCertificatePolicy.problem(der: der, isRevoked: { await revocations.contains($0) }) },
            remoteOperations: KVPoolServer.pushOnly)
        logger.info("KV pool endpoint listening", metadata: ["event": "KVPoolListening", "port": "\(server.port)", "serial": "\(first.serial)"])

        // The instance API: HTTPS requiring a client certificate from the cluster CA.
        let clientBox = NIOLockedValueBox(try KVPoolTLS.client(certificatePEM: first.certificatePEM, privateKeyPEM: first.keyPEM, caPEM: caPEM))
        let instances = RoleInstances(logger: logger, kvCapacityTokens: config.engineKVTokens, slowdown: config.engineSlowdown, cores: config.cores)
        var apiTLS = TLSConfiguration.makeServerConfiguration(
            certificateChain: try NIOSSLCertificate.fromPEMBytes(Array(first.certificatePEM.utf8)).map { .certificate($0) },
            privateKey: .privateKey(try NIOSSLPrivateKey(bytes: Array(first.keyPEM.utf8), format: .pem)))
        apiTLS.trustRoots = .certificates(try NIOSSLCertificate.fromPEMBytes(Array(caPEM.utf8)))
        apiTLS.certificateVerification = .noHostnameVerification
        apiTLS.minimumTLSVersion = .tlsv12
        // Every handshake takes the current certificate: renewal reaches the API without a restart.
        let apiCredentials = NIOLockedValueBox<([NIOSSLCertificateSource], NIOSSLPrivateKeySource?)>((apiTLS.certificateChain, apiTLS.privateKey))
        apiTLS.sslContextCallback = { _, promise in
            let (chain, key) = apiCredentials.withLockedValue { $0 }
            var o = NIOSSLContextConfigurationOverride()
            o.certificateChain = chain
            o.privateKey = key
            promise.succeed(o)
        }
        let apiPort = PortBox()
        let metrics = MetricsRegistry()
        let api = InstanceAPI(instances: instances, pools: pools, clientTLS: { clientBox.withLockedValue { $0 } }, metrics: metrics,
                              checkPeer: { der in await PeerCertificatePolicy.problem(der: der, isRevoked: { await revocations.contains($0) }) },
                              logger: logger)
        let app = Application(
            router: api.router(),
            server: try .tls(.http1(), tlsConfiguration: apiTLS),
            configuration: .init(address: .hostname(config.kvHost, port: config.apiPort), serverName: "ampd-agent"),
            onServerRunning: { channel in await apiPort.set(channel.localAddress?.port ?? 0) },
            logger: logger)

        let beats = HeartbeatService(agent: self, client: client, pools: pools, server: server, revocations: revocations,
                                     credentials: first, caPEM: caPEM, tlsBox: tlsBox, clientBox: clientBox, instances: instances, apiPort: apiPort,
                                     metrics: metrics, apiCredentials: apiCredentials)
        var services: [ServiceGroupConfiguration.ServiceConfiguration] = [.init(service: KVPoolService(server: server)), .init(service: app), .init(service: beats)]
        if let healthPort = config.healthPort {
            // Probes: the agent is enrolled (it got here) and serves; no TLS, nothing else on it.
            let health = Router()
            health.get("/healthz") { _, _ in "ok\n" }
            health.get("/readyz") { _, _ in
                (await apiPort.port ?? 0) > 0 ? Response(status: .ok, body: .init(byteBuffer: ByteBuffer(string: "ok\n")))
                    : Response(status: .serviceUnavailable, body: .init(byteBuffer: ByteBuffer(string: "starting\n")))
            }
            services.append(.init(service: Application(router: health, configuration: .init(address: .hostname(config.kvHost, port: healthPort),
                                                                                             serverName: "ampd-agent-health"), logger: logger)))
        }
        let group = ServiceGroup(configuration: .init(services: services, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        try await group.run()
        logger.info("Agent stopped", metadata: ["event": "Stopped"])
    }

    /// Registers this node and returns a client that acts as it. The first registration uses
    /// the bootstrap token and gets the node's own credential, kept in the data directory
    /// (`node.credential`, mode 0600) and used from then on, also after a restart.
    func register() async throws -> ControllerClient {
        let file = config.dataDirectory.appendingPathComponent("node.credential")
        let saved = (try? String(contentsOf: file, encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines)
        let token = saved.flatMap { $0.isEmpty ? nil : $0 } ?? config.token
        func client(_ token: String) throws -> ControllerClient {
            try ControllerClient(config: ClientConfiguration(server: config.controller, certificateAuthority: config.caFile, token: token))
        }
        let first = try client(token)
        let minted: String?
        do {
            minted = try await first.registerNode(registration(endpoints: nil)).credential
        } catch let e as ClientError where e.status?.code == 401 && token != config.token {
            try? await first.shutdown()
            throw AgentError("the controller no longer accepts this node's credential (\(file.path)): the node was deleted or the controller's state reset; remove the file to enroll again with a bootstrap token")
        } catch let e as ClientError where e.status?.code == 409 {
            try? await first.shutdown()
            throw AgentError("\(e.message) (ampd delete node \(config.name))")
        } catch {
            try? await first.shutdown()
            throw error
        }
        guard let minted else { return first }
        try PEMFile.write(minted + "\n", to: file, mode: 0o600)
        logger.info("Node credential saved", metadata: ["event": "NodeCredentialSaved", "path": "\(file.path)"])
        try? await first.shutdown()
        return try client(minted)
    }

    /// This node as the controller registers it; endpoints once they listen.
    func registration(endpoints: NodeEndpoints?) -> NodeRegistration {
        NodeRegistration(name: config.name, capacity: NodeCapacity(accelerator: config.accelerator, count: config.count, memoryBytes: config.memoryBytes,
                                                                    cores: config.accelerator == "cpu" ? config.cores : nil),
                         addresses: config.addresses, endpoints: endpoints)
    }

    /// A new key (kept in the data directory, mode 0600) and a certificate for it.
    func enroll(_ client: ControllerClient) async throws -> Credentials {
        let (keyPEM, csrPEM) = try CertificateAuthority.makeCSR(commonName: config.name)
        let body = try JSONEncoder().encode(CertificateSigningRequestSpec(name: config.name, role: .node, csrPEM: csrPEM))
        let signed: SignedCertificate = try await client.send(.POST, "/apis/\(APIGroup.group)/\(APIGroup.version)/certificatesigningrequests", body: body)
        try PEMFile.write(keyPEM, to: config.dataDirectory.appendingPathComponent("agent.key"), mode: 0o600)
        try PEMFile.write(signed.certificatePEM, to: config.dataDirectory.appendingPathComponent("agent.crt"), mode: 0o644)
        logger.info("Enrolled", metadata: ["event": "Enrolled", "serial": "\(signed.serial)", "notValidAfter": "\(signed.notValidAfter)"])
        return Credentials(certificatePEM: signed.certificatePEM, keyPEM: keyPEM, serial: signed.serial,
                           notValidAfter: signed.notValidAfter, issuedAt: Date())
    }
}

/// The instance API's bound port, once it listens.
actor PortBox {
    var port: Int?
    func set(_ p: Int) { port = p }
}

/// Serials the controller has revoked, refreshed with the heartbeats.
actor RevocationCache {
    var serials: Set<String> = []
    func update(_ list: RevocationList) { serials = Set(list.serials) }
    func contains(_ serial: String) -> Bool { serials.contains(serial) }
}

/// Runs the KV endpoint until graceful shutdown.
struct KVPoolService: Service {
    let server: KVPoolServer
    func run() async throws {
        try await withGracefulShutdownHandler {
            try await server.run()
        } onGracefulShutdown: {
            Task { await server.close() }
        }
    }
}

/// Heartbeats with live KV metrics, revocation refresh, certificate renewal.
struct HeartbeatService: Service {
    let agent: Agent
    let client: ControllerClient
    let pools: KVPools
    let server: KVPoolServer
    let revocations: RevocationCache
    let credentials: Agent.Credentials
    let caPEM: String
    let tlsBox: NIOLockedValueBox<NIOSSLContext>
    let clientBox: NIOLockedValueBox<NIOSSLContext>
    let instances: RoleInstances
    let apiPort: PortBox
    let metrics: MetricsRegistry
    let apiCredentials: NIOLockedValueBox<([NIOSSLCertificateSource], NIOSSLPrivateKeySource?)>

    func writePortFile(api: Int, serial: String) throws {
        if let portFile = agent.config.portFile {
            try PEMFile.write("{\"kvPort\": \(server.port), \"apiPort\": \(api), \"serial\": \"\(serial)\"}\n", to: portFile, mode: 0o644)
        }
    }

    func run() async throws {
        var creds = credentials
        var failures = 0
        var published: Int?
        var lastTokens = 0
        var lastAt = ContinuousClock.now
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            do {
                // Once the API listens: publish both endpoints with the registration.
                if published == nil, let api = await apiPort.port {
                    _ = try await client.register(agent.registration(endpoints: NodeEndpoints(api: api, kv: server.port)))
                    try writePortFile(api: api, serial: creds.serial)
                    published = api
                    agent.logger.info("Endpoints published", metadata: ["event": "EndpointsPublished", "api": "\(api)", "kv": "\(server.port)"])
                }
                let engines = await instances.load()
                let now = ContinuousClock.now
                let elapsed = Double((now - lastAt).components.seconds) + Double((now - lastAt).components.attoseconds) / 1e18
                let rate = elapsed > 0 ? Double(max(0, engines.tokens - lastTokens)) / elapsed : 0
                lastTokens = engines.tokens
                lastAt = now
                let r = metrics.registry
                r.makeGauge(name: "ampd_agent_running_sequences").set(Double(engines.running))
                r.makeGauge(name: "ampd_agent_waiting_sequences").set(Double(engines.waiting))
                r.makeGauge(name: "ampd_agent_engine_kv_blocks_used").set(Double(engines.kvUsed))
                r.makeGauge(name: "ampd_agent_engine_kv_blocks_free").set(Double(engines.kvFree))
                r.makeGauge(name: "ampd_agent_engine_evicted_idle_sequences").set(Double(engines.evictedIdle))
                r.makeGauge(name: "ampd_agent_tokens_per_second").set(rate)
                for (instance, tokens) in await instances.engineBlockTokens() {
                    r.makeGauge(name: "ampd_agent_engine_block_tokens", labels: [("instance", instance)]).set(Double(tokens))
                }
                // Each deployment's pool, with the settings in force (also reported to the controller).
                let blockTokens = await instances.blockTokens()
                var reports: [KVPoolReport] = []
                var poolBlocks = 0, poolFree = 0
                for (name, (c, st)) in await pools.snapshot().sorted(by: { $0.key < $1.key }) {
                    let labels = [("pool", name)]
                    r.makeGauge(name: "ampd_agent_kv_pool_capacity_bytes", labels: labels).set(Double(c.capacityBytes))
                    r.makeGauge(name: "ampd_agent_kv_pool_bytes", labels: labels).set(Double(st.bytes))
                    r.makeGauge(name: "ampd_agent_kv_pool_blocks", labels: labels).set(Double(st.blocks))
                    r.makeGauge(name: "ampd_agent_kv_pool_evictions", labels: labels).set(Double(st.evictions))
                    poolBlocks += st.blocks
                    poolFree += max(0, (c.capacityBytes - st.bytes) / 4096)
                    reports.append(KVPoolReport(deployment: name, capacityBytes: c.capacityBytes, usedBytes: st.bytes, blocks: st.blocks,
                                                encryption: c.encrypt ? .aes256gcm : .none, tenantIsolation: c.tenantIsolation,
                                                leaseSeconds: Int(c.maxLeaseSeconds), blockTokens: blockTokens[name] ?? 16))
                }
                r.makeGauge(name: "ampd_agent_certificate_expiry_seconds").set(creds.notValidAfter.timeIntervalSinceNow)
                let phases = await instances.phases()
                for p in InstancePhase.allCases { r.makeGauge(name: "ampd_agent_instances", labels: [("phase", p.rawValue)]).set(Double(phases[p] ?? 0)) }
                let assignments = try await client.heartbeat(node: agent.config.name, Heartbeat(
                    load: NodeLoad(queueLength: engines.waiting, runningSequences: engines.running,
                                   kvBlocksUsed: poolBlocks + engines.kvUsed, kvBlocksFree: poolFree + engines.kvFree,
                                   tokensPerSecond: rate),
                    instances: await instances.reports(), pools: reports, timings: await instances.timings()))
                await instances.reconcile(assignments.instances)
                await pools.configure(await instances.poolConfigurations())
                await revocations.update(try await client.send(.GET, "/apis/\(APIGroup.group)/\(APIGroup.version)/revokedcertificates") as RevocationList)
                let lifetime = creds.notValidAfter.timeIntervalSince(creds.issuedAt)
                if Date().timeIntervalSince(creds.issuedAt) >= lifetime * agent.config.renewAt {
                    let renewed = try await agent.enroll(client)
                    let context = try KVPoolTLS.server(certificatePEM: renewed.certificatePEM, privateKeyPEM: renewed.keyPEM, caPEM: caPEM)
                    let clientContext = try KVPoolTLS.client(certificatePEM: renewed.certificatePEM, privateKeyPEM: renewed.keyPEM, caPEM: caPEM)
                    let chain = try NIOSSLCertificate.fromPEMBytes(Array(renewed.certificatePEM.utf8)).map { NIOSSLCertificateSource.certificate($0) }
                    let key = NIOSSLPrivateKeySource.privateKey(try NIOSSLPrivateKey(bytes: Array(renewed.keyPEM.utf8), format: .pem))
                    tlsBox.withLockedValue { $0 = context }
                    clientBox.withLockedValue { $0 = clientContext }
                    apiCredentials.withLockedValue { $0 = (chain, key) }
                    creds = renewed
                    agent.logger.info("Renewed certificate", metadata: ["event": "RenewedCertificate", "serial": "\(renewed.serial)",
                                                                        "notValidAfter": "\(renewed.notValidAfter)"])
                    if let api = published { try writePortFile(api: api, serial: renewed.serial) }
                }
                failures = 0
            } catch {
                failures += 1
                agent.logger.warning("Heartbeat failed", metadata: ["event": "HeartbeatFailed", "error": "\(error)", "consecutive": "\(failures)"])
            }
            try? await Task.sleep(for: agent.config.heartbeat)
        }
    }
}
