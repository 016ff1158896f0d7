import AMPDAPI
import AMPDClient
import ArgumentParser
import Foundation
import Yams

/// `ampd kubeconfig`: a kubeconfig for kubectl, from the client config (the controller's CA,
/// embedded, and the token).
struct KubeconfigCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kubeconfig",
        abstract: "Write a kubeconfig with which kubectl talks to the controller (its CA embedded, the client config's token).")
    @OptionGroup var options: ClientOptions
    @Option(help: "Context, cluster and user name in the kubeconfig.") var context = "ampd"
    @Option(help: "Which controller URL, where the client config names several replicas (default: the first).") var server: String?
    @Option(name: .shortAndLong, help: "Write it to this file (mode 0600) instead of standard output.") var output: String?

    struct Kubeconfig: Encodable {
        struct NamedCluster: Encodable {
            struct Cluster: Encodable {
                var server: String
                var certificateAuthorityData: String
                enum CodingKeys: String, CodingKey {
                    case server
                    case certificateAuthorityData = "certificate-authority-data"
                }
            }
            var name: String
            var cluster: Cluster
        }
        struct NamedUser: Encodable {
            struct User: Encodable { var token: String }
            var name: String
            var user: User
        }
        struct NamedContext: Encodable {
            struct Context: Encodable {
                var cluster: String
                var user: String
                var namespace: String
            }
            var name: String
            var context: Context
        }
        var apiVersion = "v1"
        var kind = "Config"
        var clusters: [NamedCluster]
        var users: [NamedUser]
        var contexts: [NamedContext]
        var currentContext: String
        enum CodingKeys: String, CodingKey {
            case apiVersion, kind, clusters, users, contexts
            case currentContext = "current-context"
        }
    }

    func run() async throws {
        let path = options.config ?? ProcessInfo.processInfo.environment["AMPD_CONFIG"] ?? "\(ControllerDefaults.dataDirectory)/client.json"
        let config: ClientConfiguration
        let ca: Data
        do {
            config = try ClientConfiguration.load(URL(fileURLWithPath: path))
            ca = try Data(contentsOf: URL(fileURLWithPath: config.certificateAuthority))
        } catch {
            fail("cannot read the client config \(path) or its CA: \(error)")
        }
        let servers = config.servers
        let chosen = server ?? servers.first ?? ""
        guard servers.contains(chosen) else {
            fail("--server \(chosen) is not one of the client config's servers: \(servers.joined(separator: ", "))")
        }
        let kc = Kubeconfig(
            clusters: [.init(name: context, cluster: .init(server: chosen, certificateAuthorityData: ca.base64EncodedString()))],
            users: [.init(name: context, user: .init(token: config.token))],
            contexts: [.init(name: context, context: .init(cluster: context, user: context, namespace: options.namespace))],
            currentContext: context)
        let text = try YAMLEncoder().encode(kc)
        if let output {
            let url = URL(fileURLWithPath: output)
            guard FileManager.default.createFile(atPath: url.path, contents: Data(text.utf8), attributes: [.posixPermissions: 0o600]) else {
                fail("cannot write \(output)")
            }
            try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: url.path)
            print("wrote \(output): kubectl --kubeconfig \(output) get servingdeployments")
        } else {
            print(text, terminator: "")
        }
    }
}
