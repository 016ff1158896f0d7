import AMPDAPI
import AMPDClient
import ArgumentParser
import Foundation

/// Options every client command shares.
struct ClientOptions: ParsableArguments {
    @Option(help: "Client config (JSON: server, certificateAuthority, token). Default: $AMPD_CONFIG, else <controller data dir>/client.json.")
    var config: String?

    @Option(name: .shortAndLong, help: "Namespace.")
    var namespace: String = APIGroup.defaultNamespace

    func client() throws -> ControllerClient {
        let path = config ?? ProcessInfo.processInfo.environment["AMPD_CONFIG"] ?? "\(ControllerDefaults.dataDirectory)/client.json"
        do {
            return try ControllerClient(config: try ClientConfiguration.load(URL(fileURLWithPath: path)))
        } catch let e as ClientError {
            throw CLIError(e.message)
        }
    }
}

/// A failure the CLI reports as one line on stderr, with exit code 1.
struct CLIError: Error, CustomStringConvertible {
    var message: String
    init(_ message: String) { self.message = message }
    var description: String { message }
}

/// Runs a client call, turning every error into a one-line reason and a non-zero exit.
func withClient<T>(_ options: ClientOptions, _ body: (ControllerClient) async throws -> T) async -> T {
    let client: ControllerClient
    do { client = try options.client() } catch { fail("\(error)") }
    do {
        let v = try await body(client)
        try? await client.shutdown()
        return v
    } catch {
        try? await client.shutdown()
        fail("\(error)")
    }
}

func fail(_ message: String) -> Never {
    FileHandle.standardError.write(Data("error: \(message)\n".utf8))
    Foundation.exit(1)
}

enum OutputFormat: String, ExpressibleByArgument, CaseIterable {
    case table, yaml, json
}

struct ApplyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "apply", abstract: "Create or update deployments from a manifest (YAML, multi-document, or JSON).")
    @OptionGroup var options: ClientOptions
    @Option(name: .shortAndLong, help: "Manifest file, or - for standard input.")
    var filename: String

    func run() async throws {
        let data: Data
        if filename == "-" {
            data = FileHandle.standardInput.readDataToEndOfFile()
        } else {
            do { data = try Data(contentsOf: URL(fileURLWithPath: filename)) } catch { fail("cannot read \(filename): \(error.localizedDescription)") }
        }
        let docs: [DocumentReader.Document]
        do { docs = try DocumentReader.read(data) } catch { fail("\(filename): \(error)") }
        if docs.isEmpty { fail("\(filename): no documents") }
        var failures = 0
        await withClient(options) { client in
            for doc in docs {
                let whereText = docs.count > 1 ? "document \(doc.index)\(doc.line.map { " (line \($0 + 1))" } ?? ""): " : ""
                var value = doc.value
                if case .object(var o) = value, o["metadata"]?["namespace"] == nil, case .object(var m)? = o["metadata"] {
                    m["namespace"] = .string(options.namespace)
                    o["metadata"] = .object(m)
                    value = .object(o)
                }
                guard case .string(let kind)? = value["kind"], kind == ServingDeployment.kind else {
                    FileHandle.standardError.write(Data("error: \(whereText)kind must be \(ServingDeployment.kind); got \(value["kind"]?.shortDescription ?? "nothing")\n".utf8))
                    failures += 1
                    continue
                }
                guard case .string(let name)? = value["metadata"]?["name"] else {
                    FileHandle.standardError.write(Data("error: \(whereText)metadata.name: required field is missing\n".utf8))
                    failures += 1
                    continue
                }
                let ns = value["metadata"]?["namespace"].flatMap { if case .string(let s) = $0 { s } else { nil } } ?? options.namespace
                do {
                    let before = try? await client.deployment(name, namespace: ns)
                    let after = try await client.apply(value)
                    // Unchanged: the same generation (spec), labels and annotations. Not the
                    // resourceVersion, which the controller's status writes move meanwhile.
                    let same = before.map { $0.metadata.generation == after.metadata.generation && $0.metadata.labels == after.metadata.labels
                        && $0.metadata.annotations == after.metadata.annotations } ?? false
                    let verb = before == nil ? "created" : (same ? "unchanged" : "configured")
                    print("servingdeployment.ampd.dev/\(name) \(verb)")
                } catch {
                    FileHandle.standardError.write(Data("error: \(whereText)\(error)\n".utf8))
                    failures += 1
                }
            }
        }
        if failures > 0 { throw ExitCode(1) }
    }
}

