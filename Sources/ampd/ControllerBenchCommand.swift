import AMPDAPI
import AMPDClient
import ArgumentParser
import Foundation

/// `ampd controller-bench`: a real controller process (or several replicas on etcd) under the
/// load of N nodes heart-beating at 1 Hz over HTTPS, plus a stream of applies and scales;
/// prints per-call latency percentiles and each process's CPU and peak RSS.
struct ControllerBenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "controller-bench",
        abstract: "Benchmark a controller process: N nodes heart-beating at 1 Hz, applies and scales; prints a table.")

    @Option(help: "Simulated nodes, each heart-beating once per second.")
    var nodes: Int = 1000

    @Option(help: "Seconds of steady-state load to measure.")
    var duration: Int = 30

    @Option(help: "Applies and scales per second (each).")
    var writesPerSecond: Double = 2

    @Option(help: "Deployments the applies and scales cycle over.")
    var deployments: Int = 20

    @Option(help: "The controllers' store (default: SQLite in a temporary data directory); etcd://… for replicas.")
    var store: String?

    @Option(help: "Controller replicas sharing the store (more than one needs --store etcd://…): one leads and serves, the others wait.")
    var replicas: Int = 1

    @Option(name: .customLong("measure-pid"), help: "NAME=PID of another process (etcd) whose CPU and peak RSS to report too (repeatable).")
    var measurePIDs: [String] = []

    func validate() throws {
        guard nodes >= 1, duration >= 1, writesPerSecond > 0, deployments >= 1 else {
            throw ValidationError("--nodes, --duration, --writes-per-second and --deployments must be positive")
        }
        guard replicas >= 1 else { throw ValidationError("--replicas must be at least 1") }
        if replicas > 1 && !(store ?? "").hasPrefix("etcd://") { throw ValidationError("--replicas \(replicas) needs --store etcd://…") }
        for m in measurePIDs where m.split(separator: "=").count != 2 || Int32(m.split(separator: "=").last ?? "") == nil {
            throw ValidationError("--measure-pid takes NAME=PID; got \(m)")
        }
    }

    func run() async throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("ampd-bench-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: root) }
        var storeArgs: [String] = []
        if let store {
            storeArgs = ["--store", store]
            if store.hasPrefix("etcd://") {
                let kek = root.appendingPathComponent("kek")
                try Data((0..<32).map { _ in UInt8.random(in: 0...255) }).write(to: kek)
                storeArgs += ["--ca-kek", kek.path]
            }
        }
        // Replica 0 starts first and leads; the others share its tokens and wait.
        var controllers: [(name: String, process: Process)] = []
        defer { Self.stop(controllers) }
        let dataDir = root.appendingPathComponent("r0")
        for i in 0..<replicas {
            let dir = root.appendingPathComponent("r\(i)")
            try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
            let controller = Process()
            controller.executableURL = URL(fileURLWithPath: ProcessInfo.processInfo.arguments[0]).resolvingSymlinksInPath()
            controller.arguments = ["controller", "--exit-with-parent", "--data-dir", dir.path, "--port", "0",
                                    "--node-grace-seconds", "30", "--log-level", "warning"] + storeArgs
                + (replicas > 1 ? ["--replica-name", "r\(i)"] : [])
                + (i > 0 ? ["--tokens-file", dataDir.appendingPathComponent("tokens.csv").path] : [])
            controller.standardOutput = FileHandle.nullDevice
            controller.standardError = FileHandle.nullDevice
            try controller.run()
            controllers.append((replicas > 1 ? "controller r\(i)" : "controller", controller))
            if i == 0 {
                let deadline = Date().addingTimeInterval(30)
                while !FileManager.default.fileExists(atPath: dataDir.appendingPathComponent("client.json").path) {
                    guard controller.isRunning, Date() < deadline else { throw ValidationError("the controller did not start") }
                    try await Task.sleep(for: .milliseconds(50))
                }
            }
        }
        var measured = controllers.map { ($0.name, $0.process.processIdentifier) }
        for m in measurePIDs {
            let parts = m.split(separator: "=")
            measured.append((String(parts[0]), Int32(parts[1])!))
        }
        let pids = measured.map(\.1)
        let configPath = dataDir.appendingPathComponent("client.json").path
        let config = try ClientConfiguration.load(URL(fileURLWithPath: configPath))
        let admin = try ControllerClient(config: config)
        var nodeConfig = config
        nodeConfig.token = try Self.token(role: "node", in: dataDir)
        let nodeClient = try ControllerClient(config: nodeConfig, timeout: .seconds(30))
        let recorder = LatencyRecorder()

        // Register every node (64 at a time), each getting its own credential.
        let credentials = try await withThrowingTaskGroup(of: (Int, String?).self) { group in
            var out: [Int: String] = [:]
            for i in 0..<nodes {
                if i >= 64, let (j, c) = try await group.next() { out[j] = c }
                group.addTask {
                    let t = ContinuousClock.now
                    let (_, credential) = try await nodeClient.registerNode(NodeRegistration(
                        name: "node-\(i)", capacity: NodeCapacity(accelerator: "cpu", count: 8, memoryBytes: 64 << 30),
                        addresses: ["10.0.\(i / 256).\(i % 256)"]))
                    await recorder.record("register", since: t)
                    return (i, credential)
                }
            }
            for try await (j, c) in group { out[j] = c }
            return out
        }
        let manifest = try String(contentsOfFile: "Manifests/quickstart-cpu.yaml", encoding: .utf8)
        let cpuStart = measured.map { Self.cpuSeconds($0.1) }
        let wallStart = ContinuousClock.now
        let end = wallStart + .seconds(duration)

        try await withThrowingTaskGroup(of: Void.self) { group in
            // Heartbeats: node i beats at offset i/N within each second.
            for i in 0..<nodes {
                group.addTask {
                    var next = wallStart + .milliseconds(1000 * i / max(1, nodes))
                    while next < end {
                        try await Task.sleep(until: next)
                        let t = ContinuousClock.now
                        do {
                            _ = try await nodeClient.heartbeat(node: "node-\(i)", Heartbeat(load: NodeLoad(queueLength: i % 3, runningSequences: i % 5)),
                                                               token: credentials[i])
                            await recorder.record("heartbeat", since: t)
                        } catch {
                            await recorder.fail("heartbeat")
                        }
                        next += .seconds(1)
                    }
                }
            }
            // Applies: cycle over deployments, changing a label each time (a real update).
            group.addTask {
                var k = 0
                let period = Duration.milliseconds(Int(1000 / writesPerSecond))
                var next = wallStart
                while next < end {
                    try await Task.sleep(until: next)
                    let name = "bench-\(k % deployments)"
                    let yaml = manifest.replacingOccurrences(of: "name: smollm2", with: "name: \(name)")
                        .replacingOccurrences(of: "app: quickstart", with: "app: quickstart\n    revision: \"r\(k)\"")
                    let doc = try DocumentReader.readYAML(yaml)[0].value
                    let t = ContinuousClock.now
                    do {
                        _ = try await admin.apply(doc)
                        await recorder.record("apply", since: t)
                    } catch {
                        await recorder.fail("apply")
                    }
                    k += 1
                    next += period
                }
            }
            // Scales: once the first deployments exist.
            group.addTask {
                var k = 0
                let period = Duration.milliseconds(Int(1000 / writesPerSecond))
                var next = wallStart + .seconds(2)
                while next < end {
                    try await Task.sleep(until: next)
                    let t = ContinuousClock.now
                    do {
                        _ = try await admin.setScale("bench-\(k % min(deployments, 4))", prefill: 1 + k % 3, decode: 1 + (k + 1) % 3)
                        await recorder.record("scale", since: t)
                    } catch {
                        await recorder.fail("scale")
                    }
                    k += 1
                    next += period
                }
            }
            // Reads, as a dashboard would poll.
            group.addTask {
                var next = wallStart
                while next < end {
                    try await Task.sleep(until: next)
                    let t = ContinuousClock.now
                    do {
                        _ = try await admin.deployments()
                        await recorder.record("list deployments", since: t)
                    } catch {
                        await recorder.fail("list deployments")
                    }
                    next += .seconds(1)
                }
            }
            group.addTask {
                while ContinuousClock.now < end {
                    try await Task.sleep(for: .milliseconds(500))
                    for (i, pid) in pids.enumerated() { await recorder.rss(Self.rssBytes(pid), of: i) }
                }
            }
            try await group.waitForAll()
        }
        let wall = ContinuousClock.now - wallStart
        let wallS = Double(wall.components.seconds) + Double(wall.components.attoseconds) / 1e18
        let where_ = store.map { replicas > 1 ? "\(replicas) replicas on \($0)" : "store \($0)" } ?? "SQLite store"
        print("controller (\(where_)) under \(nodes) nodes heart-beating at 1 Hz, \(writesPerSecond) applies/s and \(writesPerSecond) scales/s, \(duration) s")
        print("call                     count  errors   p50 ms   p99 ms   max ms")
        for (kind, stats) in await recorder.summary() {
            let label = kind.padding(toLength: 22, withPad: " ", startingAt: 0)
            print(label + String(format: " %7d %7d %8.2f %8.2f %8.2f", stats.count, stats.errors, stats.p50, stats.p99, stats.max))
        }
        for (i, m) in measured.enumerated() {
            let cpu = Self.cpuSeconds(m.1) - cpuStart[i]
            let peak = await recorder.peakRSS(of: i)
            print(String(format: "%@ CPU: %.1f%% of one core (%.1f s over %.1f s); peak RSS %.1f MiB",
                         m.0, 100 * cpu / wallS, cpu, wallS, Double(peak) / 1_048_576))
        }
        try? await admin.shutdown()
        try? await nodeClient.shutdown()
    }

    /// SIGTERM to each controller in turn, waiting up to 20 s for each to exit; one that does
    /// not is named on stderr (a controller must stop on SIGTERM) and killed, so the bench
    /// always ends.
    static func stop(_ controllers: [(name: String, process: Process)]) {
        for c in controllers where c.process.isRunning {
            c.process.terminate()
            let deadline = Date().addingTimeInterval(20)
            while c.process.isRunning && Date() < deadline { usleep(20_000) }
            if c.process.isRunning {
                FileHandle.standardError.write(Data("error: \(c.name) (pid \(c.process.processIdentifier)) did not exit within 20 s of SIGTERM; killed\n".utf8))
                kill(c.process.processIdentifier, SIGKILL)
                c.process.waitUntilExit()
            }
        }
    }

    static func token(role: String, in dir: URL) throws -> String {
        let text = try String(contentsOf: dir.appendingPathComponent("tokens.csv"), encoding: .utf8)
        for line in text.split(separator: "\n") where !line.hasPrefix("#") {
            let parts = line.split(separator: ",")
            if parts.count == 3 && parts[2] == role { return String(parts[0]) }
        }
        throw ValidationError("no \(role) token in tokens.csv")
    }

    /// User + system CPU seconds of a process, from /proc.
    static func cpuSeconds(_ pid: Int32) -> Double {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let close = stat.lastIndex(of: ")") else { return 0 }
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        guard fields.count > 13, let u = Double(fields[11]), let s = Double(fields[12]) else { return 0 }
        return (u + s) / Double(sysconf(Int32(_SC_CLK_TCK)))
    }

    static func rssBytes(_ pid: Int32) -> Int {
        guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return 0 }
        for line in status.split(separator: "\n") where line.hasPrefix("VmRSS:") {
            let kb = line.split(separator: " ").compactMap { Int($0) }.first ?? 0
            return kb * 1024
        }
        return 0
    }
}

actor LatencyRecorder {
    var samples: [String: [Double]] = [:]
    var errors: [String: Int] = [:]
    var peaks: [Int: Int] = [:]

    func record(_ kind: String, since start: ContinuousClock.Instant) {
        let d = ContinuousClock.now - start
        samples[kind, default: []].append(Double(d.components.seconds) * 1000 + Double(d.components.attoseconds) / 1e15)
    }

    func fail(_ kind: String) { errors[kind, default: 0] += 1 }
    func rss(_ bytes: Int, of process: Int) { peaks[process] = max(peaks[process] ?? 0, bytes) }
    func peakRSS(of process: Int) -> Int { peaks[process] ?? 0 }

    struct Stats { let count: Int; let errors: Int; let p50: Double; let p99: Double; let max: Double }

    func summary() -> [(String, Stats)] {
        Set(samples.keys).union(errors.keys).sorted().map { kind in
            let s = (samples[kind] ?? []).sorted()
            func pct(_ p: Double) -> Double { s.isEmpty ? 0 : s[min(s.count - 1, Int(Double(s.count) * p))] }
            return (kind, Stats(count: s.count, errors: errors[kind] ?? 0, p50: pct(0.5), p99: pct(0.99), max: s.last ?? 0))
        }
    }
}
