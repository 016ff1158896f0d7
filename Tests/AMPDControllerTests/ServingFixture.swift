import AMPDAPI
import AMPDClient
import AsyncHTTPClient
import Foundation
import NIOSSL
import Testing

/// Waits until a deployment's Ready condition is True; returns it.
func waitReady(_ ctl: ControllerProcess, _ name: String = "smollm2", timeout: Duration = .seconds(60)) async throws -> ServingDeployment {
    try await eventually("\(name) Ready", timeout: timeout) { () -> ServingDeployment? in
        let d = try await ctl.client.deployment(name)
        return d.status?.conditions.first(ofType: "Ready")?.status == .true ? d : nil
    }
}

/// A controller and one agent as real processes, the quickstart manifest
/// (or `manifest`, given as text) applied; `waitForReady` waits until it is Ready.
func startQuickstart(agent name: String = "cpu-host", agentArgs: [String] = ["--count", "2"], manifest: String? = nil,
                     waitForReady: Bool = true, controllerArgs: [String] = []) async throws -> (ControllerProcess, AgentProcess) {
    let ctl = try ControllerProcess(extraArgs: controllerArgs)
    try await ctl.start()
    let agent = try AgentProcess(controller: ctl, name: name, extra: agentArgs)
    _ = try await eventually("agent \(name) enrolled") { try agent.port() }
    let (code, _, err) = if let manifest {
        try await ctl.cli(["apply", "-f", "-"], stdin: manifest)
    } else {
        try await ctl.cli(["apply", "-f", quickstart])
    }
    #expect(code == 0, "\(err)")
    if waitForReady { _ = try await waitReady(ctl) }
    return (ctl, agent)
}

extension AgentProcess {
    /// The agent's Prometheus text, read over mutual TLS with the agent's own certificate.
    func metrics(_ ctl: ControllerProcess) async throws -> String {
        var tls = TLSConfiguration.makeClientConfiguration()
        tls.certificateChain = try NIOSSLCertificate.fromPEMFile(dataDir.appendingPathComponent("agent.crt").path).map { .certificate($0) }
        tls.privateKey = .privateKey(try NIOSSLPrivateKey(file: dataDir.appendingPathComponent("agent.key").path, format: .pem))
        tls.trustRoots = .certificates(try NIOSSLCertificate.fromPEMFile(ctl.dataDir.appendingPathComponent("ca.crt").path))
        tls.certificateVerification = .noHostnameVerification
        let http = HTTPClient(eventLoopGroupProvider: .singleton, configuration: .init(tlsConfiguration: tls))
        defer { Task { try? await http.shutdown() } }
        let port = try #require(try self.port()?.apiPort)
        let res = try await http.execute(HTTPClientRequest(url: "https://127.0.0.1:\(port)/metrics"), timeout: .seconds(10))
        return String(buffer: try await res.body.collect(upTo: 1 << 20))
    }
}

/// The quickstart manifest with `routing` (YAML lines under `spec.routing`) in place of its
/// own; `colocated` also drops the prefill pool, as admission requires; `replacing` edits more.
func quickstartManifest(routing: String, replacing edits: [(String, String)] = []) throws -> String {
    var text = try String(contentsOfFile: quickstart, encoding: .utf8)
    let block = "  routing:\n    policy: ampd\n    alpha: 0.9\n    beta: 0.85\n    reorderWindow: 3\n"
    guard text.contains(block) else { throw ClientError(message: "the quickstart's routing block changed; update quickstartManifest") }
    let lines = routing.split(separator: "\n").map { "    " + $0 }.joined(separator: "\n")
    text = text.replacingOccurrences(of: block, with: "  routing:\n\(lines)\n")
    if routing.contains("policy: colocated") {
        text = text.replacingOccurrences(of: "  prefill:\n    replicas: 1\n    parallelism: {tensor: 1}\n    resources: {accelerator: cpu, count: 1}\n", with: "")
    }
    for (a, b) in edits {
        guard text.contains(a) else { throw ClientError(message: "the quickstart has no '\(a)'") }
        text = text.replacingOccurrences(of: a, with: b)
    }
    return text
}

/// A controller, an agent and a gateway as real processes serving `manifest` (the quickstart's
/// when nil), with an HTTP client; `stop()` takes it all down.
final class GatewayCluster: @unchecked Sendable {
    let ctl: ControllerProcess
    let agent: AgentProcess
    let gw: GatewayProcess
    let http: HTTPClient
    let port: Int

    init(ctl: ControllerProcess, agent: AgentProcess, gw: GatewayProcess, http: HTTPClient, port: Int) {
        self.ctl = ctl
        self.agent = agent
        self.gw = gw
        self.http = http
        self.port = port
    }

    /// `gatewayArgs` gets the controller (its data directory holds files the gateway may read).
    static func start(manifest: String? = nil, agentArgs: [String] = ["--count", "2"], controllerArgs: [String] = [],
                      gatewayArgs: (ControllerProcess) throws -> [String] = { _ in [] }) async throws -> GatewayCluster {
        let (ctl, agent) = try await startQuickstart(agentArgs: agentArgs, manifest: manifest, controllerArgs: controllerArgs)
        do {
            let gw = try GatewayProcess(controller: ctl, extra: try gatewayArgs(ctl))
            let port = try await eventually("gateway listening") { gw.port() }
            return GatewayCluster(ctl: ctl, agent: agent, gw: gw, http: HTTPClient(eventLoopGroupProvider: .singleton), port: port)
        } catch {
            _ = agent.stop()
            await ctl.shutdown()
            throw error
        }
    }

    var base: String { "http://127.0.0.1:\(port)" }

    func client(key: String? = nil) -> ChatClient { ChatClient(http: http, base: base, key: key) }

    func stop() {
        _ = gw.stop()
        _ = agent.stop()
        let (ctl, http) = (ctl, http)
        Task {
            try? await http.shutdown()
            await ctl.shutdown()
        }
    }
}
