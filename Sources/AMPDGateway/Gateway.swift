import AMPDAPI
import AMPDAutoscaling
import AMPDClient
import AMPDEngine
import AMPDObservability
import AMPDPKI
import AMPDPolicy
import Foundation
import Hummingbird
import Logging
import ServiceLifecycle

public struct GatewayConfiguration: Sendable {
    /// The controller's client.json (URL, CA, admin token for the gateway certificate).
    public var clientConfig: ClientConfiguration
    public var deployment: String
    public var namespace = APIGroup.defaultNamespace
    public var host = "127.0.0.1"
    public var port = 8000
    public var name = "gateway"
    public var portFile: URL?
    /// A session idle this long is dropped and its KV released on its decode instance.
    public var sessionTTL: TimeInterval = 600
    /// How often the gateway reports its observed workload to the controller's planner.
    public var reportInterval: Duration = .seconds(10)
    /// `key,tenant` lines; nil: no keys, one tenant.
    public var apiKeysFile: URL?

    public init(clientConfig: ClientConfiguration, deployment: String) {
        self.clientConfig = clientConfig
        self.deployment = deployment
    }
}

/// `ampd gateway`: OpenAI-compatible entry point with sessions. Gets its own
/// short-lived certificate from the controller's CA (CSR), follows the
/// deployment's running instances and its manifest's routing (a change applies to
/// the next round), and runs each round through `RoundRunner`, as the deployment's
/// round engine (`AMPDPolicy.RoundEngine`) directs.
public struct Gateway: Sendable {
    let config: GatewayConfiguration
    let logger: Logger

    public init(config: GatewayConfiguration, logger: Logger) {
        self.config = config
        self.logger = logger
    }

    public func run() async throws {
        let keys = try config.apiKeysFile.map(APIKeys.load) ?? .open
        if keys.required {
            logger.info("API keys loaded", metadata: ["event": "APIKeysLoaded", "keys": "\(keys.tenants!.count)", "tenants": "\(Set(keys.tenants!.values).count)"])
        } else {
            logger.warning("Serving without API keys: every client is tenant default", metadata: ["event": "NoAPIKeys"])
        }
        let client = try ControllerClient(config: config.clientConfig)
        let (keyPEM, signed) = try await CertificateRenewer.sign(client, name: config.name)
        let caller = try AgentCaller(certificatePEM: signed.certificatePEM, keyPEM: keyPEM, caPEM: signed.caPEM)
        logger.info("Certificate issued", metadata: ["event": "CertificateIssued", "serial": "\(signed.serial)", "notValidAfter": "\(signed.notValidAfter)"])

        let topology = Topology(client: client, deployment: config.deployment, namespace: config.namespace)
        try await topology.refresh()
        guard let d = await topology.current().1 else { throw GatewayError("deployment \(config.deployment) not found") }
        let modelPath = try ModelLocator.resolve(path: d.spec.model.source.path, pipPackage: d.spec.model.source.pip)
        let gguf = try GGUFFile(path: modelPath)
        let tokenizer = try BPETokenizer(gguf: gguf)
        let template = try? ChatTemplate(gguf: gguf)
        let contextLength = try LlamaConfig(gguf: gguf).contextLength
        // The dispatcher's cost model: the deployment's model and accelerators, as the planner
        // matches them; without a profile, SmolLM2 on one CPU core (what the native engine runs).
        let cost: CostModel
        do { cost = try LivePlanner.costModel(d) } catch {
            logger.warning("No cost-model profile; the dispatcher assumes SmolLM2-135M on cpu-1core", metadata: ["event": "NoProfile", "error": "\(error)"])
            cost = CostModel(model: try ProfileCatalog.builtin.model("SmolLM2-135M"), hardware: try ProfileCatalog.builtin.hardware("cpu-1core"))
        }
        let driver = RoundDriver(engine: RoundEngine(routing: RoutingConfiguration(d.spec), slo: Self.slo(d), cost: cost), caller: caller, pool: d.metadata.key, logger: logger)
        await TopologyRefresher.follow(topology, driver: driver)
        let runner = RoundRunner(caller: caller, driver: driver, tokenizer: tokenizer, pool: d.metadata.key, logger: logger)
        let records = RoundLog()
        let metrics = MetricsRegistry()
        let api = OpenAIAPI(runner: runner, template: template, modelName: d.spec.model.name, contextLength: contextLength, keys: keys,
                            metrics: metrics, records: records, logger: logger)
        let portFile = config.portFile
        let logger = self.logger
        let app = Application(
            router: api.router(),
            configuration: .init(address: .hostname(config.host, port: config.port), serverName: "ampd-gateway"),
            onServerRunning: { channel in
                let port = channel.localAddress?.port ?? 0
                if let portFile { try? PEMFile.write("\(port)\n", to: portFile, mode: 0o644) }
                logger.info("Gateway listening", metadata: ["event": "Listening", "port": "\(port)"])
            },
            logger: logger)
        let group = ServiceGroup(configuration: .init(
            services: [.init(service: app), .init(service: TopologyRefresher(topology: topology, driver: driver, sessionTTL: config.sessionTTL, logger: logger)),
                       .init(service: WorkloadReporter(client: client, topology: topology, records: records, source: config.name,
                                                       interval: config.reportInterval, logger: logger)),
                       .init(service: CertificateRenewer(client: client, caller: caller, name: config.name, first: signed, metrics: metrics, logger: logger))],
            gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        try await group.run()
        await caller.shutdown()
        try? await client.shutdown()
        logger.info("Gateway stopped", metadata: ["event": "Stopped"])
    }

    static func slo(_ d: ServingDeployment) -> LatencySLO {
        LatencySLO(ttft: d.spec.slo.ttftMs / 1000, itl: d.spec.slo.tpotMs / 1000)
    }
}

/// Follows the deployment's instances and manifest (routing, SLO) into the round engine,
/// and expires idle sessions (releasing their KV).
struct TopologyRefresher: Service {
    let topology: Topology
    let driver: RoundDriver
    let sessionTTL: TimeInterval
    let logger: Logger

    /// Hands the topology's current instances and the deployment's routing to the driver.
    static func follow(_ topology: Topology, driver: RoundDriver) async {
        let (instances, spec) = await topology.current()
        guard let spec else { return }
        await driver.configure(RoutingConfiguration(spec.spec), Gateway.slo(spec), tenantIsolation: spec.spec.kvPool?.tenantIsolation ?? true)
        if let cost = LiveCalibration.dispatcherCost(spec) { await driver.recalibrate(cost) }
        await driver.setInstances(instances, draining: await topology.drainingInstances(),
                                  tensor: [.prefill: spec.spec.prefill?.tensor ?? 1, .decode: spec.spec.decode.tensor])
    }

    func run() async throws {
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            do {
                try await topology.refresh()
                await Self.follow(topology, driver: driver)
            } catch {
                logger.warning("Topology refresh failed", metadata: ["event": "TopologyRefreshFailed", "error": "\(error)"])
            }
            _ = await driver.expire(idleLongerThan: sessionTTL)
            try? await Task.sleep(for: .milliseconds(500))
        }
    }
}

/// Sends the gateway's observed workload (`WorkloadWindow`) to the controller every
/// `interval`, for the planner; a failed report is logged and the next one tries again.
struct WorkloadReporter: Service {
    let client: ControllerClient
    let topology: Topology
    let records: RoundLog
    let source: String
    let interval: Duration
    let logger: Logger

