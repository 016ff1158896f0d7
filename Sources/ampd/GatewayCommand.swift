import AMPDAPI
import AMPDGateway
import AMPDObservability
import ArgumentParser
import Foundation
import Logging

/// `ampd gateway`: the OpenAI-compatible entry point of one deployment. Where each
/// prefill runs is the deployment's `spec.routing` (followed live), not a flag.
struct GatewayCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "gateway", abstract: "Serve the OpenAI API for a deployment, with sessions and disaggregated rounds.")

    @Option(help: "The controller's client.json (URL, CA, admin token); default $AMPD_CONFIG.")
    var config: String?

    @Option(help: "The ServingDeployment to serve.")
    var deployment: String

    @Option(name: .shortAndLong, help: "Namespace.")
    var namespace = APIGroup.defaultNamespace

    @Option(help: "Listen address.")
    var host = "127.0.0.1"

    @Option(help: "Listen port (0: any free port).")
    var port = 8000

    @Option(help: "Seconds a session may stay idle before its KV is released.")
    var sessionTtlSeconds = 600.0

    @Option(help: "This gateway's name: its certificate's subject and the source of its workload reports (one per gateway).")
    var name = "gateway"

    @Option(help: "Seconds between workload reports to the controller's planner.")
    var reportIntervalSeconds = 10.0

    @Option(help: "Write the bound port here once listening.")
    var portFile: String?

    @Option(help: "API keys: a file of KEY,TENANT lines; requests need Authorization: Bearer KEY, and the key's tenant owns their KV. Without it every client is tenant default.")
    var apiKeys: String?

    @OptionGroup var process: ServiceProcessOptions

    func run() async throws {
        let logger = process.begin(label: "gateway")
        guard let path = config ?? ProcessInfo.processInfo.environment["AMPD_CONFIG"] else { throw ValidationError("give --config or set AMPD_CONFIG") }
        var c = GatewayConfiguration(clientConfig: try ClientConfiguration.load(URL(fileURLWithPath: path)), deployment: deployment)
        c.namespace = namespace
        c.host = host
        c.port = port
        c.portFile = portFile.map { URL(fileURLWithPath: $0) }
        c.apiKeysFile = apiKeys.map { URL(fileURLWithPath: $0) }
        c.sessionTTL = sessionTtlSeconds
        if let why = ServingDeploymentAdmission.dnsLabelProblem(name) { throw ValidationError("--name: \(why)") }
        c.name = name
        guard reportIntervalSeconds > 0 else { throw ValidationError("--report-interval-seconds must be positive; got \(reportIntervalSeconds)") }
        c.reportInterval = .milliseconds(Int64(reportIntervalSeconds * 1000))
        do {
            try await Gateway(config: c, logger: logger).run()
        } catch {
            logger.critical("Gateway failed", metadata: ["event": "Failed", "error": "\(error)"])
            throw ExitCode(1)
        }
    }
}
