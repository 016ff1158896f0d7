import AMPDAPI
import AMPDClient
import AsyncHTTPClient
import Foundation
import NIOCore
import Testing

/// A real `ampd gateway` process.
final class GatewayProcess: @unchecked Sendable {
    let process = Process()
    let portFile: URL
    let logURL: URL

    /// `config`: a client config other than the controller's own (several replicas' URLs, say).
    init(controller: ControllerProcess, deployment: String = "smollm2", extra: [String] = [], file: String = "gateway", config: String? = nil) throws {
        portFile = controller.dataDir.appendingPathComponent("\(file).port")
        logURL = controller.dataDir.appendingPathComponent("\(file).log")
        FileManager.default.createFile(atPath: logURL.path, contents: nil)
        process.executableURL = Binaries.ampd
        process.arguments = ["gateway", "--exit-with-parent", "--config", config ?? controller.configPath, "--deployment", deployment, "--port", "0",
                             "--port-file", portFile.path] + extra
        let log = try FileHandle(forWritingTo: logURL)
        process.standardOutput = log
        process.standardError = log
        try process.run()
    }

    func port() -> Int? { (try? String(contentsOf: portFile, encoding: .utf8)).flatMap { Int($0.trimmingCharacters(in: .whitespacesAndNewlines)) } }
    func log() -> String { (try? String(contentsOf: logURL, encoding: .utf8)) ?? "" }
    func stop() -> Int32 {
        guard process.isRunning else { return process.terminationStatus }
        kill(process.processIdentifier, SIGTERM)
        process.waitUntilExit()
        return process.terminationStatus
    }
}

struct ChatAnswer: Decodable {
    struct Choice: Decodable { struct M: Decodable { let content: String }; let message: M; let finish_reason: String }
    struct Ampd: Decodable {
        struct Queue: Decodable { let aheadAtArrival: Int; let overtook: Int; let postponed: Int; let waitedSeconds: Double; let reorder: String }
        let placement: String; let kvOutcome: String; let kvBytesMoved: Int; let cachedTokens: Int; let round: Int; let reason: String
        let history: String; let historyKVBytes: Int; let policy: String; let queue: Queue; let promptTokens: Int; let kvBytesSaved: Int
        let reusedTokens: Int; let reuse: String; let decodeInstance: String
        var decodeInstanceName: String { decodeInstance }
    }
    let choices: [Choice]
    let ampd: Ampd
}

@Suite("Gateway end to end: controller, agent, gateway as real processes", .serialized)
struct GatewayEndToEndTests {
    func post(_ http: HTTPClient, _ url: String, _ json: String, session: String) async throws -> (Int, String) {
        var req = HTTPClientRequest(url: url)
        req.method = .POST
        req.headers.add(name: "content-type", value: "application/json")
        req.headers.add(name: "x-session-id", value: session)
        req.body = .bytes(ByteBuffer(string: json))
        let res = try await http.execute(req, timeout: .seconds(120))
        let body = try await res.body.collect(upTo: 1 << 22)
        return (Int(res.status.code), String(buffer: body))
    }

