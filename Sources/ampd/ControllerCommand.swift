import AMPDController
import AMPDObservability
import AMPDStore
import ArgumentParser
import Foundation
import Logging

struct ControllerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "controller",
        abstract: "Run the cluster controller: REST API, store, reconciler, node registry, CA.")

    @Option(help: "Directory for the store, CA, serving certificate, tokens and client.json.")
    var dataDir: String = ControllerDefaults.dataDirectory

    @Option(help: "Where state lives: sqlite:PATH (default: ampd.sqlite in the data directory) or etcd://HOST:PORT[,HOST:PORT…][/PREFIX].")
    var store: String?

    @Option(name: .customLong("ca-kek"), help: "With --store etcd: a file (32+ bytes, the same on every replica) whose SHA-256 seals the shared CA key in the store.")
    var caKek: String?

    @Option(help: "With --store etcd: this replica's name in the leader election (default: host-pid).")
    var replicaName: String?

    @Option(help: "With --store etcd: the leader's lease in seconds (default 5); a standby takes over within about this long after the leader dies.")
    var leaseSeconds: Int?

    @Option(help: "Address to listen on.")
    var host: String = "127.0.0.1"

    @Option(help: "Port to listen on (0 picks a free one; see client.json or --port-file).")
    var port: Int = 8443

    @Option(help: "Bearer token file (token,user,role per line). Default: generated in the data directory.")
    var tokensFile: String?

    @Option(name: .customLong("tls-san"), help: "Extra DNS name or IP for the serving certificate (repeatable).")
    var tlsSANs: [String] = []

    @Option(help: "Seconds without a heartbeat before a node goes NotReady.")
    var nodeGraceSeconds: Double = 15

    @Option(help: "Seconds between full resyncs of every deployment.")
    var resyncSeconds: Double = 30

    @Option(help: "Write the bound port to this file once listening.")
    var portFile: String?

    @Option(help: "Lifetime of agent and gateway certificates, in hours.")
    var agentCertHours: Double = 24

    @OptionGroup var process: ServiceProcessOptions

    func validate() throws {
        guard (0...65535).contains(port) else { throw ValidationError("--port must be from 0 to 65535; got \(port)") }
        guard Logger.Level(rawValue: process.logLevel) != nil else { throw ValidationError("--log-level must be one of trace, debug, info, notice, warning, error, critical; got \(process.logLevel)") }
        guard agentCertHours > 0 else { throw ValidationError("--agent-cert-hours must be positive; got \(agentCertHours)") }
        guard nodeGraceSeconds > 0, resyncSeconds > 0 else { throw ValidationError("--node-grace-seconds and --resync-seconds must be positive") }
        if let store {
            let location: StoreLocation
            do { location = try StoreLocation(parsing: store) } catch { throw ValidationError(error.message) }
            if case .sqlite = location, caKek != nil || replicaName != nil || leaseSeconds != nil {
                throw ValidationError("--ca-kek, --replica-name and --lease-seconds are for --store etcd://…; a SQLite store has one replica and keeps its CA in the data directory")
            }
        } else if caKek != nil || replicaName != nil || leaseSeconds != nil {
            throw ValidationError("--ca-kek, --replica-name and --lease-seconds are for --store etcd://…; a SQLite store has one replica and keeps its CA in the data directory")
        }
        if let leaseSeconds, !(1...300).contains(leaseSeconds) { throw ValidationError("--lease-seconds must be from 1 to 300; got \(leaseSeconds)") }
    }

    func run() async throws {
        let logger = process.begin(label: "controller")
        var config = ControllerConfiguration(dataDirectory: URL(fileURLWithPath: dataDir))
        config.host = host
        config.port = port
        config.tokensFile = tokensFile.map { URL(fileURLWithPath: $0) }
        config.serverNames = tlsSANs
        config.nodeGrace = .milliseconds(Int64(nodeGraceSeconds * 1000))
        config.resync = .milliseconds(Int64(resyncSeconds * 1000))
        config.portFile = portFile.map { URL(fileURLWithPath: $0) }
        config.agentCertificateValidity = agentCertHours * 3600
        config.store = try store.map { try StoreLocation(parsing: $0) }
        config.caKeyEncryptionKey = caKek.map { URL(fileURLWithPath: $0) }
        if let replicaName { config.replicaName = replicaName }
        if let leaseSeconds { config.leaseSeconds = Int64(leaseSeconds) }
        do {
            try await Controller(config: config, logger: logger).run()
        } catch {
            logger.critical("Controller failed", metadata: ["event": "Failed", "error": "\(error)"])
            throw ExitCode(1)
        }
    }
}

enum ControllerDefaults {
    static var dataDirectory: String {
        let home = ProcessInfo.processInfo.environment["HOME"] ?? "."
        return "\(home)/.ampd/controller"
    }
}
