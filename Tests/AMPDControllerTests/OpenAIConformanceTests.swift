import AsyncHTTPClient
import AMPDTestSupport
import Foundation
import NIOCore
import Testing

@Suite("OpenAI API conformance and API keys", .serialized)
struct OpenAIConformanceTests {
    static var pythonHasOpenAI: Bool {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["python3", "-c", "import openai"]
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        guard (try? p.run()) != nil else { return false }
        p.waitUntilExit()
        return p.terminationStatus == 0
    }

    /// A gateway with two keys: `key-a…` for tenant acme, `key-b…` for tenant globex.
    func keysFile(_ dir: URL) throws -> String {
        let file = dir.appendingPathComponent("api-keys.csv")
        try "# KEY,TENANT\nkey-a-0123456789abcdef,acme\nkey-b-0123456789abcdef,globex\n".write(to: file, atomically: true, encoding: .utf8)
        return file.path
    }

    @Test("the official openai package against a gateway: chat, parts, streaming with usage, retry and edit under a session, stop, logprobs, JSON mode, a two-step tool loop under a session (named, required, streamed, none), completions, penalties, refusals by name, wrong key, unknown model")
    func officialClient() async throws {
        guard AgentInstancesTests.modelAvailable else { return }
        guard Self.pythonHasOpenAI else {
            #expect(ProcessInfo.processInfo.environment["CI"] == nil, "CI must install the openai package (.ci/run)")
            return
        }
        let cluster = try await GatewayCluster.start(gatewayArgs: { ctl in ["--api-keys", try keysFile(ctl.dataDir)] })
        defer { cluster.stop() }
        let (gw, port) = (cluster.gw, cluster.port)
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["python3", Binaries.packageRoot.appendingPathComponent("Tests/Conformance/openai_conformance.py").path,
                       "http://127.0.0.1:\(port)", "key-a-0123456789abcdef", "SmolLM2-135M-Instruct"]
        let out = Pipe()
        p.standardOutput = out
        p.standardError = out
        try p.run()
        let (status, text) = try await waitForExit(p, reading: out)
        #expect(status == 0 && text.contains("all checks passed"), "\(text)\n\(gw.log().suffix(4000))")
    }

    @Test("API keys: no key or a wrong one is 401; the key's tenant owns the session, whatever the client says")
    func apiKeysAndTenants() async throws {
        guard AgentInstancesTests.modelAvailable else { return }
        let cluster = try await GatewayCluster.start(manifest: try quickstartManifest(routing: "policy: colocated"), gatewayArgs: { ctl in ["--api-keys", try keysFile(ctl.dataDir)] })
        defer { cluster.stop() }
        let (gw, http, port) = (cluster.gw, cluster.http, cluster.port)
        let base = "http://127.0.0.1:\(port)"
        let q = [("user", "What is the capital of France?")]
        let (none, noneBody) = try await ChatClient(http: http, base: base).send(q, session: "s")
        #expect(none == 401 && noneBody.contains("invalid_api_key"))
        let (wrong, _) = try await ChatClient(http: http, base: base, key: "key-z-0123456789abcdef").send(q, session: "s")
        #expect(wrong == 401)
        let models = try await http.execute(HTTPClientRequest(url: "\(base)/v1/models"), timeout: .seconds(10))
        #expect(models.status.code == 401)
        // The same session id under two keys: two sessions. Tenant globex's first round reuses
        // nothing of tenant acme's, though both send the same messages and `user`.
        let acme = ChatClient(http: http, base: base, key: "key-a-0123456789abcdef")
        let globex = ChatClient(http: http, base: base, key: "key-b-0123456789abcdef")
        _ = try await acme.chat(q, session: "shared-id")
        let again = try await acme.chat(q, session: "shared-id")
        #expect(again.ampd.reusedTokens > 0)
        let other = try await globex.chat(q, session: "shared-id")
        #expect(other.ampd.reusedTokens == 0 && other.ampd.reuse == "new session", "\(other.ampd)")
        // Nor does it share acme's prefix blocks on the decode instance (tenantIsolation: true),
        // while acme's own new session does.
        #expect(other.ampd.cachedTokens == 0, "\(other.ampd)")
        #expect(try await acme.chat(q, session: "another-id").ampd.cachedTokens > 0)
        #expect(gw.log().contains("\"APIKeysLoaded\""))
    }

