import AMPDAPI
import AMPDClient
import AMPDEtcd
import AMPDStore
import AMPDTestSupport
import AsyncHTTPClient
import Foundation
import Testing

/// A file of 32 random bytes: a key-encryption key for the shared CA.
func keyEncryptionKeyFile() throws -> String {
    let path = FileManager.default.temporaryDirectory.appendingPathComponent("ampd-kek-\(UUID().uuidString)").path
    var bytes = [UInt8](repeating: 0, count: 32)
    for i in bytes.indices { bytes[i] = UInt8.random(in: 0...255) }
    try Data(bytes).write(to: URL(fileURLWithPath: path))
    return path
}

/// Controller replicas sharing one etcd prefix, on fixed ports, with their own etcd and
/// key-encryption key: replica 0 starts first and leads; the others share its tokens (as
/// replicas share a mounted Secret) and wait.
final class ControllerReplicaSet: @unchecked Sendable {
    let etcd = EtcdProcess()
    let kek: String
    let prefix: String
    let ports: [Int]
    private(set) var replicas: [ControllerProcess] = []

    /// Nil where etcd is not installed (tests skip; under CI it is).
    static func start(_ count: Int, prefix: String, leaseSeconds: Int, extra: [String] = [],
                      waitForFirst: Bool = true) async throws -> ControllerReplicaSet? {
        guard EtcdProcess.available else { return nil }
        let set = try ControllerReplicaSet(count, prefix: prefix)
        try await set.etcd.start()
        let common = ["--store", set.url, "--ca-kek", set.kek, "--lease-seconds", "\(leaseSeconds)"] + extra
        for i in 0..<count {
            let tokens = i == 0 ? [] : ["--tokens-file", set.replicas[0].dataDir.appendingPathComponent("tokens.csv").path]
            let r = try ControllerProcess(extraArgs: common + ["--replica-name", "r\(i)"] + tokens, port: set.ports[i])
            try await r.start(waitForServing: i == 0 && waitForFirst)
            set.replicas.append(r)
        }
        return set
    }

    private init(_ count: Int, prefix: String) throws {
        kek = try keyEncryptionKeyFile()
        self.prefix = prefix
        ports = try (0..<count).map { _ in try EtcdProcess.freePort() }
    }

    var url: String { etcd.url(prefix: prefix) }

    /// A client config naming every replica, with a token of `role`.
    func config(role: String = "admin") throws -> ClientConfiguration {
        ClientConfiguration(server: ports.map { "https://127.0.0.1:\($0)" }.joined(separator: ","),
                            certificateAuthority: replicas[0].dataDir.appendingPathComponent("ca.crt").path, token: try replicas[0].token(role))
    }

    /// The leader key as etcd has it (its value names the replica; its lease is the leader's).
    func leaderKey() async throws -> KeyValue? {
        try await EtcdClient(try EtcdLocation(parsing: url)).range(RangeRequest(key: Data("\(prefix)/leader".utf8))).items.first
    }

    /// SIGKILLs the replica that leads now and starts it again as a standby; returns its index.
    @discardableResult
    func killLeader() async throws -> Int {
        let leader = try #require(try await leaderKey().map { String(decoding: $0.bytes, as: UTF8.self) })
        let index = try #require(Int(leader.dropFirst()))
        try await replicas[index].stop(signal: SIGKILL)
        try await replicas[index].start(waitForServing: false)
        return index
    }

    func stop() {
        let (replicas, etcd, kek) = (replicas, etcd, kek)
        Task {
            for r in replicas { await r.shutdown() }
            etcd.stop()
            try? FileManager.default.removeItem(atPath: kek)
        }
    }
}