    @Test("chat rounds as the quickstart's ampd policy places them, equal to single-engine output; SSE, completions, models, metrics, workload reports, session expiry")
    func chatRounds() async throws {
        guard AgentInstancesTests.modelAvailable else { return }
        let (ctl, agent) = try await startQuickstart()
        defer { Task { await ctl.shutdown() } }
        defer { _ = agent.stop() }
        let strategy = "ampd"
        let gw = try GatewayProcess(controller: ctl, extra: ["--session-ttl-seconds", "12", "--report-interval-seconds", "1", "--name", "gw-\(strategy)"])
        defer { _ = gw.stop() }
        let port = try await eventually("gateway listening") { gw.port() }
        let base = "http://127.0.0.1:\(port)"
        let http = HTTPClient(eventLoopGroupProvider: .singleton)
        defer { Task { try? await http.shutdown() } }

        // Round 1.
        let q1 = "What is the capital of France?"
        let (s1, b1) = try await post(http, "\(base)/v1/chat/completions",
            #"{"model":"SmolLM2-135M-Instruct","messages":[{"role":"user","content":"\#(q1)"}],"max_tokens":12}"#, session: "s1")
        #expect(s1 == 200, "\(b1)\n\(gw.log())")
        let a1 = try JSONDecoder().decode(ChatAnswer.self, from: Data(b1.utf8))
        // The policy routes the initial prefill too.
        #expect(a1.ampd.policy == "ampd" && a1.ampd.reason.contains("expected violations"))
        if a1.ampd.placement == "remote" { #expect(a1.ampd.kvOutcome == "transferred" && a1.ampd.kvBytesMoved > 100_000) }
        else { #expect(a1.ampd.kvBytesMoved == 0) }

        // Round 2 of the same session: the dispatcher decides; the history stays on the decode instance.
        let msgs2 = #"[{"role":"user","content":"\#(q1)"},{"role":"assistant","content":\#(try String(decoding: JSONEncoder().encode(a1.choices[0].message.content), as: UTF8.self))},{"role":"user","content":"And of Italy?"}]"#
        let (s2, b2) = try await post(http, "\(base)/v1/chat/completions", #"{"messages":\#(msgs2),"max_tokens":8}"#, session: "s1")
        #expect(s2 == 200, "\(b2)")
        let a2 = try JSONDecoder().decode(ChatAnswer.self, from: Data(b2.utf8))
        #expect(a2.ampd.round == 2 && a2.ampd.reason.contains("expected violations"))
        // A local incremental prefill reuses the whole history on the decode instance and moves no KV.
        if a2.ampd.placement == "local" { #expect(a2.ampd.cachedTokens > 40 && a2.ampd.kvBytesMoved == 0) }

        // Round 1 gave the same tokens as one engine computing the whole request.
        let local = try await ctl.cli(["generate", "--chat", q1, "--max-tokens", "12", "--json"])
        struct Gen: Decodable { let text: String }
        #expect(try JSONDecoder().decode(Gen.self, from: Data(local.1.utf8)).text.hasPrefix(a1.choices[0].message.content))

        // Streaming (a new session).
        let (s3, b3) = try await post(http, "\(base)/v1/chat/completions",
            #"{"messages":[{"role":"user","content":"Say hi."}],"max_tokens":6,"stream":true}"#, session: "s2")
        #expect(s3 == 200)
        #expect(b3.hasPrefix("data: ") && b3.hasSuffix("data: [DONE]\n\n") && b3.contains("chat.completion.chunk"))

        // Raw completions.
        let (s5, b5) = try await post(http, "\(base)/v1/completions", #"{"prompt":"The quick brown fox","max_tokens":5}"#, session: "s4")
        #expect(s5 == 200 && b5.contains("text_completion") && b5.contains("\"completion_tokens\":5"), "\(b5)")

        // Models, rounds, metrics; bad input named.
        let models = try await http.execute(HTTPClientRequest(url: "\(base)/v1/models"), timeout: .seconds(10))
        #expect(String(buffer: try await models.body.collect(upTo: 1 << 16)).contains("SmolLM2-135M-Instruct"))
        let metrics = try await http.execute(HTTPClientRequest(url: "\(base)/metrics"), timeout: .seconds(10))
        #expect(String(buffer: try await metrics.body.collect(upTo: 1 << 20)).contains("ampd_gateway_rounds_total"))
        let (s4, b4) = try await post(http, "\(base)/v1/chat/completions", #"{"messages":[{"role":"assistant","content":"x"}]}"#, session: "s3")
        #expect(s4 == 400 && b4.contains("last message must be a user turn"))
        #expect(gw.log().contains("\"event\":\"Round\""))
        // The gateway reports what it served to the controller's planner: 4 rounds of 3 sessions,
        // one of them incremental, with the SLOs' attainment measured.
        let report = try await eventually("workload report") { () -> WorkloadReport? in
            let w: WorkloadStatus = try await ctl.client.send(.GET, ControllerClient.deploymentPath("default", "smollm2") + "/workload")
            return w.reports.first { $0.source == "gw-\(strategy)" && $0.rounds == 4 }
        }
        #expect(report.sessions == 3)
        #expect(report.meanIncrementalPrefillTokens > 0 && report.meanIncrementalPrefillTokens < report.meanInitialPrefillTokens)
        #expect(report.roundAttainment != nil && report.ttftP95Seconds! > 0)
        #expect(report.meanDecodeTokens > 0 && report.meanDecodeTokens <= 12)   // max_tokens were 12, 8, 6, 5
        // Idle sessions expire and their KV is released on the decode instance.
        _ = try await eventually("sessions expire", timeout: .seconds(45)) { gw.log().contains("SessionExpired") ? true : nil }
        #expect(gw.stop() == 0)
    }
}

extension GatewayEndToEndTests {
    @Test("a KV transfer that fails is never a silent wait: recompute (counted by kind) or fail, as the manifest says")
    func transferFailure() async throws {
        guard AgentInstancesTests.modelAvailable else { return }
        // A KV pool of 1 MiB (the manifest's capacityPerAgent) cannot take a 1.1 MB sequence: every push is refused.
        let manifest = try quickstartManifest(routing: "policy: static-pd", replacing: [("capacityPerAgent: 256Mi", "capacityPerAgent: 1Mi")])
        let cluster = try await GatewayCluster.start(manifest: manifest)
        defer { cluster.stop() }
        let (ctl, http, port) = (cluster.ctl, cluster.http, cluster.port)
        let body = #"{"messages":[{"role":"user","content":"What is the capital of France?"}],"max_tokens":12}"#
        let (s1, b1) = try await post(http, "http://127.0.0.1:\(port)/v1/chat/completions", body, session: "r1")
        #expect(s1 == 200, "\(b1)")
        let a1 = try JSONDecoder().decode(ChatAnswer.self, from: Data(b1.utf8))
        #expect(a1.ampd.kvOutcome == "recomputed-transport")
        let local = try await ctl.cli(["generate", "--chat", "What is the capital of France?", "--max-tokens", "12", "--json"])
        struct Gen: Decodable { let text: String }
        #expect(try JSONDecoder().decode(Gen.self, from: Data(local.1.utf8)).text.hasPrefix(a1.choices[0].message.content))
        let metrics = try await http.execute(HTTPClientRequest(url: "http://127.0.0.1:\(port)/metrics"), timeout: .seconds(10))
        #expect(String(buffer: try await metrics.body.collect(upTo: 1 << 20)).contains(#"outcome="recomputed-transport""#))

        // onTransferFailure: fail → an error naming the transfer.
        let failing = manifest.replacingOccurrences(of: "onTransferFailure: recompute", with: "onTransferFailure: fail")
        #expect(try await ctl.cli(["apply", "-f", "-"], stdin: failing).0 == 0)
        let (s2, b2) = try await eventually("fail policy in effect") { () -> (Int, String)? in
            let r = try await post(http, "http://127.0.0.1:\(port)/v1/chat/completions", body, session: "r-\(UUID())")
            return r.0 == 502 ? r : nil
        }
        #expect(s2 == 502 && b2.contains("KV transfer from smollm2-prefill-0 to smollm2-decode-0 failed (kvPool.onTransferFailure: fail)"), "\(b2)")
        // Every 5xx is logged at error level with its cause.
        #expect(cluster.gw.log().split(separator: "\n").contains { $0.contains("\"level\":\"error\"") && $0.contains("\"RequestFailed\"") && $0.contains("onTransferFailure: fail") })
    }
}

extension GatewayEndToEndTests {
    @Test("an empty prefill pool is explicit: aggregate runs the prefill on the decode instance, fail answers 503 with the reason")
    func emptyPrefillPool() async throws {
        guard AgentInstancesTests.modelAvailable else { return }
        // One slot: the decode instance fits; the prefill instance (2 slots) cannot be placed.
        let lines = try String(contentsOfFile: quickstart, encoding: .utf8).components(separatedBy: "\n")
        let prefillLine = try #require(lines.firstIndex { $0.contains("resources: {accelerator: cpu, count: 1}") })
        var edited = lines
        edited[prefillLine] = edited[prefillLine].replacingOccurrences(of: "count: 1", with: "count: 2")
        let manifest = edited.joined(separator: "\n")
        let (ctl, agent) = try await startQuickstart(agent: "small-host", agentArgs: ["--count", "1"], manifest: manifest, waitForReady: false)
        defer { Task { await ctl.shutdown() } }
        defer { _ = agent.stop() }
        _ = try await eventually("decode instance running", timeout: .seconds(60)) { () -> Bool? in
            let n = try await ctl.client.nodes().first { $0.metadata.name == "small-host" }
            return n?.status.instances.contains { $0.instance.contains("decode") && $0.phase == .running } == true ? true : nil
        }
        let gw = try GatewayProcess(controller: ctl)
        defer { _ = gw.stop() }
        let port = try await eventually("gateway listening") { gw.port() }
        let http = HTTPClient(eventLoopGroupProvider: .singleton)
        defer { Task { try? await http.shutdown() } }
        let body = #"{"messages":[{"role":"user","content":"Hi"}],"max_tokens":4}"#
        let (s1, b1) = try await eventually("an aggregated answer") { () -> (Int, String)? in
            let r = try await post(http, "http://127.0.0.1:\(port)/v1/chat/completions", body, session: "e1")
            return r.0 == 200 ? r : nil
        }
        #expect(s1 == 200)
        let a1 = try JSONDecoder().decode(ChatAnswer.self, from: Data(b1.utf8))
        #expect(a1.ampd.placement == "local" && a1.ampd.reason.contains("aggregate") && a1.ampd.kvBytesMoved == 0)

        #expect(try await ctl.cli(["apply", "-f", "-"], stdin: manifest.replacingOccurrences(of: "reorderWindow: 3", with: "reorderWindow: 3\n    onPrefillUnavailable: fail")).0 == 0)
        let (s2, b2) = try await eventually("fail policy in effect") { () -> (Int, String)? in
            let r = try await post(http, "http://127.0.0.1:\(port)/v1/chat/completions", body, session: "e-\(UUID())")
            return r.0 == 503 ? r : nil
        }
        #expect(s2 == 503 && b2.contains("no running prefill instance"), "\(b2)")
    }
}

extension GatewayEndToEndTests {
    @Test("a full decode instance drops idle sessions' KV (oldest first) instead of failing new rounds; a dropped session's next round recomputes its history")
    func idleSessionKVGivesWay() async throws {
        guard AgentInstancesTests.modelAvailable else { return }
        // 256 tokens of KV per engine: one idle short session and two long new ones cannot all stay.
        // Co-located: every round runs on the decode instance; the long prompts differ from their
        // first token, so that they share no prefix blocks.
        let (ctl, agent) = try await startQuickstart(agentArgs: ["--count", "2", "--engine-kv-tokens", "256"],
                                                     manifest: try quickstartManifest(routing: "policy: colocated"))
        defer { Task { await ctl.shutdown() } }
        defer { _ = agent.stop() }
        let gw = try GatewayProcess(controller: ctl)
        defer { _ = gw.stop() }
        let port = try await eventually("gateway listening") { gw.port() }
        let base = "http://127.0.0.1:\(port)"
        let http = HTTPClient(eventLoopGroupProvider: .singleton)
        defer { Task { try? await http.shutdown() } }

        let q = "What is the capital of France?"
        let (s1, b1) = try await post(http, "\(base)/v1/chat/completions", #"{"messages":[{"role":"user","content":"\#(q)"}],"max_tokens":8}"#, session: "old")
        #expect(s1 == 200, "\(b1)")
        let a1 = try JSONDecoder().decode(ChatAnswer.self, from: Data(b1.utf8))
        let long = Array(repeating: "the quick brown fox jumps over the lazy dog", count: 11).joined(separator: " ")
        for i in 0..<2 {
            let (s, b) = try await post(http, "\(base)/v1/chat/completions", #"{"messages":[{"role":"user","content":"\#(i) \#(long)"}],"max_tokens":8}"#, session: "new-\(i)")
            #expect(s == 200, "new session \(i): \(b)")
        }
        // The agent's gauges refresh with its heartbeat.
        _ = try await eventually("an idle session dropped") { () -> Bool? in
            let m = try await agent.metrics(ctl)
            return m.contains("ampd_agent_engine_evicted_idle_sequences") && !m.contains("ampd_agent_engine_evicted_idle_sequences 0") ? true : nil
        }
        // The oldest session's KV was dropped: its next round recomputes the history and answers.
        let content = try String(decoding: JSONEncoder().encode(a1.choices[0].message.content), as: UTF8.self)
        let msgs = #"[{"role":"user","content":"\#(q)"},{"role":"assistant","content":\#(content)},{"role":"user","content":"And of Italy?"}]"#
        let (s2, b2) = try await post(http, "\(base)/v1/chat/completions", #"{"messages":\#(msgs),"max_tokens":8}"#, session: "old")
        #expect(s2 == 200, "\(b2)")
        let a2 = try JSONDecoder().decode(ChatAnswer.self, from: Data(b2.utf8))
        #expect(a2.ampd.placement == "local" && a2.ampd.history == "recomputed")
        #expect(gw.log().contains("SessionKVRecomputed"))
    }

    @Test("a client that goes away mid-stream frees the round's sequence and KV on the decode instance")
    func abandonedRoundFreesKV() async throws {
        guard AgentInstancesTests.modelAvailable else { return }
        let (ctl, agent) = try await startQuickstart()
        defer { Task { await ctl.shutdown() } }
        defer { _ = agent.stop() }
        let gw = try GatewayProcess(controller: ctl)
        defer { _ = gw.stop() }
        let port = try await eventually("gateway listening") { gw.port() }

        // A long streamed answer; read a little of it, then hang up.
        let client = HTTPClient(eventLoopGroupProvider: .singleton)
        var req = HTTPClientRequest(url: "http://127.0.0.1:\(port)/v1/chat/completions")
        req.method = .POST
        req.headers.add(name: "content-type", value: "application/json")
        req.body = .bytes(ByteBuffer(string: #"{"messages":[{"role":"user","content":"Tell me a very long story about the sea."}],"max_tokens":2000,"stream":true,"temperature":0.8,"seed":3}"#))
        let reader = Task {
            let res = try await client.execute(req, timeout: .seconds(120))
            var seen = 0
            for try await chunk in res.body {
                seen += chunk.readableBytes
                if seen > 2000 { break }
            }
        }
        _ = try await eventually("decoding under way") { () -> Bool? in
            try await agent.metrics(ctl).contains("ampd_agent_running_sequences 1") ? true : nil
        }
        reader.cancel()
        _ = await reader.result
        try await client.shutdown()
        // The decode instance drops the sequence: nothing running, no KV blocks held.
        let text = try await eventually("sequence released", timeout: .seconds(30)) { () -> String? in
            let m = try await agent.metrics(ctl)
            return m.contains("ampd_agent_running_sequences 0") && m.contains("ampd_agent_engine_kv_blocks_used 0") ? m : nil
        }
        #expect(text.contains("ampd_agent_waiting_sequences 0"))
    }
}

extension GatewayEndToEndTests {
    @Test("the manifest's kvPool settings are what the agents run: block size, pool capacity, encryption, isolation and lease change with ampd apply, and KV still moves correctly")
    func kvPoolSettingsFromManifest() async throws {
        guard AgentInstancesTests.modelAvailable else { return }
        let manifest = try quickstartManifest(routing: "policy: static-pd")
        let cluster = try await GatewayCluster.start(manifest: manifest)
        defer { cluster.stop() }
        let (ctl, agent) = (cluster.ctl, cluster.agent)
        let c = cluster.client()
        func pools() async throws -> [KVPoolReport] {
            try await ctl.client.nodes().first { $0.metadata.name == "cpu-host" }?.status.pools ?? []
        }
        // As applied: 16-token blocks, 256Mi, sealed, isolated, 120 s leases.
        let before = try await eventually("pool reported") { try await pools().first { $0.deployment == "default/smollm2" } }
        #expect(before.capacityBytes == 256 << 20 && before.blockTokens == 16 && before.encryption == .aes256gcm && before.tenantIsolation
                && before.leaseSeconds == 120)
        let m0 = try await agent.metrics(ctl)
        #expect(m0.contains(#"ampd_agent_engine_block_tokens{instance="smollm2-decode-0"} 16"#), "\(m0)")
        #expect(m0.contains(#"ampd_agent_kv_pool_capacity_bytes{pool="default/smollm2"} 268435456"#))
        let a1 = try await c.chat([("user", "What is the capital of France?")], session: "before", maxTokens: 12)
        #expect(a1.ampd.kvOutcome == "transferred")

        let changed = manifest.replacingOccurrences(of: "blockTokens: 16", with: "blockTokens: 32")
            .replacingOccurrences(of: "capacityPerAgent: 256Mi", with: "capacityPerAgent: 64Mi")
            .replacingOccurrences(of: "tenantIsolation: true", with: "tenantIsolation: false")
            .replacingOccurrences(of: "encryption: aes-256-gcm", with: "encryption: none")
            .replacingOccurrences(of: "onTransferFailure: recompute", with: "onTransferFailure: recompute\n    leaseSeconds: 30")
        #expect(try await ctl.cli(["apply", "-f", "-"], stdin: changed).0 == 0)
        let after = try await eventually("new pool settings in force", timeout: .seconds(60)) { () -> KVPoolReport? in
            let p = try await pools().first { $0.deployment == "default/smollm2" }
            return p?.blockTokens == 32 ? p : nil
        }
        #expect(after.capacityBytes == 64 << 20 && after.encryption == KVEncryption.none && !after.tenantIsolation && after.leaseSeconds == 30)
        // The engines were replaced with 32-token blocks (visible in the agent's metrics) ...
        _ = try await eventually("engines with 32-token blocks", timeout: .seconds(60)) { () -> Bool? in
            let m = try await agent.metrics(ctl)
            return m.contains(#"ampd_agent_engine_block_tokens{instance="smollm2-decode-0"} 32"#)
                && m.contains(#"ampd_agent_engine_block_tokens{instance="smollm2-prefill-0"} 32"#)
                && m.contains(#"ampd_agent_kv_pool_capacity_bytes{pool="default/smollm2"} 67108864"#) ? true : nil
        }
        _ = try await waitReady(ctl)
        // ... and KV moves as before: a new session gets the same tokens, with its KV transferred.
        let a2 = try await eventually("a round on the new engines") { () -> ChatAnswer? in
            let (status, body) = try await c.send([("user", "What is the capital of France?")], session: "after-\(UUID())", maxTokens: 12)
            return status == 200 ? try JSONDecoder().decode(ChatAnswer.self, from: Data(body.utf8)) : nil
        }
        #expect(a2.ampd.kvOutcome == "transferred" && a2.choices[0].message.content == a1.choices[0].message.content)
        // The session from before the change lost its KV with the old engines: its next round recomputes, same tokens as fresh.
        let history = [("user", "What is the capital of France?"), ("assistant", a1.choices[0].message.content), ("user", "And of Italy?")]
        let next = try await c.chat(history, session: "before")
        let fresh = try await c.chat(history, session: "fresh")
        #expect(next.choices[0].message.content == fresh.choices[0].message.content)
        #expect(agent.log().contains("InstanceReplacing"))
    }
}

extension GatewayEndToEndTests {
    @Test("the KV pool is a shared prefix cache: a prefix already in the destination pool is found by probe, not sent again, and the answer is the fresh one's")
    func poolProbeSavesTransfer() async throws {
        guard AgentInstancesTests.modelAvailable else { return }
        let cluster = try await GatewayCluster.start(manifest: try quickstartManifest(routing: "policy: static-pd"))
        defer { cluster.stop() }
        let (http, port) = (cluster.http, cluster.port)
        let c = cluster.client()
        let system = "You are a careful assistant for a travel agency. " + Array(repeating: "Answer briefly, politely and accurately.", count: 12).joined(separator: " ")
        // The first session finds an empty pool: everything is sent.
        let first = try await c.chat([("system", system), ("user", "Where is Rome?")], session: "p1", maxTokens: 8)
        #expect(first.ampd.kvOutcome == "transferred" && first.ampd.kvBytesSaved == 0)
        // The same request in a new session: every full block is in the pool already.
        let again = try await c.chat([("system", system), ("user", "Where is Rome?")], session: "p2", maxTokens: 8)
        #expect(again.ampd.kvBytesSaved > 1_000_000 && again.ampd.kvBytesMoved < first.ampd.kvBytesMoved, "\(again.ampd)")
        #expect(again.choices[0].message.content == first.choices[0].message.content)
        // Another question under the same long system prompt: the prompt's blocks are reused.
        let other = try await c.chat([("system", system), ("user", "Where is Paris?")], session: "p3", maxTokens: 8)
        #expect(other.ampd.kvBytesSaved > 0 && other.ampd.kvOutcome == "transferred")
        let metrics = try await http.execute(HTTPClientRequest(url: "http://127.0.0.1:\(port)/metrics"), timeout: .seconds(10))
        #expect(String(buffer: try await metrics.body.collect(upTo: 1 << 20)).contains("ampd_gateway_kv_bytes_saved_total"))
    }
}

extension GatewayEndToEndTests {
    @Test("the client's messages are the truth: a retry returns the first answer, an edited history what the same messages return fresh; the session's KV is reused up to the first difference, locally and remotely")
    func messagesAreTheTruth() async throws {
        guard AgentInstancesTests.modelAvailable else { return }
        let cluster = try await GatewayCluster.start(manifest: try quickstartManifest(routing: "policy: colocated"))
        defer { cluster.stop() }
        let ctl = cluster.ctl
        let c = cluster.client()
        for policy in ["colocated", "static-pd"] {
            if policy == "static-pd" {
                #expect(try await ctl.cli(["apply", "-f", "-"], stdin: try quickstartManifest(routing: "policy: static-pd")).0 == 0)
                _ = try await eventually("static-pd with a prefill instance", timeout: .seconds(60)) { () -> Bool? in
                    let (s, b) = try await c.send([("user", "Hi")], session: "probe-\(UUID())", maxTokens: 1)
                    return s == 200 && b.contains("\"placement\":\"remote\"") ? true : nil
                }
            }
            let s = "truth-\(policy)"
            let q1 = [("user", "What is the capital of France?")]
            let r1 = try await c.chat(q1, session: s)
            // The same request again (a client's retry): the first answer, from the session's KV.
            let retry = try await c.chat(q1, session: s)
            #expect(retry.choices[0].message.content == r1.choices[0].message.content, "\(policy): \(retry.ampd)")
            #expect(retry.ampd.reusedTokens > 20 && retry.ampd.reuse.contains("retry") && retry.ampd.promptTokens == 1, "\(retry.ampd)")
            // The next turn extends the conversation.
            let turn2 = q1 + [("assistant", r1.choices[0].message.content), ("user", "And of Italy?")]
            let r2 = try await c.chat(turn2, session: s)
            #expect(r2.ampd.reusedTokens > 20, "\(r2.ampd)")
            #expect(r2.choices[0].message.content == (try await c.chat(turn2, session: "fresh-2-\(policy)")).choices[0].message.content)
            // An edited last turn under the same session: recomputed from the first differing token only.
            let edited = q1 + [("assistant", r1.choices[0].message.content), ("user", "And of Spain?")]
            let e = try await c.chat(edited, session: s)
            let fresh = try await c.chat(edited, session: "fresh-e-\(policy)")
            #expect(e.choices[0].message.content == fresh.choices[0].message.content, "\(policy)")
            #expect(e.ampd.reusedTokens > 20 && e.ampd.reuse.contains("differs") && e.ampd.promptTokens < fresh.ampd.promptTokens, "\(e.ampd)")
            if policy == "static-pd" { #expect(e.ampd.placement == "remote" && e.ampd.history == "read") }
        }
    }
}

extension GatewayEndToEndTests {
    @Test("a scale-down of the decode pool hands the idle sessions off with their KV: their next rounds reuse their history on the surviving instance, token-identical to fresh requests")
    func drainHandsSessionsOff() async throws {
        guard AgentInstancesTests.modelAvailable else { return }
        let two = try quickstartManifest(routing: "policy: colocated", replacing: [("  decode:\n    replicas: 1", "  decode:\n    replicas: 2")])
        let cluster = try await GatewayCluster.start(manifest: two)
        defer { cluster.stop() }
        let (ctl, gw) = (cluster.ctl, cluster.gw)
        let c = cluster.client()
        let questions = (0..<8).map { "Name one thing about the number \($0 + 2)." }
        var first: [ChatAnswer] = []
        for (i, q) in questions.enumerated() { first.append(try await c.chat([("user", q)], session: "drain-\(i)", maxTokens: 6)) }
        let onSecond = first.filter { $0.ampd.decodeInstanceName == "smollm2-decode-1" }.count
        #expect(onSecond >= 2 && onSecond <= 6, "sessions spread over both decode instances")
        // Scale the decode pool down to one: decode-1 drains, and its sessions move to decode-0.
        #expect(try await ctl.cli(["apply", "-f", "-"], stdin: try quickstartManifest(routing: "policy: colocated")).0 == 0)
        _ = try await eventually("sessions handed off", timeout: .seconds(40)) { () -> Bool? in
            gw.log().split(separator: "\n").filter { $0.contains("\"SessionHandedOff\"") }.count == onSecond ? true : nil
        }
        for (i, q) in questions.enumerated() {
            let history = [("user", q), ("assistant", first[i].choices[0].message.content), ("user", "And one more?")]
            let next = try await c.chat(history, session: "drain-\(i)", maxTokens: 6)
            #expect(next.ampd.decodeInstanceName == "smollm2-decode-0" && next.ampd.reusedTokens > 20 && next.ampd.history != "recomputed"
                    && next.ampd.reuse.contains("extends"), "session \(i): \(next.ampd)")
            let fresh = try await c.chat(history, session: "drain-fresh-\(i)", maxTokens: 6)
            #expect(next.choices[0].message.content == fresh.choices[0].message.content, "session \(i)")
        }
        #expect(!gw.log().contains("SessionOwnerGone") && !gw.log().contains("SessionHandOffFailed"))
    }
}

extension GatewayEndToEndTests {
    @Test("a prefill agent killed: the next round, sent at once, is served (the gateway keeps work away from what it cannot reach and runs the round elsewhere), long before the controller notices")
    func passiveHealth() async throws {
        guard AgentInstancesTests.modelAvailable else { return }
        let ctl = try ControllerProcess(extraArgs: ["--node-grace-seconds", "30"])
        try await ctl.start()
        defer { Task { await ctl.shutdown() } }
        let one = try AgentProcess(controller: ctl, name: "host-one")
        let two = try AgentProcess(controller: ctl, name: "host-two")
        defer { _ = one.stop(); _ = two.stop() }
        _ = try await eventually("agents enrolled") { (try one.port(), try two.port()).0 }
        #expect(try await ctl.cli(["apply", "-f", "-"], stdin: try quickstartManifest(routing: "policy: static-pd")).0 == 0)
        _ = try await waitReady(ctl)
        let gw = try GatewayProcess(controller: ctl)
        defer { _ = gw.stop() }
        let port = try await eventually("gateway listening") { gw.port() }
        let http = HTTPClient(eventLoopGroupProvider: .singleton)
        defer { Task { try? await http.shutdown() } }
        let c = ChatClient(http: http, base: "http://127.0.0.1:\(port)")
        let first = try await c.chat([("user", "What is the capital of France?")], session: "ph-1")
        #expect(first.ampd.placement == "remote")
        // Kill the agent running the prefill instance.
        let nodes = try await ctl.client.nodes()
        let prefillHost = try #require(nodes.first { $0.status.instances.contains { $0.instance.contains("prefill") } }?.metadata.name)
        let victim = prefillHost == "host-one" ? one : two
        kill(victim.process.processIdentifier, SIGKILL)
        let started = Date()
        let next = try await c.chat([("user", "What is the capital of France?")], session: "ph-2")
        let elapsed = Date().timeIntervalSince(started)
        // Served on the decode instance (no prefill instance left to the gateway: aggregate), same answer.
        #expect(next.ampd.placement == "local" && next.ampd.reason.contains("aggregate"), "\(next.ampd)")
        #expect(next.choices[0].message.content == first.choices[0].message.content)
        #expect(elapsed < 10, "took \(elapsed) s")
        #expect(gw.log().contains("\"InstanceSuspect\"") && gw.log().contains("\"RoundRetried\""))
        // The controller still lists the dead instance as running (its node grace has not run out).
        #expect(try await ctl.client.nodes().first { $0.metadata.name == prefillHost }?.status.phase == .ready)
    }
}