struct GetCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "get", abstract: "List deployments or nodes; print a deployment's calibrated cost-model profile.")
    enum Resource: String, ExpressibleByArgument, CaseIterable {
        case deployments, deployment, nodes, node
        /// A deployment's calibrated profiles, as YAML for `ampd plan --profiles` / `ampd sim --profiles`.
        case profile
    }
    @OptionGroup var options: ClientOptions
    @Argument(help: "deployments or nodes") var resource: Resource
    @Argument(help: "Only this one.") var name: String?
    @Option(name: .shortAndLong, help: "table, yaml or json") var output: OutputFormat = .table
    @Flag(name: [.customShort("A"), .long], help: "All namespaces.") var allNamespaces = false
    @Flag(name: [.customShort("w"), .long], help: "Deployments: after the list, a line per change as it happens (ADDED, MODIFIED, DELETED).") var watch = false

    func validate() throws {
        if watch && (resource == .nodes || resource == .node || resource == .profile) { throw ValidationError("--watch is for deployments") }
        if resource == .profile && name == nil { throw ValidationError("ampd get profile NAME: name the deployment") }
        if resource == .profile && output != .table && output != .yaml { throw ValidationError("a profile prints as YAML; -o \(output.rawValue) is not supported") }
        if watch && output != .table { throw ValidationError("--watch prints a table line per change; -o \(output.rawValue) is not supported with it") }
    }

    func run() async throws {
        await withClient(options) { client in
            if watch {
                // The current ones (ADDED), then each change; the line names the event.
                FileHandle.standardOutput.write(Data(((Table.deployments([]).split(separator: "\n").first.map { "EVENT     " + $0 } ?? "") + "\n").utf8))
                for try await e in client.watchDeployments(namespace: allNamespaces ? nil : options.namespace) {
                    if let name, e.object.metadata.name != name { continue }
                    let row = Table.deployments([e.object]).split(separator: "\n").dropFirst().first ?? ""
                    FileHandle.standardOutput.write(Data((e.type.padding(toLength: 10, withPad: " ", startingAt: 0) + row + "\n").utf8))
                }
                return
            }
            switch resource {
            case .profile:
                print(try await client.calibratedProfile(name!, namespace: options.namespace), terminator: "")
            case .deployments, .deployment:
                var items = try await client.deployments(namespace: allNamespaces ? nil : options.namespace)
                if let name { items = items.filter { $0.metadata.name == name } }
                if let name, items.isEmpty { fail("ServingDeployment \"\(options.namespace)/\(name)\" not found") }
                switch output {
                case .table: print(Table.deployments(items))
                case .yaml, .json: print(try Render.document(name == nil ? try JSONValue(encoding: ObjectList(kind: "ServingDeploymentList", resourceVersion: nil, items: items)) : try JSONValue(encoding: items[0]), as: output))
                }
            case .nodes, .node:
                var items = try await client.nodes()
                if let name { items = items.filter { $0.name == name } }
                if let name, items.isEmpty { fail("Node \"\(name)\" not found") }
                let deployments = (try? await client.deployments(namespace: nil)) ?? []
                switch output {
                case .table: print(Table.nodes(items, deployments: deployments))
                case .yaml, .json: print(try Render.document(name == nil ? try JSONValue(encoding: ObjectList(kind: "NodeList", resourceVersion: nil, items: items)) : try JSONValue(encoding: items[0]), as: output))
                }
            }
        }
    }
}

struct DescribeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "describe", abstract: "Show a deployment in detail: spec, pools, conditions, placement, recent decisions.")
    enum Resource: String, ExpressibleByArgument, CaseIterable { case deployment }
    @OptionGroup var options: ClientOptions
    @Argument var resource: Resource
    @Argument var name: String

    func run() async throws {
        await withClient(options) { client in
            let d = try await client.deployment(name, namespace: options.namespace)
            let recent = try await client.decisions(deployment: d.metadata.key).items.suffix(10)
            print(Table.describe(d, decisions: Array(recent), nodes: try await client.nodes()))
        }
    }
}

struct DeleteCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "delete",
        abstract: "Delete a deployment (it goes once its instances are torn down), or a node (its certificates and credential are revoked).")
    enum Resource: String, ExpressibleByArgument, CaseIterable { case deployment, node }
    @OptionGroup var options: ClientOptions
    @Argument var resource: Resource
    @Argument var name: String

    func run() async throws {
        await withClient(options) { client in
            switch resource {
            case .deployment:
                try await client.delete(name, namespace: options.namespace)
                print("servingdeployment.ampd.dev/\(name) deleting")
            case .node:
                try await client.deleteNode(name)
                print("node/\(name) deleted")
            }
        }
    }
}

struct ScaleCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "scale", abstract: "Set the prefill and/or decode replica counts of a deployment.")
    @OptionGroup var options: ClientOptions
    @Argument var name: String
    @Option(help: "Prefill replicas.") var prefill: Int?
    @Option(help: "Decode replicas.") var decode: Int?

    func validate() throws {
        if prefill == nil && decode == nil { throw ValidationError("give --prefill, --decode or both") }
    }

    func run() async throws {
        await withClient(options) { client in
            let s = try await client.setScale(name, namespace: options.namespace, prefill: prefill, decode: decode)
            print("servingdeployment.ampd.dev/\(name) scaled (prefill \(s.spec.prefill.map(String.init) ?? "-"), decode \(s.spec.decode.map(String.init) ?? "-"))")
        }
    }
}

struct DecisionsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "decisions", abstract: "Show the controller's decisions about a deployment (scale changes, placements), oldest first.")
    @OptionGroup var options: ClientOptions
    @Argument(help: "Deployment name; omit for all.") var name: String?
    @Flag(name: .shortAndLong, help: "Keep printing new decisions as they happen.") var follow = false
    @Option(name: .shortAndLong, help: "table or json (one object per line)") var output: OutputFormat = .table

    func run() async throws {
        let key = name.map { $0.contains("/") ? $0 : "\(options.namespace)/\($0)" }
        await withClient(options) { client in
            var since: Int64 = 0
            var first = true
            repeat {
                let list = try await client.decisions(deployment: key, since: since, waitSeconds: first ? 0 : 30)
                if output == .table && first { print(Table.decisionHeader) }
                for d in list.items {
                    print(output == .table ? Table.decisionRow(d) : try JSONCoding.encodeString(d))
                }
                since = list.lastSeq
                first = false
            } while follow
        }
    }
}

struct OpenAPICommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "openapi", abstract: "Print the controller's OpenAPI document.")
    func run() { print(OpenAPIText.text) }
}
