import NIOCore
import AsyncHTTPClient
import AMPDAPI
import AMPDClient
import AMPDKVPool
import AMPDPKI
import AMPDTestSupport
import Foundation
import Testing

/// A real `ampd agent` process.
final class AgentProcess: @unchecked Sendable {
    let process = Process()
    let dataDir: URL
    let portFile: URL
    let logURL: URL

    /// `config`: a client config other than the controller's own (several replicas' URLs, say).
    /// `tokenFromFile`: the bootstrap token from a file (`--token-file`, as the chart mounts it).
    init(controller: ControllerProcess, name: String, extra: [String] = [], config: String? = nil, tokenFromFile: Bool = false) throws {
        dataDir = controller.dataDir.appendingPathComponent("agent-\(name)")
        try FileManager.default.createDirectory(at: dataDir, withIntermediateDirectories: true)
        var tokenArgs = ["--token", try controller.token("node")]
        if tokenFromFile {
            let file = dataDir.appendingPathComponent("bootstrap.token")
            try (try controller.token("node") + "\n").write(to: file, atomically: true, encoding: .utf8)
            tokenArgs = ["--token-file", file.path]
        }
        portFile = dataDir.appendingPathComponent("port.json")
        logURL = dataDir.appendingPathComponent("agent.log")
        FileManager.default.createFile(atPath: logURL.path, contents: nil)
        process.executableURL = Binaries.ampd
        process.arguments = ["agent", "--exit-with-parent", "--config", config ?? controller.configPath] + tokenArgs + ["--name", name,
                             "--data-dir", dataDir.path, "--port-file", portFile.path, "--heartbeat-seconds", "0.3"] + extra
        let log = try FileHandle(forWritingTo: logURL)
        process.standardOutput = log
        process.standardError = log
        try process.run()
    }

    struct Port: Decodable { let kvPort: Int; let apiPort: Int; let serial: String }

    func port() throws -> Port? {
        guard let data = try? Data(contentsOf: portFile) else { return nil }
        return try? JSONDecoder().decode(Port.self, from: data)
    }

    func log() -> String { (try? String(contentsOf: logURL, encoding: .utf8)) ?? "" }

    /// The agent's own certificate and key, as it wrote them.
    func clientTLS(caPEM: String) throws -> NIOSSLContextBox {
        let cert = try String(contentsOf: dataDir.appendingPathComponent("agent.crt"), encoding: .utf8)
        let key = try String(contentsOf: dataDir.appendingPathComponent("agent.key"), encoding: .utf8)
        return NIOSSLContextBox(try KVPoolTLS.client(certificatePEM: cert, privateKeyPEM: key, caPEM: caPEM))
    }

    func stop() -> Int32 {
        guard process.isRunning else { return process.terminationStatus }
        kill(process.processIdentifier, SIGTERM)
        process.waitUntilExit()
        return process.terminationStatus
    }
}

import NIOSSL
struct NIOSSLContextBox: @unchecked Sendable { let context: NIOSSLContext; init(_ c: NIOSSLContext) { context = c } }

@Suite("Agent enrollment and the KV pool endpoint", .serialized)
struct AgentEnrollmentTests {
    /// The status of `GET /healthz` on an agent's instance API with a client certificate (PEM
    /// files); nil when the TLS handshake refuses it.
    func instanceAPIStatus(port: Int, certificate: URL, key: URL, ca: URL) async -> Int? {
        do {
            var tls = TLSConfiguration.makeClientConfiguration()
            tls.certificateChain = try NIOSSLCertificate.fromPEMFile(certificate.path).map { .certificate($0) }
            tls.privateKey = .privateKey(try NIOSSLPrivateKey(file: key.path, format: .pem))
            tls.trustRoots = .certificates(try NIOSSLCertificate.fromPEMFile(ca.path))
            tls.certificateVerification = .noHostnameVerification
            let http = HTTPClient(eventLoopGroupProvider: .singleton, configuration: .init(tlsConfiguration: tls))
            defer { Task { try? await http.shutdown() } }
            return Int(try await http.execute(HTTPClientRequest(url: "https://127.0.0.1:\(port)/healthz"), timeout: .seconds(10)).status.code)
        } catch {
            return nil
        }
    }

