import AMPDAgent
import AMPDAPI
import AMPDObservability
import ArgumentParser
import Foundation
import Logging

/// `ampd agent`: one per host. Enrolls with the controller, serves its KV pool
/// endpoint over mutual TLS, heart-beats; SIGTERM stops it cleanly.
struct AgentCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "agent", abstract: "Run the node agent (enroll, KV pool endpoint, heartbeats).")

    @Option(help: "The controller's client.json (server URL and CA); --controller and --ca override it.")
    var config: String?

    @Option(help: "Controller URL, e.g. https://127.0.0.1:8443.")
    var controller: String?

    @Option(help: "The controller's CA certificate (PEM).")
    var ca: String?

    @Option(help: "Bootstrap (node) token; default: $AMPD_NODE_TOKEN.")
    var token: String?

    @Option(help: "A file holding the bootstrap (node) token (a mounted Secret): kept out of the environment and the command line.")
    var tokenFile: String?

    @Option(help: "This node's name (stable identity; a DNS label).")
    var name: String

    @Option(help: "Data directory (key, certificate).")
    var dataDir: String?

    @Option(help: "Accelerator kind this host offers.")
    var accelerator = "cpu"

    @Option(help: "Accelerators on this host.")
    var count = 1

    @Option(help: "Address peers reach this host at (repeatable).")
    var address: [String] = ["127.0.0.1"]

    @Option(help: "Address the KV endpoint and instance API listen on (0.0.0.0 in a pod).")
    var bind = "127.0.0.1"

    @Option(help: "KV pool endpoint port (0: any free port).")
    var kvPort = 0

    @Option(help: "Instance API port (0: any free port).")
    var apiPort = 0

    @Option(help: "KV cache capacity of each engine instance, in tokens (idle sessions' KV gives way when it is full).")
    var engineKvTokens = 8192

    @Option(help: "CPU cores of this host (default: the cores this process may use); CPU engine slots beyond them share cores, and the planner models them so.")
    var cores: Int?

    @Option(help: "Run every engine step this many times as long as it computes (≥ 1), as a slower machine would: for testing calibration and SLO planning.")
    var engineSlowdown = 1.0

    @Option(help: "Seconds between heartbeats.")
    var heartbeatSeconds = 1.0

    @Option(help: "Write {\"kvPort\": N, \"apiPort\": M, \"serial\": S} here once listening.")
    var portFile: String?

    @Option(help: "Serve /healthz and /readyz over plain HTTP on this port (for kubelet probes, which present no client certificate); off by default.")
    var healthPort: Int?

    @OptionGroup var process: ServiceProcessOptions

    func run() async throws {
        let logger = process.begin(label: "agent")
        var server = controller, caFile = ca
        if let config {
            let c = try ClientConfiguration.load(URL(fileURLWithPath: config))
            server = server ?? c.server
            caFile = caFile ?? c.certificateAuthority
        }
        guard let server, let caFile else { throw ValidationError("give --config, or --controller and --ca") }
        if token != nil && tokenFile != nil { throw ValidationError("give --token or --token-file, not both") }
        var fromFile: String?
        if let tokenFile {
            do {
                fromFile = try String(contentsOfFile: tokenFile, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
            } catch {
                throw ValidationError("--token-file \(tokenFile): cannot read it: \(error.localizedDescription)")
            }
            if fromFile?.isEmpty == true { throw ValidationError("--token-file \(tokenFile) is empty") }
        }
        guard let token = token ?? fromFile ?? ProcessInfo.processInfo.environment["AMPD_NODE_TOKEN"] else {
            throw ValidationError("give --token-file, --token or set AMPD_NODE_TOKEN (the controller's node token, in its tokens.csv)")
        }
        guard heartbeatSeconds > 0, count > 0, engineKvTokens > 0 else {
            throw ValidationError("--heartbeat-seconds, --engine-kv-tokens and --count must be positive")
        }
        guard engineSlowdown >= 1, engineSlowdown <= 100 else { throw ValidationError("--engine-slowdown must be from 1 to 100; got \(engineSlowdown)") }
        if let cores, cores < 1 || cores > 4096 { throw ValidationError("--cores must be from 1 to 4096; got \(cores)") }
        if let healthPort {
            guard (1...65535).contains(healthPort) else { throw ValidationError("--health-port must be from 1 to 65535; got \(healthPort)") }
            guard healthPort != kvPort && healthPort != apiPort else { throw ValidationError("--health-port \(healthPort) is also the KV or API port") }
        }
        let home = ProcessInfo.processInfo.environment["HOME"] ?? "."
        var c = AgentConfiguration(controller: server, caFile: caFile, token: token, name: name,
                                   dataDirectory: URL(fileURLWithPath: dataDir ?? "\(home)/.ampd/agent-\(name)"))
        c.accelerator = accelerator
        c.count = count
        c.addresses = address
        c.kvHost = bind
        c.kvPort = kvPort
        c.apiPort = apiPort
        c.engineKVTokens = engineKvTokens
        c.engineSlowdown = engineSlowdown
        if let cores { c.cores = cores }
        c.heartbeat = .milliseconds(Int64(heartbeatSeconds * 1000))
        c.portFile = portFile.map { URL(fileURLWithPath: $0) }
        c.healthPort = healthPort
        do {
            try await Agent(config: c, logger: logger).run()
        } catch {
            logger.critical("Agent failed", metadata: ["event": "Failed", "error": "\(error)"])
            throw ExitCode(1)
        }
    }
}