@Suite("Controller replicas on etcd", .serialized)
struct ControllerReplicasTests {
    @Test("two replicas: one leads and serves, the other waits; kill -9 the leader and the other takes over with the same state and CA; SIGTERM hands over at once; a leader whose lease is taken exits")
    func failover() async throws {
        guard let set = try await ControllerReplicaSet.start(2, prefix: "/replicas", leaseSeconds: 3, extra: ["--node-grace-seconds", "300"]) else { return }
        defer { set.stop() }
        let (a, b) = (set.replicas[0], set.replicas[1])
        let (portA, portB) = (set.ports[0], set.ports[1])
        #expect(a.log().contains("\"event\":\"ElectedLeader\""))
        try await Task.sleep(for: .seconds(4))   // longer than the lease: A keeps it
        #expect(b.isRunning && !b.isServing, "\(b.log())")
        #expect(b.log().contains("\"event\":\"Campaigning\""))

        // State through A: a deployment, two nodes (each with its minted credential), a scale.
        let bootstrap = try a.client(role: "node")
        defer { Task { try? await bootstrap.shutdown() } }
        let n1 = FakeAgentHeartbeat(client: bootstrap, name: "node-a")
        let n2 = FakeAgentHeartbeat(client: bootstrap, name: "node-b")
        try await n1.register()
        try await n2.register()
        #expect(try await a.cli(["apply", "-f", quickstart]).0 == 0)
        _ = try await eventually("placement", timeout: .seconds(60)) { () -> ServingDeployment? in
            try await n1.converge(); try await n2.converge()
            let d = try await a.client.deployment("smollm2")
            return d.status?.assignments.count == 2 ? d : nil
        }
        #expect(try await a.cli(["scale", "smollm2", "--decode", "2"]).0 == 0)
        let before = try await eventually("scale-up placement") { () -> ServingDeployment? in
            let d = try await a.client.deployment("smollm2")
            return d.status?.assignments.count == 3 ? d : nil
        }
        let decisionsBefore = try await a.client.decisions(deployment: "default/smollm2").items.count
        let caA = try String(contentsOf: a.dataDir.appendingPathComponent("ca.crt"), encoding: .utf8)

        // A client that knows both replicas, and the CLI with such a client.json.
        let both = ClientConfiguration(server: "https://127.0.0.1:\(portA),https://127.0.0.1:\(portB)",
                                       certificateAuthority: a.dataDir.appendingPathComponent("ca.crt").path, token: try a.token("admin"))
        let bothPath = FileManager.default.temporaryDirectory.appendingPathComponent("ampd-both-\(UUID().uuidString).json")
        defer { try? FileManager.default.removeItem(at: bothPath) }
        try JSONCoding.encoder.encode(both).write(to: bothPath)
        let multi = try ControllerClient(config: both)
        defer { Task { try? await multi.shutdown() } }
        #expect(try await multi.deployment("smollm2").metadata.uid == before.metadata.uid)

        // kill -9 the leader: B serves within the lease (plus a poll), with everything A accepted.
        let killed = ContinuousClock.now
        try await a.stop(signal: SIGKILL)
        try await b.waitUntilServing(timeout: 30)
        let takeover = ContinuousClock.now - killed
        print("takeover after kill -9 of the leader (lease 3 s): \(takeover)")
        #expect(takeover < .seconds(15), "the lease (3 s), a poll (0.25 s) and a start")
        let after = try await b.client.deployment("smollm2")
        #expect(after.metadata.uid == before.metadata.uid && after.spec == before.spec)
        #expect(Set(after.status?.assignments ?? []) == Set(before.status?.assignments ?? []))
        #expect(try await b.client.decisions(deployment: "default/smollm2").items.count >= decisionsBefore)
        #expect(try String(contentsOf: b.dataDir.appendingPathComponent("ca.crt"), encoding: .utf8) == caA, "one CA for every replica")
        // The client that knows both goes to B now; so does the CLI.
        #expect(try await multi.deployment("smollm2").metadata.uid == before.metadata.uid)
        let cli = try await a.cli(["get", "deployments", "--config", bothPath.path])
        #expect(cli.0 == 0 && cli.1.contains("smollm2"), "\(cli)")
        // The nodes' credentials, minted by A, work on B.
        var nodeConfig = b.client.config
        nodeConfig.token = try a.token("node")   // B reads A's tokens file
        let viaB = try ControllerClient(config: nodeConfig)
        defer { Task { try? await viaB.shutdown() } }
        let m1 = FakeAgentHeartbeat(client: viaB, name: "node-a", credential: try #require(n1.credential))
        #expect(try await m1.converge().instances.count >= 1)
        // An edit through B (read again on a conflict: B's reconciler writes status as it takes over).
        let updated = try await eventually("an edit through B") { () -> ServingDeployment? in
            var edited = try await b.client.deployment("smollm2")
            edited.metadata.labels = ["edited": "by-b"]
            return try await b.client.update(edited)
        }
        #expect(Int64(updated.metadata.resourceVersion!)! > Int64(after.metadata.resourceVersion!)!)

        // A comes back as the standby; SIGTERM of B hands over without waiting for the lease.
        try await a.start(waitForServing: false)
        try await Task.sleep(for: .seconds(1))
        #expect(!a.isServing)
        let terminated = ContinuousClock.now
        b.signal(SIGTERM)
        try await a.waitUntilServing(timeout: 30)
        let handover = ContinuousClock.now - terminated
        print("handover after SIGTERM of the leader: \(handover)")
        #expect(try await b.stop(signal: SIGTERM) == 0, "\(b.log())")
        // B resigned as its shutdown began (A did not wait for the lease to run out).
        let bEvents = b.log().components(separatedBy: "\"event\":\"")
        #expect(bEvents.firstIndex { $0.hasPrefix("Resigned") } ?? .max < bEvents.lastIndex { $0.hasPrefix("Stopped") } ?? -1, "\(b.log())")
        #expect(try await a.client.deployment("smollm2").metadata.labels?["edited"] == "by-b")
        #expect(try await multi.deployment("smollm2").metadata.labels?["edited"] == "by-b", "the two-replica client follows back to A")

        // A leader whose lease is taken from it (a stall longer than the lease would do the same)
        // stops: exit 1, saying so.
        let leaderKey = try #require(try await set.leaderKey())
        #expect(String(decoding: leaderKey.bytes, as: UTF8.self) == "r0")
        try await EtcdClient(try EtcdLocation(parsing: set.url)).revoke(lease: try #require(leaderKey.lease?.value))
        let deadline = Date().addingTimeInterval(15)
        while a.isRunning && Date() < deadline { try await Task.sleep(for: .milliseconds(100)) }
        #expect(a.exitStatus == 1, "\(a.log())")
        #expect(a.log().contains("\"event\":\"LostLeadership\""))
    }

    /// `controller-bench --replicas 2` stops its replicas one after the other, so the standby
    /// is elected by the first one's resignation and gets its SIGTERM while it starts up. It
    /// used to die by the signal there (status 15, no resignation) or ignore it: libdispatch's
    /// signal handling has a gap between one trap ending and the next beginning. This pins the
    /// shutdown at every moment of a takeover.
    @Test("SIGTERM to a replica the moment it is elected, while it starts up: it shuts down with status 0, resigning")
    func sigtermWhileTakingOver() async throws {
        // From the moment B says it leads, through its start-up, to when it serves.
        for delay in [0, 5, 15, 30, 60, 100, 150, 250, 400] {
            guard let set = try await ControllerReplicaSet.start(2, prefix: "/takeover-sigterm-\(delay)", leaseSeconds: 3) else { return }
            defer { set.stop() }
            let (a, b) = (set.replicas[0], set.replicas[1])
            a.signal(SIGTERM)
            let deadline = Date().addingTimeInterval(20)
            while !b.log().contains("\"event\":\"ElectedLeader\"") && Date() < deadline { try await Task.sleep(for: .milliseconds(1)) }
            try await Task.sleep(for: .milliseconds(delay))
            b.signal(SIGTERM)
            let stopBy = Date().addingTimeInterval(15)
            while b.isRunning && Date() < stopBy { try await Task.sleep(for: .milliseconds(50)) }
            #expect(!b.isRunning, "SIGTERM \(delay) ms after election was ignored: \(b.log().suffix(1500))")
            #expect(b.exitStatus == 0, "SIGTERM \(delay) ms after election: \(b.log().suffix(1500))")
            #expect(b.log().contains("\"event\":\"Resigned\"") || b.log().contains("stopped as it was elected"), "\(delay) ms: \(b.log().suffix(1500))")
            #expect(try await a.stop(signal: SIGTERM) == 0)
        }
        // A replica elected at its first attempt (no leader before it), signalled as it says so.
        for delay in [0, 2, 10, 30, 80] {
            guard let set = try await ControllerReplicaSet.start(1, prefix: "/first-sigterm-\(delay)", leaseSeconds: 3, waitForFirst: false) else { return }
            defer { set.stop() }
            let a = set.replicas[0]
            let deadline = Date().addingTimeInterval(20)
            while !a.log().contains("\"event\":\"ElectedLeader\"") && Date() < deadline { try await Task.sleep(for: .milliseconds(1)) }
            try await Task.sleep(for: .milliseconds(delay))
            a.signal(SIGTERM)
            let stopBy = Date().addingTimeInterval(15)
            while a.isRunning && Date() < stopBy { try await Task.sleep(for: .milliseconds(50)) }
            #expect(!a.isRunning, "SIGTERM \(delay) ms after a first election was ignored: \(a.log().suffix(1500))")
            #expect(a.exitStatus == 0, "SIGTERM \(delay) ms after a first election: \(a.log().suffix(1500))")
        }
    }

    @Test("a standby stops at once on SIGTERM; a replica whose --ca-kek does not open the shared CA fails at start, naming it; --ca-kek without etcd is refused")
    func standbyAndBadKey() async throws {
        guard EtcdProcess.available else { return }
        let etcd = EtcdProcess()
        try await etcd.start()
        defer { etcd.stop() }
        let kek = try keyEncryptionKeyFile(), other = try keyEncryptionKeyFile()
        defer { try? FileManager.default.removeItem(atPath: kek); try? FileManager.default.removeItem(atPath: other) }
        let url = etcd.url(prefix: "/standby")
        let a = try ControllerProcess(extraArgs: ["--store", url, "--ca-kek", kek])
        try await a.start()
        defer { Task { await a.shutdown() } }
        let b = try ControllerProcess(extraArgs: ["--store", url, "--ca-kek", kek, "--tokens-file", a.dataDir.appendingPathComponent("tokens.csv").path])
        try await b.start(waitForServing: false)
        defer { Task { await b.shutdown() } }
        try await Task.sleep(for: .seconds(1))
        #expect(try await b.stop(signal: SIGTERM) == 0, "\(b.log())")

        let wrong = try ControllerProcess(extraArgs: ["--store", url, "--ca-kek", other])
        try await wrong.start(waitForServing: false)
        defer { Task { await wrong.shutdown() } }
        let deadline = Date().addingTimeInterval(20)
        while wrong.isRunning && Date() < deadline { try await Task.sleep(for: .milliseconds(100)) }
        #expect(wrong.exitStatus == 1 && wrong.log().contains("every replica needs the same key file"), "\(wrong.log())")

        let noKey = try ControllerProcess(extraArgs: ["--store", url])
        try await noKey.start(waitForServing: false)
        defer { Task { await noKey.shutdown() } }
        while noKey.isRunning && Date() < deadline { try await Task.sleep(for: .milliseconds(100)) }
        #expect(noKey.exitStatus == 1 && noKey.log().contains("needs --ca-kek"), "\(noKey.log())")

        let sqliteWithKey = try await a.cli(["controller", "--data-dir", "/tmp/ampd-unused-\(UUID().uuidString)", "--ca-kek", kek])
        #expect(sqliteWithKey.0 != 0 && sqliteWithKey.2.contains("are for --store etcd"), "\(sqliteWithKey)")
    }
}

/// Three replicas on one etcd; a client that knows all three applies and updates while the
/// leader is killed again and again (each killed replica restarted, as its supervisor would).
@Suite("Controller replicas under leader kills", .serialized)
struct ControllerLeaderKillTests {
    /// How one write ended, after retries through leader changes.
    enum Outcome { case applied, alreadyThere }

    @Test("200 writes while the leader is SIGKILLed 5 times: every acknowledged write is there once, updates are not lost, nodes and deployments converge")
    func writesThroughLeaderKills() async throws {
        guard let set = try await ControllerReplicaSet.start(3, prefix: "/kills", leaseSeconds: 2, extra: ["--node-grace-seconds", "300"]) else { return }
        defer { set.stop() }
        let first = set.replicas[0]
        let admin = try ControllerClient(config: try set.config())
        let nodeClient = try ControllerClient(config: try set.config(role: "node"))
        defer { Task { try? await admin.shutdown(); try? await nodeClient.shutdown() } }
        let nodes = [FakeAgentHeartbeat(client: nodeClient, name: "node-a"), FakeAgentHeartbeat(client: nodeClient, name: "node-b")]
        for n in nodes { try await n.register(count: 32) }
        #expect(try await first.cli(["apply", "-f", quickstart]).0 == 0)
        let template = try await admin.deployment("smollm2")

        /// Runs a write until it is acknowledged, through unreachable replicas and 503s.
        func untilAcknowledged(_ write: () async throws -> Outcome) async throws -> Outcome {
            let deadline = ContinuousClock.now + .seconds(60)
            while true {
                do { return try await write() } catch let e as ClientError where e.status == nil || e.status?.code == 503 {
                    guard ContinuousClock.now < deadline else { throw e }
                    try await Task.sleep(for: .milliseconds(50))
                }
            }
        }

        var created: [String] = []
        var lastValue: [String: String] = ["smollm2": ""]
        var outages: [Duration] = []
        var killedAt: ContinuousClock.Instant?
        for op in 0..<200 {
            if op % 40 == 20 {
                // Kill whoever leads now, and start it again as a standby.
                try await set.killLeader()
                killedAt = .now
            }
            if op % 10 == 0 {
                // Create (once: a retry after an unknown outcome finds it there).
                let name = "d\(op / 10)"
                var d = ServingDeployment(metadata: ObjectMeta(name: name, namespace: "default"), spec: template.spec)
                d.metadata.labels = ["n": "created"]
                let outcome = try await untilAcknowledged {
                    do { _ = try await admin.create(d); return .applied } catch let e as ClientError where e.status?.code == 409 {
                        return .alreadyThere
                    }
                }
                if outcome == .alreadyThere { #expect(try await admin.deployment(name).metadata.labels?["n"] == "created") }
                created.append(name)
                lastValue[name] = "created"
            } else {
                // Compare-and-swap a label on one deployment: a retry whose first try did land
                // sees its own value and stops (never applied twice over a newer one).
                let name = (["smollm2"] + created)[op % (created.count + 1)]
                let value = "op-\(op)"
                _ = try await untilAcknowledged {
                    while true {
                        var d = try await admin.deployment(name)
                        if d.metadata.labels?["n"] == value { return .alreadyThere }
                        d.metadata.labels = ["n": value]
                        do { _ = try await admin.update(d); return .applied } catch let e as ClientError where e.status?.code == 409 {
                            continue
                        }
                    }
                }
                lastValue[name] = value
            }
            if let k = killedAt {
                outages.append(ContinuousClock.now - k)
                killedAt = nil
            }
        }
        print("leader kills: \(outages.count); write unavailable after each kill: \(outages.map { String(format: "%.2f s", Double($0.components.attoseconds) / 1e18 + Double($0.components.seconds)) })")
        #expect(outages.count == 5)

        // Every acknowledged write is there, once; nothing else is.
        let all = try await admin.deployments(namespace: "default")
        #expect(Set(all.map(\.metadata.name)) == Set(lastValue.keys))
        for d in all { #expect(d.metadata.labels?["n"] == lastValue[d.metadata.name], "\(d.metadata.name)") }
        // The leader now places them all on the nodes, which heart-beat through the replicas.
        _ = try await eventually("every deployment Ready", timeout: .seconds(90)) { () -> Bool? in
            for n in nodes { try await n.converge() }
            let ds = try await admin.deployments(namespace: "default")
            return ds.count == lastValue.count && ds.allSatisfy { $0.status?.conditions.first(ofType: "Ready")?.status == .true } ? true : nil
        }
    }
}

@Suite("controller-bench on replicas")
struct ControllerBenchReplicasTests {
    @Test("controller-bench --store etcd --replicas 2 measures the leader under load and reports every replica and --measure-pid; --replicas without etcd is refused")
    func benchReplicas() async throws {
        guard EtcdProcess.available else { return }
        let etcd = EtcdProcess()
        try await etcd.start()
        defer { etcd.stop() }
        func bench(_ args: [String]) async throws -> (Int32, String) {
            try await runAmpd(["controller-bench", "--nodes", "3", "--duration", "2"] + args, in: Binaries.packageRoot)
        }
        let (status, text) = try await bench(["--store", etcd.url(prefix: "/bench"), "--replicas", "2", "--measure-pid", "self=\(getpid())"])
        #expect(status == 0, "\(text)")
        #expect(text.contains("2 replicas on etcd://") && text.contains("controller r0 CPU") && text.contains("controller r1 CPU") && text.contains("self CPU"), "\(text)")
        #expect(text.contains("heartbeat") && !text.contains("the controller did not start"))
        // A replica that ignores SIGTERM is killed by the bench (so this never hangs) and named.
        if text.contains("did not exit") { print("controller-bench: \(text)") }
        let (refused, why) = try await bench(["--replicas", "2"])
        #expect(refused != 0 && why.contains("needs --store etcd"), "\(why)")
    }
}

/// Three replicas; an agent and a gateway that know all three; chats served while the leader is
/// killed.
@Suite("Serving through controller leader kills", .serialized, .exclusiveLiveCluster)
struct ServingThroughLeaderKillsTests {
    @Test("an agent and a gateway keep serving while the controller leader is SIGKILLed twice: every chat round answers 200, the same as a fresh request; the deployment is Ready again under the new leader")
    func servingThroughKills() async throws {
        guard AgentInstancesTests.modelAvailable else { return }
        guard let set = try await ControllerReplicaSet.start(3, prefix: "/serving", leaseSeconds: 2) else { return }
        defer { set.stop() }
        let first = set.replicas[0]
        let configPath = first.dataDir.appendingPathComponent("all-replicas.json")
        try JSONCoding.encoder.encode(try set.config()).write(to: configPath)
        let admin = try ControllerClient(config: try set.config())
        defer { Task { try? await admin.shutdown() } }

        let agent = try AgentProcess(controller: first, name: "cpu-host", extra: ["--count", "2"], config: configPath.path)
        defer { _ = agent.stop() }
        _ = try await eventually("agent enrolled") { try agent.port() }
        #expect(try await first.cli(["apply", "-f", quickstart, "--config", configPath.path]).0 == 0)
        _ = try await eventually("Ready", timeout: .seconds(90)) { () -> Bool? in
            try await admin.deployment("smollm2").status?.conditions.first(ofType: "Ready")?.status == .true ? true : nil
        }
        let gw = try GatewayProcess(controller: first, config: configPath.path)
        defer { _ = gw.stop() }
        let port = try await eventually("gateway listening") { gw.port() }
        let http = HTTPClient(eventLoopGroupProvider: .singleton)
        defer { Task { try? await http.shutdown() } }
        let chat = ChatClient(http: http, base: "http://127.0.0.1:\(port)")
        _ = try await eventually("a first answer", timeout: .seconds(60)) { try? await chat.chat([("user", "Hello!")], session: "warm", maxTokens: 2) }

        // One session's rounds back to back while the leader is killed twice (each time
        // restarted as a standby, as its supervisor would).
        let killsDone = Latch()
        let clock = ContinuousClock()
        let rounds = Task { () -> [(Int, String, [(String, String)], Range<ContinuousClock.Instant>)] in
            var history: [(String, String)] = []
            var out: [(Int, String, [(String, String)], Range<ContinuousClock.Instant>)] = []
            var afterKills = 0
            for r in 0..<200 where afterKills < 3 {
                if killsDone.isOpen { afterKills += 1 }
                let messages = history + [("user", "Tell me one fact about rivers, part \(r + 1).")]
                let started = clock.now
                let (status, body) = (try? await chat.send(messages, session: "through-kills", maxTokens: 6)) ?? (0, "no answer")
                out.append((status, body, messages, started..<clock.now))
                if status == 200, let answer = try? JSONDecoder().decode(ChatAnswer.self, from: Data(body.utf8)).choices.first?.message.content {
                    history = messages + [("assistant", answer)]
                }
            }
            return out
        }
        var kills: [ContinuousClock.Instant] = []
        for _ in 0..<2 {
            try await Task.sleep(for: .seconds(3))
            kills.append(clock.now)
            try await set.killLeader()
        }
        killsDone.open()
        let results = try await rounds.value
        print("rounds through two leader kills: \(results.count), answered 200: \(results.filter { $0.0 == 200 }.count)")
        // Rounds run back to back, so each kill lands while one is in flight (however slow the
        // machine makes them); one that no round spans means the rounds stalled or stopped.
        for (i, kill) in kills.enumerated() {
            #expect(results.contains { $0.3.contains(kill) }, "no round was in flight at kill \(i + 1)")
        }
        if let bad = results.first(where: { $0.0 != 200 }) {
            Issue.record("round answered \(bad.0): \(bad.1.prefix(400))\ngateway: \(gw.log().suffix(3000))\nagent: \(agent.log().suffix(2000))")
        }
        #expect(results.allSatisfy { $0.0 == 200 }, "\(results.filter { $0.0 != 200 }.count) of \(results.count) rounds failed")
        // The last round again, as a fresh session: the same answer.
        if let (_, body, messages, _) = results.last(where: { $0.0 == 200 }) {
            let fresh = try await chat.chat(messages, session: "fresh-\(UUID())", maxTokens: 6)
            let original = try JSONDecoder().decode(ChatAnswer.self, from: Data(body.utf8))
            #expect(fresh.choices.first?.message.content == original.choices.first?.message.content)
        }
        _ = try await eventually("Ready under the new leader", timeout: .seconds(60)) { () -> Bool? in
            try await admin.deployment("smollm2").status?.conditions.first(ofType: "Ready")?.status == .true ? true : nil
        }
    }
}