    @Test("the instance API and the KV endpoint take only client certificates: the CA's and the controller's serving certificate are refused, and a revoked one once the agent has refreshed")
    func mutualTLSIdentity() async throws {
        let ctl = try ControllerProcess()
        try await ctl.start()
        defer { Task { await ctl.shutdown() } }
        let a = try AgentProcess(controller: ctl, name: "node-a")
        let b = try AgentProcess(controller: ctl, name: "node-b")
        defer { _ = a.stop(); _ = b.stop() }
        let portA = try await eventually("agent A listening") { try a.port() }
        _ = try await eventually("agent B listening") { try b.port() }
        let ca = ctl.dataDir.appendingPathComponent("ca.crt")
        func status(_ dir: URL, _ cert: String, _ key: String) async -> Int? {
            await instanceAPIStatus(port: portA.apiPort, certificate: dir.appendingPathComponent(cert), key: dir.appendingPathComponent(key), ca: ca)
        }
        #expect(await status(b.dataDir, "agent.crt", "agent.key") == 200)
        #expect(await status(ctl.dataDir, "ca.crt", "ca.key") == 403)
        // Server-only: TLS itself refuses it (no client-auth purpose), or the policy does (403).
        let servingStatus = await status(ctl.dataDir, "tls.crt", "tls.key")
        #expect(servingStatus == nil || servingStatus == 403)
        #expect(a.log().contains("is a CA certificate"))
        // The KV endpoint applies the same policy.
        let caPEM = try String(contentsOf: ca, encoding: .utf8)
        let serving = try KVPoolTLS.client(certificatePEM: try String(contentsOf: ctl.dataDir.appendingPathComponent("tls.crt"), encoding: .utf8),
                                           privateKeyPEM: try String(contentsOf: ctl.dataDir.appendingPathComponent("tls.key"), encoding: .utf8), caPEM: caPEM)
        await #expect(throws: (any Error).self) {
            try await KVPoolConnection.with(host: "127.0.0.1", port: portA.kvPort, tls: serving) { try await $0.send(.probe(tenant: "t", hashes: [1])) }
        }
        // Revoked (node B deleted): refused once A has refreshed its revocation list.
        _ = try await ctl.client.raw(.DELETE, "/apis/ampd.dev/v1alpha1/nodes/node-b")
        _ = try await eventually("A refuses B's revoked certificate on its instance API") { () -> Bool? in
            await status(b.dataDir, "agent.crt", "agent.key") == 403 ? true : nil
        }
        #expect(a.log().contains("is revoked"))
    }

    func gatewayTLS(_ ctl: ControllerProcess, caPEM: String) async throws -> NIOSSLContextBox {
        let (key, csr) = try CertificateAuthority.makeCSR(commonName: "gateway")
        let body = try JSONEncoder().encode(CertificateSigningRequestSpec(name: "gateway", role: .gateway, csrPEM: csr))
        let signed: SignedCertificate = try await ctl.client.send(.POST, "/apis/ampd.dev/v1alpha1/certificatesigningrequests", body: body)
        #expect(signed.notValidAfter.timeIntervalSinceNow < 3600)  // short-lived (hours, here seconds)
        return NIOSSLContextBox(try KVPoolTLS.client(certificatePEM: signed.certificatePEM, privateKeyPEM: key, caPEM: caPEM))
    }

    @Test("agents enroll by CSR, serve KV over mTLS, renew without dropping connections; deleting a node revokes its certificate")
    func enrollServeRenewRevoke() async throws {
        let ctl = try ControllerProcess(extraArgs: ["--agent-cert-hours", "0.005"])  // 18 s certificates, renewed after 12 s
        try await ctl.start()
        defer { Task { await ctl.shutdown() } }
        let caPEM = try String(contentsOf: ctl.dataDir.appendingPathComponent("ca.crt"), encoding: .utf8)
        let a = try AgentProcess(controller: ctl, name: "node-a")
        let healthPort = try EtcdProcess.freePort()
        let b = try AgentProcess(controller: ctl, name: "ip-10-0-1-2.ec2.internal",   // a Kubernetes node name, dots and all
                                 extra: ["--health-port", "\(healthPort)"], tokenFromFile: true)
        defer { _ = a.stop(); _ = b.stop() }
        let portA = try await eventually("agent A listening") { try a.port() }
        _ = try await eventually("agent B listening") { try b.port() }
        // B's probes over plain HTTP, as kubelet sends them (no client certificate).
        let probe = HTTPClient(eventLoopGroupProvider: .singleton)
        defer { Task { try? await probe.shutdown() } }
        for path in ["/healthz", "/readyz"] {
            let status = try await eventually("B answers \(path)") { () -> UInt? in
                let r = try? await probe.execute(HTTPClientRequest(url: "http://127.0.0.1:\(healthPort)\(path)"), timeout: .seconds(5))
                return r.map { UInt($0.status.code) }
            }
            #expect(status == 200)
        }
        #expect(FileManager.default.fileExists(atPath: a.dataDir.appendingPathComponent("agent.key").path))
        // An agent serves a KV pool per deployment it runs instances of: give A one.
        let gw = try await gatewayTLS(ctl, caPEM: caPEM)
        await #expect(throws: KVPoolConnection.Failure.self) {
            try await KVPoolConnection.with(host: "127.0.0.1", port: portA.kvPort, tls: gw.context, pool: "default/smollm2") { conn in
                try await conn.send(.probe(tenant: "t", hashes: [1]))
            }
        }
        #expect(try await ctl.cli(["apply", "-f", quickstart]).0 == 0)
        _ = try await eventually("A serves the deployment's pool") { () -> Bool? in
            try await ctl.client.nodes().first { $0.metadata.name == "node-a" }?.status.pools?.isEmpty == false ? true : nil
        }
        let pool = "default/smollm2"

        // A gateway certificate (admin) works against agent A; B's own certificate works too.
        let stored = try await KVPoolConnection.with(host: "127.0.0.1", port: portA.kvPort, tls: gw.context, pool: pool) { conn in
            try await conn.send(.put(tenant: "t", leaseSeconds: 60, blocks: [KVBlock(hash: 1, parent: 0, data: [1, 2, 3])]))
        }
        #expect(stored == .stored(1))
        let bTLS = try b.clientTLS(caPEM: caPEM)
        let probed = try await KVPoolConnection.with(host: "127.0.0.1", port: portA.kvPort, tls: bTLS.context, pool: pool) { conn in
            try await conn.send(.probe(tenant: "t", hashes: [1]))
        }
        #expect(probed == .count(1))
        // No peer reads A's blocks back, whatever its certificate: only A imports them, for its own instances.
        for tls in [bTLS.context, gw.context] {
            do {
                let read = try await KVPoolConnection.with(host: "127.0.0.1", port: portA.kvPort, tls: tls, pool: pool) { conn in
                    try await conn.send(.get(tenant: "t", hashes: [1]))
                }
                Issue.record("a peer read A's KV: \(read)")
            } catch KVPoolConnection.Failure.refused(let status, _) {
                #expect(status == .forbidden)
            }
        }

        // The node token cannot mint gateway certificates; garbage CSRs are refused with the field.
        let nodeClient = try ctl.client(role: "node")
        let (_, csr) = try CertificateAuthority.makeCSR(commonName: "x")
        let forbidden = try await nodeClient.raw(.POST, "/apis/ampd.dev/v1alpha1/certificatesigningrequests",
            body: try JSONEncoder().encode(CertificateSigningRequestSpec(name: "x", role: .gateway, csrPEM: csr)))
        #expect(forbidden.0 == 403)
        let credentialA = try String(contentsOf: a.dataDir.appendingPathComponent("node.credential"), encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        let garbage = try await nodeClient.raw(.POST, "/apis/ampd.dev/v1alpha1/certificatesigningrequests",
            body: try JSONEncoder().encode(CertificateSigningRequestSpec(name: "node-a", role: .node, csrPEM: "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n")),
            token: credentialA)
        #expect(garbage.0 == 422 && String(decoding: garbage.1, as: UTF8.self).contains("csrPEM"))
        try? await nodeClient.shutdown()

        // Renewal: a connection opened before it keeps working after it; the serial changes.
        try await KVPoolConnection.with(host: "127.0.0.1", port: portA.kvPort, tls: gw.context, pool: pool) { conn in
            let renewed = try await eventually("agent A renews", timeout: .seconds(30)) { () -> String? in
                let p = try a.port()
                return p?.serial != portA.serial ? p?.serial : nil
            }
            #expect(renewed != portA.serial)
            let still = try await conn.send(.probe(tenant: "t", hashes: [1]))
            #expect(still == .count(1))
        }
        #expect(a.log().contains("RenewedCertificate"))

        // Deleting node B revokes its certificates; A refuses B's certificate once it has refreshed.
        // (B's current one: the first may have expired by now on a loaded machine, and then TLS, not
        // the revocation check, would refuse it.)
        let bCurrent = try b.clientTLS(caPEM: caPEM)
        _ = try await ctl.client.raw(.DELETE, "/apis/ampd.dev/v1alpha1/nodes/ip-10-0-1-2.ec2.internal")
        let revoked: RevocationList = try await ctl.client.send(.GET, "/apis/ampd.dev/v1alpha1/revokedcertificates")
        #expect(!revoked.serials.isEmpty)
        try await eventually("A refuses B's revoked certificate") { () -> Bool? in
            do {
                _ = try await KVPoolConnection.with(host: "127.0.0.1", port: portA.kvPort, tls: bCurrent.context, pool: pool) { conn in
                    try await conn.send(.probe(tenant: "t", hashes: [1]))
                }
                return nil
            } catch {
                return true
            }
        }
        // The refusal is A's revocation check (not, say, an expired certificate): A says so in its log.
        _ = try await eventually("A logs the revoked peer") { a.log().contains("is revoked") ? true : nil }
        // SIGTERM: a clean exit.
        #expect(a.stop() == 0)
    }
}