    func run() async throws {
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            // The wait ends early on SIGTERM, so that the gateway stops at once.
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: interval) }
            guard !Task.isCancelled, !Task.isShuttingDownGracefully, let d = await topology.current().1 else { continue }
            let report = await records.report(source: source, ttft: d.spec.slo.ttftMs / 1000, tpot: d.spec.slo.tpotMs / 1000)
            do {
                let path = ControllerClient.deploymentPath(d.metadata.namespaceOrDefault, d.metadata.name) + "/workload"
                let _: WorkloadStatus = try await client.send(.PUT, path, body: try JSONCoding.encoder.encode(report))
            } catch {
                logger.warning("Workload report failed", metadata: ["event": "WorkloadReportFailed", "error": "\(error)"])
            }
        }
    }
}

/// Renews the gateway's certificate (the one it calls agents with) at two thirds of its
/// lifetime, as agents renew theirs; a failed renewal is retried every 10 s until it expires.
struct CertificateRenewer: Service {
    let client: ControllerClient
    let caller: AgentCaller
    let name: String
    let first: SignedCertificate
    let metrics: MetricsRegistry
    let logger: Logger

    /// A new key and the controller CA's certificate for it.
    static func sign(_ client: ControllerClient, name: String) async throws -> (String, SignedCertificate) {
        let (keyPEM, csrPEM) = try CertificateAuthority.makeCSR(commonName: name)
        let signed: SignedCertificate = try await client.send(.POST, "/apis/\(APIGroup.group)/\(APIGroup.version)/certificatesigningrequests",
            body: try JSONEncoder().encode(CertificateSigningRequestSpec(name: name, role: .gateway, csrPEM: csrPEM)))
        return (keyPEM, signed)
    }

    func run() async throws {
        var current = first
        var issuedAt = Date()
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            metrics.registry.makeGauge(name: "ampd_gateway_certificate_expiry_seconds").set(current.notValidAfter.timeIntervalSinceNow)
            let renewAt = issuedAt.addingTimeInterval(current.notValidAfter.timeIntervalSince(issuedAt) * 2 / 3)
            let wait = max(0, min(renewAt.timeIntervalSinceNow, 10))
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: .milliseconds(Int64(wait * 1000))) }
            guard !Task.isCancelled, !Task.isShuttingDownGracefully, Date() >= renewAt else { continue }
            do {
                let (keyPEM, signed) = try await Self.sign(client, name: name)
                try caller.renew(certificatePEM: signed.certificatePEM, keyPEM: keyPEM, caPEM: signed.caPEM)
                logger.info("Certificate renewed", metadata: ["event": "CertificateRenewed", "serial": "\(signed.serial)", "previous": "\(current.serial)",
                                                              "notValidAfter": "\(signed.notValidAfter)"])
                current = signed
                issuedAt = Date()
            } catch {
                logger.warning("Certificate renewal failed", metadata: ["event": "CertificateRenewalFailed", "error": "\(error)",
                                                                      "expiresInSeconds": "\(Int(current.notValidAfter.timeIntervalSinceNow))"])
                try? await cancelWhenGracefulShutdown { try await Task.sleep(for: .seconds(10)) }
            }
        }
    }
}
