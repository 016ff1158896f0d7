import AMPDAPI
import AMPDClient
import AMPDTestSupport
import Foundation
import Testing

/// Locates a built executable of this package (`ampd`) beside the test bundle.
enum Binaries {
    static var ampd: URL {
        if let p = ProcessInfo.processInfo.environment["AMPD_BINARY"] { return URL(fileURLWithPath: p) }
        var dir = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        for _ in 0..<4 {
            let candidate = dir.appendingPathComponent("ampd")
            if FileManager.default.isExecutableFile(atPath: candidate.path) { return candidate }
            dir = dir.deletingLastPathComponent()
        }
        return URL(fileURLWithPath: FileManager.default.currentDirectoryPath).appendingPathComponent(".build/debug/ampd")
    }

    static var packageRoot: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    }
}

/// A real `ampd controller` process on an ephemeral loopback port, with its own data directory.
final class ControllerProcess: @unchecked Sendable {
    let dataDir: URL
    let extraArgs: [String]
    private(set) var process: Process?
    private(set) var client: ControllerClient!
    let logURL: URL

    /// The port it listens on (0: a free one each start).
    let port: Int

    init(extraArgs: [String] = [], port: Int = 0) throws {
        self.port = port
        dataDir = FileManager.default.temporaryDirectory.appendingPathComponent("ampd-ctl-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dataDir, withIntermediateDirectories: true)
        logURL = dataDir.appendingPathComponent("controller.log")
        self.extraArgs = extraArgs
    }

    var configPath: String { dataDir.appendingPathComponent("client.json").path }
    var isServing: Bool { FileManager.default.fileExists(atPath: configPath) }
    var isRunning: Bool { process?.isRunning ?? false }
    var exitStatus: Int32? { process.flatMap { $0.isRunning ? nil : $0.terminationStatus } }

    /// Starts the process and waits until it serves (its client.json written), unless
    /// `waitForServing` is false (a standby replica, which serves only once elected).
    func start(waitForServing: Bool = true) async throws {
        try? FileManager.default.removeItem(atPath: configPath)
        let p = Process()
        p.executableURL = Binaries.ampd
        p.arguments = ["controller", "--data-dir", dataDir.path, "--port", "\(port)", "--resync-seconds", "2", "--exit-with-parent"] + extraArgs
        FileManager.default.createFile(atPath: logURL.path, contents: nil)
        let log = try FileHandle(forWritingTo: logURL)
        log.seekToEndOfFile()
        p.standardOutput = log
        p.standardError = log
        try p.run()
        process = p
        if waitForServing { try await waitUntilServing() }
    }

    /// Waits until the controller serves (client.json written) and connects the client to it.
    func waitUntilServing(timeout: TimeInterval = 30) async throws {
        guard let p = process else { throw ClientError(message: "controller not started") }
        let deadline = Date().addingTimeInterval(timeout)
        while !FileManager.default.fileExists(atPath: configPath) {
            guard p.isRunning else { throw ClientError(message: "controller exited: \(self.log())") }
            guard Date() < deadline else { throw ClientError(message: "controller did not start: \(self.log())") }
            try await Task.sleep(for: .milliseconds(50))
        }
        if let old = client { try? await old.shutdown() }
        client = try ControllerClient(config: try ClientConfiguration.load(URL(fileURLWithPath: configPath)))
    }

    func log() -> String { (try? String(contentsOf: logURL, encoding: .utf8)) ?? "" }

    /// Sends a signal, without waiting.
    func signal(_ sig: Int32) {
        if let p = process { kill(p.processIdentifier, sig) }
    }

    /// Sends a signal and waits for the process to exit; returns its status.
    @discardableResult
    func stop(signal: Int32 = SIGTERM) async throws -> Int32 {
        guard let p = process else { return 0 }
        kill(p.processIdentifier, signal)
        let deadline = Date().addingTimeInterval(20)
        while p.isRunning && Date() < deadline { try await Task.sleep(for: .milliseconds(50)) }
        if p.isRunning { kill(p.processIdentifier, SIGKILL); p.waitUntilExit() }
        process = nil
        return p.terminationStatus
    }

    func shutdown() async {
        try? await stop(signal: SIGKILL)
        try? await client?.shutdown()
        try? FileManager.default.removeItem(at: dataDir)
    }

    /// A token of a role from the generated token file.
    func token(_ role: String) throws -> String {
        let text = try String(contentsOf: dataDir.appendingPathComponent("tokens.csv"), encoding: .utf8)
        for line in text.split(separator: "\n") where !line.hasPrefix("#") {
            let parts = line.split(separator: ",")
            if parts.count == 3 && parts[2] == role { return String(parts[0]) }
        }
        throw ClientError(message: "no \(role) token")
    }

    /// A client with another role's token.
    func client(role: String) throws -> ControllerClient {
        var c = client.config
        c.token = try token(role)
        return try ControllerClient(config: c)
    }

    /// Runs the CLI against this controller; returns exit status, stdout and stderr. The waiting
    /// happens on a thread of its own, not on the test process's cooperative pool.
    func cli(_ args: [String], stdin: String? = nil) async throws -> (Int32, String, String) {
        let configPath = self.configPath
        return try await onOwnThread {
            let p = Process()
            p.executableURL = Binaries.ampd
            p.arguments = args
            var env = ProcessInfo.processInfo.environment
            env["AMPD_CONFIG"] = configPath
            p.environment = env
            let out = Pipe(), err = Pipe()
            p.standardOutput = out
            p.standardError = err
            let input = Pipe()
            p.standardInput = input
            try p.run()
            if let stdin { input.fileHandleForWriting.write(Data(stdin.utf8)) }
            try input.fileHandleForWriting.close()
            let o = out.fileHandleForReading.readDataToEndOfFile()
            let e = err.fileHandleForReading.readDataToEndOfFile()
            p.waitUntilExit()
            return (p.terminationStatus, String(decoding: o, as: UTF8.self), String(decoding: e, as: UTF8.self))
        }
    }
}

/// Polls until a condition holds (or fails the test after the timeout).
func eventually<T>(_ what: String, timeout: Duration = .seconds(20), _ probe: () async throws -> T?) async throws -> T {
    let deadline = ContinuousClock.now + timeout
    var lastError: (any Error)?
    while ContinuousClock.now < deadline {
        do {
            if let v = try await probe() { return v }
        } catch {
            lastError = error
        }
        try await Task.sleep(for: .milliseconds(100))
    }
    throw ClientError(message: "timed out waiting for \(what)\(lastError.map { ": \($0)" } ?? "")")
}

/// Runs `ampd ARGS` (in `dir`) to its end; returns its exit status and its stdout and stderr together.
func runAmpd(_ args: [String], in dir: URL? = nil) async throws -> (Int32, String) {
    let p = Process()
    p.executableURL = Binaries.ampd
    p.arguments = args
    if let dir { p.currentDirectoryURL = dir }
    let out = Pipe()
    p.standardOutput = out
    p.standardError = out
    try p.run()
    let r = try await waitForExit(p, reading: out)
    return (r.status, r.output)
}

/// An agent stand-in that speaks the controller's public API over the network: it registers with
/// the bootstrap token and heart-beats, reporting as Running whatever it was assigned.
/// A node without an agent: registers with the bootstrap client, then acts with the node
/// credential it got.
final class FakeAgentHeartbeat: @unchecked Sendable {
    let client: ControllerClient
    let name: String
    private let lock = NSLock()
    private var _credential: String?
    var credential: String? { lock.withLock { _credential } }

    init(client: ControllerClient, name: String, credential: String? = nil) {
        self.client = client
        self.name = name
        _credential = credential
    }

    @discardableResult
    func register(count: Int = 4) async throws -> Node {
        let (node, credential) = try await client.registerNode(NodeRegistration(name: name, capacity: NodeCapacity(accelerator: "cpu", count: count, memoryBytes: 8 << 30), addresses: ["127.0.0.1"]))
        if let credential { lock.withLock { _credential = credential } }
        return node
    }

    /// One heartbeat reporting `running`; returns what the controller wants this node to run.
    @discardableResult
    func beat(running: [NodeInstance]) async throws -> NodeAssignments {
        try await client.heartbeat(node: name, Heartbeat(load: NodeLoad(queueLength: 0, runningSequences: running.count),
            instances: running.map { InstanceReport(instance: $0.instance, deployment: $0.deployment, phase: .running) }), token: credential)
    }

    /// Heart-beats twice so that the report matches the assignments.
    @discardableResult
    func converge() async throws -> NodeAssignments {
        let a = try await beat(running: try await client.assignments(node: name, token: credential).instances)
        return try await beat(running: a.instances)
    }
}
