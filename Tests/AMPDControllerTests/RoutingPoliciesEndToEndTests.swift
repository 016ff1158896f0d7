import AMPDAPI
import AMPDClient
import AsyncHTTPClient
import Foundation
import NIOCore
import Testing

/// `ampd up -f MANIFEST` as a real process tree (controller, agents, gateway).
final class UpProcess: @unchecked Sendable {
    let process = Process()
    let dir: URL
    let out = Pipe()

    init(manifest: String, extra: [String] = []) throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("ampd-up-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let file = dir.appendingPathComponent("manifest.yaml")
        try manifest.write(to: file, atomically: true, encoding: .utf8)
        process.executableURL = Binaries.ampd
        process.arguments = ["up", "--exit-with-parent", "--port", "0", "--dir", dir.path, "-f", file.path] + extra
        process.standardOutput = out
        process.standardError = out
        try process.run()
    }

    func port() async throws -> Int {
        let portFile = dir.appendingPathComponent("gateway.port")
        return try await eventually("ampd up serving", timeout: .seconds(120)) { () -> Int? in
            guard process.isRunning else { throw ClientError(message: "ampd up exited: \(String(decoding: out.fileHandleForReading.availableData, as: UTF8.self))") }
            return (try? String(contentsOf: portFile, encoding: .utf8)).flatMap { Int($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
        }
    }

    func log(_ name: String) -> String { (try? String(contentsOf: dir.appendingPathComponent("\(name).log"), encoding: .utf8)) ?? "" }

    /// The API key `ampd up` made for its gateway.
    func key() throws -> String {
        let text = try String(contentsOf: dir.appendingPathComponent("api-keys.csv"), encoding: .utf8)
        guard let line = text.split(separator: "\n").first(where: { !$0.hasPrefix("#") }), let key = line.split(separator: ",").first else {
            throw ClientError(message: "no key in api-keys.csv")
        }
        return String(key)
    }

    /// Ctrl-C; returns the exit status.
    func stop() -> Int32 {
        if process.isRunning {
            kill(process.processIdentifier, SIGINT)
            process.waitUntilExit()
        }
        try? FileManager.default.removeItem(at: dir)
        return process.terminationStatus
    }
}

/// Sends chat requests to a gateway; decodes the answer and its round record.
struct ChatClient: Sendable {
    let http: HTTPClient
    let base: String
    var key: String? = nil

    func send(_ messages: [(String, String)], session: String, maxTokens: Int = 10) async throws -> (Int, String) {
        var req = HTTPClientRequest(url: "\(base)/v1/chat/completions")
        req.method = .POST
        req.headers.add(name: "content-type", value: "application/json")
        req.headers.add(name: "x-session-id", value: session)
        if let key { req.headers.add(name: "authorization", value: "Bearer \(key)") }
        let msgs = messages.map { ["role": $0.0, "content": $0.1] }
        let body = try JSONSerialization.data(withJSONObject: ["messages": msgs, "max_tokens": maxTokens] as [String: Any])
        req.body = .bytes(ByteBuffer(data: body))
        let res = try await http.execute(req, timeout: .seconds(180))
        return (Int(res.status.code), String(buffer: try await res.body.collect(upTo: 1 << 22)))
    }

    func chat(_ messages: [(String, String)], session: String, maxTokens: Int = 10) async throws -> ChatAnswer {
        let (status, body) = try await send(messages, session: session, maxTokens: maxTokens)
        guard status == 200 else { throw ClientError(message: "HTTP \(status): \(body)") }
        return try JSONDecoder().decode(ChatAnswer.self, from: Data(body.utf8))
    }

    struct Routing: Decodable {
        struct R: Decodable { let policy: String; let alpha: Double; let reorderWindow: Int; let maxRoundsInFlight: Int? }
        let routing: R
    }

    func routing() async throws -> Routing {
        var req = HTTPClientRequest(url: "\(base)/v1/routing")
        if let key { req.headers.add(name: "authorization", value: "Bearer \(key)") }
        let res = try await http.execute(req, timeout: .seconds(10))
        return try JSONDecoder().decode(Routing.self, from: Data(buffer: try await res.body.collect(upTo: 1 << 20)))
    }
}

@Suite("Routing policies on a live cluster", .serialized, .exclusiveLiveCluster)
struct RoutingPoliciesEndToEndTests {
    static let q1 = "Name three colours of the rainbow."
    static let q2 = "And two more?"

    static func words(_ n: Int, _ w: String) -> String { Array(repeating: w, count: n).joined(separator: " ") }

    @Test("ampd up with each routing.policy places prefills as the policy says, and every policy gives the tokens one engine gives")
    func everyPolicyLive() async throws {
        guard AgentInstancesTests.modelAvailable else { return }
        let policies: [(String, String)] = [
            ("static-pd", "policy: static-pd"),
            ("colocated", "policy: colocated"),
            ("conditional-pd", "policy: conditional-pd\nconditionalThresholdTokens: 20"),
            ("ampd", "policy: ampd"),
            ("ampd-paper", "policy: ampd-paper"),
        ]
        let http = HTTPClient(eventLoopGroupProvider: .singleton)
        defer { Task { try? await http.shutdown() } }
        var answers: [String: (ChatAnswer, ChatAnswer, ChatAnswer)] = [:]
        for (name, routing) in policies {
            let up = try UpProcess(manifest: try quickstartManifest(routing: routing))
            let port = try await up.port()
            let c = ChatClient(http: http, base: "http://127.0.0.1:\(port)", key: try up.key())
            let a1 = try await c.chat([("user", Self.q1)], session: "s-\(name)")
            let history = [("user", Self.q1), ("assistant", a1.choices[0].message.content), ("user", Self.q2)]
            let a2 = try await c.chat(history, session: "s-\(name)")
            // The same round 2 sent fresh: a new session, no KV reused.
            let fresh = try await c.chat(history, session: "fresh-\(name)")
            answers[name] = (a1, a2, fresh)
            #expect(a1.ampd.policy == name && a2.ampd.policy == name)
            switch name {
            case "static-pd":
                #expect(a1.ampd.placement == "remote" && a2.ampd.placement == "remote" && a1.ampd.reason.contains("always disaggregated"))
                // Round 2 read the history's KV from the decode instance (not recomputed) and only the new blocks came back.
                #expect(a2.ampd.history == "read" && a2.ampd.historyKVBytes > 100_000 && a2.ampd.kvBytesMoved > a2.ampd.historyKVBytes)
                #expect(a2.ampd.cachedTokens > 40)
                let agents = up.log("agent-0") + up.log("agent-1")
                #expect(agents.split(separator: "\n").contains { $0.contains("\"PushedKV\"") && !$0.contains("\"fromToken\":\"0\"") }, "\(agents)")
            case "colocated":
                #expect(a1.ampd.placement == "local" && a2.ampd.placement == "local" && a2.ampd.reason == "co-located serving")
                #expect(a2.ampd.kvBytesMoved == 0 && a2.ampd.cachedTokens > 40)
            case "conditional-pd":
                // Round 1's 37 uncached tokens reach the threshold of 20; round 2's new turn does not.
                #expect(a1.ampd.placement == "remote" && a1.ampd.reason.contains("≥ threshold 20"))
                #expect(a2.ampd.placement == "local" && a2.ampd.reason.contains("< threshold 20"))
            case "ampd":
                #expect(a1.ampd.reason.contains("expected violations") && a2.ampd.reason.contains("expected violations"))
            default:
                #expect(a1.ampd.reason.contains("α"))
                #expect(a2.ampd.reason.contains("α") || a2.ampd.reason.contains("Algorithm 1"), "\(a2.ampd.reason)")
            }
            #expect(up.stop() == 0)
        }
        // Whatever the placement, the tokens are those of one engine: every policy, and round 2
        // with its history reused equals round 2 sent fresh.
        let reference = try #require(answers["colocated"])
        for (name, (a1, a2, fresh)) in answers {
            #expect(a1.choices[0].message.content == reference.0.choices[0].message.content, "\(name) round 1")
            #expect(a2.choices[0].message.content == reference.1.choices[0].message.content, "\(name) round 2")
            #expect(a2.choices[0].message.content == fresh.choices[0].message.content, "\(name) round 2 vs fresh")
        }
    }

    @Test("ampd apply changes the live routing without a restart: alpha decides eligibility, reorderWindow decides the order of a queue")
    func applyChangesLiveRouting() async throws {
        guard AgentInstancesTests.modelAvailable else { return }
        // ampd-paper: α 0.01 makes the prefill instance ineligible once it has a TTFT; a slack
        // ITL objective lets the decode instance take the prefill.
        func manifest(alpha: Double, window: Int) throws -> String {
            try quickstartManifest(routing: "policy: ampd-paper\nalpha: \(alpha)\nbeta: 0.85\nreorderWindow: \(window)",
                                   replacing: [("ttftMs: 2000", "ttftMs: 3000"), ("tpotMs: 100", "tpotMs: 1000")])
        }
        let cluster = try await GatewayCluster.start(manifest: try manifest(alpha: 0.01, window: 3))
        defer { cluster.stop() }
        let (ctl, gw) = (cluster.ctl, cluster.gw)
        let c = cluster.client()

        let r1 = try await c.chat([("user", Self.q1)], session: "alpha")
        #expect(r1.ampd.placement == "remote")            // nothing observed yet: eligible
        let r2 = try await c.chat([("user", Self.q1), ("assistant", r1.choices[0].message.content), ("user", Self.q2)], session: "alpha")
        #expect(r2.ampd.placement == "local" && r2.ampd.reason.contains("no prefill worker under α"), "\(r2.ampd.reason)")
        #expect(try await ctl.cli(["apply", "-f", "-"], stdin: try manifest(alpha: 2, window: 3)).0 == 0)
        _ = try await eventually("alpha 2 in force") { try await c.routing().routing.alpha == 2 ? true : nil }
        let r3 = try await c.chat([("user", Self.q1), ("assistant", r1.choices[0].message.content), ("user", Self.q2),
                                   ("assistant", r2.choices[0].message.content), ("user", "Thanks.")], session: "alpha")
        #expect(r3.ampd.placement == "remote" && r3.ampd.reason.contains("≤ α·SLO"), "\(r3.ampd.reason)")

        // A queue on the prefill instance: a long prefill runs, one predicted past the TTFT SLO
        // whatever the order (B, ~800 tokens) and a short one (C) wait behind it. Algorithm 2
        // (window 3) starts C first; window 1 keeps B first. Each run has its own prompts, so that
        // the prefill instance's prefix cache does not make the second one instant.
        func queueRun(_ tag: String) async throws -> (ChatAnswer, ChatAnswer) {
            let a = Task { try await c.chat([("user", tag + " " + Self.words(300, "alpha"))], session: "\(tag)-a", maxTokens: 2) }
            try await Task.sleep(for: .milliseconds(300))
            let b = Task { try await c.chat([("user", tag + " " + Self.words(400, "bravo"))], session: "\(tag)-b", maxTokens: 2) }
            try await Task.sleep(for: .milliseconds(150))
            let cc = Task { try await c.chat([("user", "Hi")], session: "\(tag)-c", maxTokens: 2) }
            _ = try await a.value
            return (try await b.value, try await cc.value)
        }
        let (b3, c3) = try await queueRun("w3")
        #expect(b3.ampd.placement == "remote" && c3.ampd.placement == "remote")
        #expect(c3.ampd.queue.overtook == 1 && c3.ampd.queue.reorder.contains("Algorithm 2 (window 3)"), "\(c3.ampd.queue)")
        #expect(b3.ampd.queue.postponed == 1)
        #expect(try await ctl.cli(["apply", "-f", "-"], stdin: try manifest(alpha: 2, window: 1)).0 == 0)
        _ = try await eventually("window 1 in force") { try await c.routing().routing.reorderWindow == 1 ? true : nil }
        let (b1, c1) = try await queueRun("w1")
        #expect(b1.ampd.queue.overtook == 0 && c1.ampd.queue.overtook == 0 && c1.ampd.queue.reorder.isEmpty)
        #expect(c1.ampd.queue.waitedSeconds > b1.ampd.queue.waitedSeconds, "C waited for B: \(c1.ampd.queue) \(b1.ampd.queue)")
        #expect(gw.log().contains("\"RoutingConfigured\""))
    }
}