    @Test("ampd loadgen sends its API key (--api-key, or $AMPD_API_KEY): with it every round is served, without it every one is refused")
    func loadgenKey() async throws {
        guard AgentInstancesTests.modelAvailable else { return }
        let cluster = try await GatewayCluster.start(gatewayArgs: { ctl in ["--api-keys", try keysFile(ctl.dataDir)] })
        defer { cluster.stop() }
        func loadgen(_ extra: [String], environment: [String: String] = [:]) async throws -> String {
            let p = Process()
            p.executableURL = Binaries.ampd
            p.arguments = ["loadgen", "--url", cluster.base, "--rate", "2", "--duration", "2", "--rounds", "1", "--initial", "20",
                           "--decode", "4", "--seed", "3"] + extra
            p.environment = ProcessInfo.processInfo.environment.merging(environment) { _, new in new }
            let out = Pipe()
            p.standardOutput = out
            p.standardError = out
            try p.run()
            return try await waitForExit(p, reading: out).output
        }
        let keyed = try await loadgen(["--api-key", "key-a-0123456789abcdef"])
        #expect(keyed.contains("| failed rounds | 0 |"), "\(keyed)")
        #expect(try await loadgen([], environment: ["AMPD_API_KEY": "key-b-0123456789abcdef"]).contains("| failed rounds | 0 |"))
        let keyless = try await loadgen([], environment: ["AMPD_API_KEY": ""])
        #expect(keyless.contains("| failed rounds | 3 (first:") && keyless.contains("invalid_api_key"), "\(keyless)")
    }

