import AMPDAPI
import AMPDClient
import ArgumentParser
import Foundation

/// `ampd controller-bench`: a real controller process under the load of N
/// nodes heart-beating at 1 Hz over HTTPS, plus a stream of applies and
/// scales; prints per-call latency percentiles and the controller's CPU and RSS.
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

    func run() async throws {
        let dataDir = FileManager.default.temporaryDirectory.appendingPathComponent("ampd-bench-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dataDir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dataDir) }
        let controller = Process()
        controller.executableURL = URL(fileURLWithPath: ProcessInfo.processInfo.arguments[0]).resolvingSymlinksInPath()
        controller.arguments = ["controller", "--exit-with-parent", "--data-dir", dataDir.path, "--port", "0",
                                "--node-grace-seconds", "30", "--log-level", "warning"]
        controller.standardOutput = FileHandle.nullDevice
        controller.standardError = FileHandle.nullDevice
        try controller.run()
        defer { if controller.isRunning { controller.terminate(); controller.waitUntilExit() } }
        let configPath = dataDir.appendingPathComponent("client.json").path
        let deadline = Date().addingTimeInterval(30)
        while !FileManager.default.fileExists(atPath: configPath) {
            guard controller.isRunning, Date() < deadline else { throw ValidationError("the controller did not start") }
            try await Task.sleep(for: .milliseconds(50))
        }
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
        let cpuStart = Self.cpuSeconds(controller.processIdentifier)
        let wallStart = ContinuousClock.now
        let end = wallStart + .seconds(duration)
        var peakRSS = 0

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
                    await recorder.rss(Self.rssBytes(controller.processIdentifier))
                }
            }
            try await group.waitForAll()
        }
        let wall = ContinuousClock.now - wallStart
        let cpu = Self.cpuSeconds(controller.processIdentifier) - cpuStart
        peakRSS = await recorder.peakRSS
        let wallS = Double(wall.components.seconds) + Double(wall.components.attoseconds) / 1e18
        print("controller under \(nodes) nodes heart-beating at 1 Hz, \(writesPerSecond) applies/s and \(writesPerSecond) scales/s, \(duration) s")
        print("call                     count  errors   p50 ms   p99 ms   max ms")
        for (kind, stats) in await recorder.summary() {
            let label = kind.padding(toLength: 22, withPad: " ", startingAt: 0)
            print(label + String(format: " %7d %7d %8.2f %8.2f %8.2f", stats.count, stats.errors, stats.p50, stats.p99, stats.max))
        }
        print(String(format: "controller CPU: %.1f%% of one core (%.1f s over %.1f s); peak RSS %.1f MiB",
                     100 * cpu / wallS, cpu, wallS, Double(peakRSS) / 1_048_576))
        try? await admin.shutdown()
        try? await nodeClient.shutdown()
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
    var peakRSS = 0

    func record(_ kind: String, since start: ContinuousClock.Instant) {
        let d = ContinuousClock.now - start
        samples[kind, default: []].append(Double(d.components.seconds) * 1000 + Double(d.components.attoseconds) / 1e15)
    }

    func fail(_ kind: String) { errors[kind, default: 0] += 1 }
    func rss(_ bytes: Int) { peakRSS = max(peakRSS, bytes) }

    struct Stats { let count: Int; let errors: Int; let p50: Double; let p99: Double; let max: Double }

    func summary() -> [(String, Stats)] {
        Set(samples.keys).union(errors.keys).sorted().map { kind in
            let s = (samples[kind] ?? []).sorted()
            func pct(_ p: Double) -> Double { s.isEmpty ? 0 : s[min(s.count - 1, Int(Double(s.count) * p))] }
            return (kind, Stats(count: s.count, errors: errors[kind] ?? 0, p50: pct(0.5), p99: pct(0.99), max: s.last ?? 0))
        }
    }
}