    @Test("bad requests never reach an agent as a 5xx: 50 malformed or out-of-range requests are 4xx naming what is wrong, and the gateway keeps serving")
    func badRequestsAreClientErrors() async throws {
        guard AgentInstancesTests.modelAvailable else { return }
        let cluster = try await GatewayCluster.start()
        defer { cluster.stop() }
        let (gw, http, port) = (cluster.gw, cluster.http, cluster.port)
        let m = #""messages":[{"role":"user","content":"Hi"}]"#
        let tools = #""tools":[{"type":"function","function":{"name":"f","parameters":{"type":"object"}}}]"#
        // (path, body, words the error must contain)
        let cases: [(String, String, String)] = [
            ("/v1/chat/completions", "not json", "valid JSON"),
            ("/v1/chat/completions", "[1,2]", "JSON object"),
            ("/v1/chat/completions", "{}", "messages"),
            ("/v1/chat/completions", #"{"messages":[]}"#, "messages"),
            ("/v1/chat/completions", #"{"messages":"hi"}"#, "messages"),
            ("/v1/chat/completions", #"{"messages":[{"content":"x"}]}"#, "messages[0].role"),
            ("/v1/chat/completions", #"{"messages":[{"role":"wizard","content":"x"}]}"#, "messages[0].role"),
            ("/v1/chat/completions", #"{"messages":[{"role":"tool","content":"x"}]}"#, "messages[0].tool_call_id"),
            ("/v1/chat/completions", #"{"messages":[{"role":"user","content":5}]}"#, "messages[0].content"),
            ("/v1/chat/completions", #"{"messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"x"}}]}]}"#, "messages[0].content[0].type"),
            ("/v1/chat/completions", #"{"messages":[{"role":"user","content":[{"type":"text"}]}]}"#, "messages[0].content[0].text"),
            ("/v1/chat/completions", #"{"messages":[{"role":"assistant","content":"x"}]}"#, "last message must be a user turn"),
            ("/v1/chat/completions", #"{\#(m),"temperature":-1}"#, "temperature"),
            ("/v1/chat/completions", #"{\#(m),"temperature":"hot"}"#, "temperature"),
            ("/v1/chat/completions", #"{\#(m),"top_p":0}"#, "top_p"),
            ("/v1/chat/completions", #"{\#(m),"top_p":7}"#, "top_p"),
            ("/v1/chat/completions", #"{\#(m),"max_tokens":0}"#, "max_tokens"),
            ("/v1/chat/completions", #"{\#(m),"max_tokens":-5}"#, "max_tokens"),
            ("/v1/chat/completions", #"{\#(m),"max_tokens":900000}"#, "maximum context length"),
            ("/v1/chat/completions", #"{\#(m),"max_tokens":1.5}"#, "max_tokens"),
            ("/v1/chat/completions", #"{\#(m),"n":3}"#, "n "),
            ("/v1/chat/completions", #"{\#(m),"stop":5}"#, "stop"),
            ("/v1/chat/completions", #"{\#(m),"stop":[\#((0..<20).map { "\"s\($0)\"" }.joined(separator: ","))]}"#, "stop"),
            ("/v1/chat/completions", #"{\#(m),"stop":[""]}"#, "stop[0]"),
            ("/v1/chat/completions", #"{\#(m),"presence_penalty":9}"#, "presence_penalty"),
            ("/v1/chat/completions", #"{\#(m),"repetition_penalty":0}"#, "repetition_penalty"),
            ("/v1/chat/completions", #"{\#(m),"seed":"x"}"#, "seed"),
            ("/v1/chat/completions", #"{\#(m),"stream":"yes"}"#, "stream"),
            ("/v1/chat/completions", #"{\#(m),"stream_options":{"include_usage":true}}"#, "stream_options"),
            ("/v1/chat/completions", #"{\#(m),"response_format":{"type":"json_schema"}}"#, "response_format.type"),
            ("/v1/chat/completions", #"{\#(m),"tools":[]}"#, "tools"),
            ("/v1/chat/completions", #"{\#(m),"frobnicate":1}"#, "frobnicate"),
            ("/v1/chat/completions", #"{\#(m),"model":"other"}"#, "does not exist"),
            ("/v1/chat/completions", #"{\#(m),"top_logprobs":2}"#, "top_logprobs"),
            ("/v1/chat/completions", #"{\#(m),"logprobs":true,"top_logprobs":50}"#, "top_logprobs"),
            ("/v1/chat/completions", #"{\#(m),"tool_choice":"required"}"#, "tool_choice"),
            ("/v1/chat/completions", #"{\#(m),\#(tools),"tool_choice":{"type":"function","function":{"name":"nope"}}}"#, "tool_choice.function.name"),
            ("/v1/chat/completions", #"{\#(m),"tools":[{"type":"function","function":{"name":"has space"}}]}"#, "tools[0].function.name"),
            ("/v1/chat/completions", #"{\#(m),"tools":[{"type":"function","function":{"name":"f","strict":true}}]}"#, "tools[0].function.strict"),
            ("/v1/chat/completions", #"{\#(m),"tools":[{"type":"retrieval"}]}"#, "tools[0].type"),
            ("/v1/chat/completions", #"{\#(m),\#(tools),"tool_choice":"sometimes"}"#, "tool_choice"),
            ("/v1/chat/completions", #"{"messages":[{"role":"user","content":"x"},{"role":"assistant","tool_calls":[{"id":"c","type":"function","function":{"name":"f","arguments":"not json"}}]},{"role":"tool","tool_call_id":"c","content":"1"}]}"#, "messages[1].tool_calls[0].function.arguments"),
            ("/v1/chat/completions", #"{\#(m),"response_format":{"type":"json_object"},\#(tools),"tool_choice":"required"}"#, "response_format"),
            ("/v1/completions", #"{"prompt":"x","logprobs":21}"#, "logprobs"),
            ("/v1/chat/completions", #"{\#(m),"messages":[]}"#, "messages"),
            ("/v1/chat/completions", #"{\#(m),"stop":"a","temperature":0,"stop":"b"}"#, "given more than once"),
            ("/v1/chat/completions", #"{\#(m),"ignore_eos":"x"}"#, "ignore_eos"),
            ("/v1/completions", #"{"max_tokens":4}"#, "prompt"),
            ("/v1/completions", #"{"prompt":[1,2]}"#, "prompt"),
            ("/v1/completions", #"{"prompt":""}"#, "prompt"),
            ("/v1/completions", #"{"prompt":"x","echo":true}"#, "echo"),
            ("/tokenize", #"{}"#, "prompt"),
            ("/detokenize", #"{"tokens":[-1]}"#, "tokens[0]"),
        ]
        #expect(cases.count >= 50)
        for (path, body, words) in cases {
            var req = HTTPClientRequest(url: "http://127.0.0.1:\(port)\(path)")
            req.method = .POST
            req.headers.add(name: "content-type", value: "application/json")
            req.body = .bytes(ByteBuffer(string: body))
            let res = try await http.execute(req, timeout: .seconds(30))
            let text = String(buffer: try await res.body.collect(upTo: 1 << 20))
            #expect((400..<500).contains(Int(res.status.code)) && text.contains("\"error\"") && text.contains(words), "\(path) \(body) → \(res.status.code) \(text)")
        }
        // A body past the limit is 413, not a crash.
        var huge = HTTPClientRequest(url: "http://127.0.0.1:\(port)/v1/chat/completions")
        huge.method = .POST
        huge.body = .bytes(ByteBuffer(repeating: UInt8(ascii: "x"), count: 9 << 20))
        #expect(try await http.execute(huge, timeout: .seconds(30)).status.code == 413)
        // Still serving.
        let ok = try await ChatClient(http: http, base: "http://127.0.0.1:\(port)").send([("user", "Hi")], session: "after", maxTokens: 2)
        #expect(ok.0 == 200, "\(ok.1)")
        #expect(!gw.log().contains("\"level\":\"critical\""))
    }
}
