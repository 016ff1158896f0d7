import AMPDAPI
import Foundation
import Testing
@testable import AMPDGateway

@Suite("Gateway logic")
struct GatewayLogicTests {
    @Test("a stop string split across tokens never leaks into the stream; text that only looked like one is released")
    func stopMatcher() {
        var m = StopMatcher(["END", "\n\n"])
        var out = ""
        for piece in ["Hello E", "N", "ough said. E"] {
            let (text, hit) = m.feed(piece)
            #expect(!hit)
            out += text
        }
        #expect(out == "Hello ENough said. ")
        let (last, hit) = m.feed("ND and more")
        #expect(hit && out + last == "Hello ENough said. ")
        var none = StopMatcher([])
        #expect(none.feed("abc") == ("abc", false))
        var tail = StopMatcher(["xyz"])
        #expect(tail.feed("ax").0 == "a" && tail.flush() == "x")
        #expect(StopMatcher.firstMatch(in: "a\n\nbENDc", stops: ["END", "\n\n"]).map { "a\n\nbENDc".distance(from: "a\n\nbENDc".startIndex, to: $0) } == 1)
    }

    @Test("a session's sequence is reused up to the first difference, one prompt token always computed")
    func reuse() {
        let held: [Int32] = [1, 2, 3, 4, 5]
        #expect(RoundDriver.reuse(held, for: [1, 2, 3, 4, 5, 6, 7]).tokens == 5)       // next turn
        let retry = RoundDriver.reuse(held, for: [1, 2, 3])                               // a retry
        #expect(retry.tokens == 2 && retry.why.contains("retry"))
        let edit = RoundDriver.reuse(held, for: [1, 2, 9, 9])
        #expect(edit.tokens == 2 && edit.why.contains("token 2"))
        #expect(RoundDriver.reuse(held, for: [7, 8]).tokens == 0)
    }

    @Test("requests: every field is checked and named, unsupported and unknown ones refused by name")
    func requests() throws {
        func parse(_ json: String) throws(OpenAIError) -> ChatCompletionRequest {
            try ChatCompletionRequest(json: try! JSONDecoder().decode(JSONValue.self, from: Data(json.utf8)))
        }
        let ok = try parse(#"{"messages":[{"role":"system","content":"s"},{"role":"user","content":[{"type":"text","text":"a"},{"type":"text","text":"b"}]}],"stop":"x","max_completion_tokens":7,"seed":-1,"temperature":0.5}"#)
        #expect(ok.messages.map(\.content) == ["s", "ab"] && ok.parameters.stop == ["x"] && ok.parameters.maxTokens == 7)
        #expect(ok.parameters.seed == UInt64.max && ok.parameters.temperature == 0.5)
        func refused(_ json: String, _ param: String, _ code: String) {
            do {
                _ = try parse(json)
                Issue.record("accepted: \(json)")
            } catch {
                #expect(error.param == param && error.code == code && error.status == 400, "\(json): \(error)")
            }
        }
        let m = #""messages":[{"role":"user","content":"hi"}]"#
        refused(#"{\#(m),"n":2}"#, "n", "unsupported_parameter")
        refused(#"{\#(m),"tools":[]}"#, "tools", "invalid_value")
        refused(#"{\#(m),"functions":[]}"#, "functions", "unsupported_parameter")
        refused(#"{\#(m),"bogus":true}"#, "bogus", "unknown_parameter")
        refused(#"{\#(m),"top_p":0}"#, "top_p", "invalid_value")
        refused(#"{\#(m),"stream_options":{"include_usage":true}}"#, "stream_options", "invalid_value")
        refused(#"{"messages":[{"role":"user","content":"hi","tool_calls":[]}]}"#, "messages[0].tool_calls", "unsupported_parameter")
        // null means "not given".
        #expect(try parse(#"{\#(m),"temperature":null,"tools":null}"#).parameters.temperature == 0)
    }

    @Test("API keys: KEY,TENANT lines; a bad line is named; no keys means one open tenant")
    func apiKeys() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("keys-\(UUID())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let good = dir.appendingPathComponent("good.csv")
        try "# comment\nkey-0123456789abcdef,acme\n".write(to: good, atomically: true, encoding: .utf8)
        let keys = try APIKeys.load(good)
        #expect(keys.tenant(authorization: "Bearer key-0123456789abcdef") == "acme")
        #expect(keys.tenant(authorization: "Bearer nope") == nil && keys.tenant(authorization: nil) == nil)
        #expect(APIKeys.open.tenant(authorization: nil) == "default")
        let bad = dir.appendingPathComponent("bad.csv")
        try "short,acme\n".write(to: bad, atomically: true, encoding: .utf8)
        #expect(throws: GatewayError.self) { try APIKeys.load(bad) }
        do { _ = try APIKeys.load(bad) } catch { #expect("\(error)".contains("line 1")) }
    }
}

@Suite("Gateway topology")
struct TopologySelectionTests {
    static let deployment = ServingDeployment(
        metadata: ObjectMeta(name: "d", namespace: "default"),
        spec: ServingDeploymentSpec(model: ModelSpec(name: "m", source: ModelSource(pip: "p")), slo: SLOSpec(ttftMs: 1000, tpotMs: 50),
                                    prefill: PoolSpec(replicas: 1), decode: PoolSpec(replicas: 1)),
        status: ServingDeploymentStatus(assignments: [
            InstanceAssignment(instance: "d-prefill-0", role: .prefill, node: "a", accelerators: 1),
            InstanceAssignment(instance: "d-decode-0", role: .decode, node: "b", accelerators: 1),
        ]))

    static func node(_ name: String, _ phase: NodePhase, running: [String]) -> Node {
        var spec = NodeSpec(capacity: NodeCapacity(accelerator: "cpu", count: 2, memoryBytes: 1 << 30), addresses: ["10.0.0.\(name == "a" ? 1 : 2)"])
        spec.endpoints = NodeEndpoints(api: 1000, kv: 2000)
        return Node(metadata: ObjectMeta(name: name), spec: spec, status: NodeStatus(phase: phase, instances: running.map {
            InstanceReport(instance: $0, deployment: "default/d", phase: .running)
        }))
    }

    @Test("instances on Ready nodes count when their agent reports them running; an Unknown node (a restarted controller, a new leader) keeps what the gateway had there; a NotReady node's go")
    func unknownKeepsWhatWasKnown() {
        let ready = Topology.select(Self.deployment, nodes: [Self.node("a", .ready, running: ["d-prefill-0"]), Self.node("b", .ready, running: ["d-decode-0"])],
                                    previous: ([], []))
        #expect(ready.running.map(\.name) == ["d-decode-0", "d-prefill-0"])
        #expect(ready.running.first?.host == "10.0.0.2" && ready.running.first?.apiPort == 1000)
        // The controller restarted: both nodes Unknown, no reports yet. Nothing is dropped.
        let afterRestart = Topology.select(Self.deployment, nodes: [Self.node("a", .unknown, running: []), Self.node("b", .unknown, running: [])],
                                           previous: (ready.running, []))
        #expect(afterRestart.running == ready.running)
        // Without anything known before, Unknown gives nothing; NotReady drops; Ready without a report drops.
        #expect(Topology.select(Self.deployment, nodes: [Self.node("a", .unknown, running: []), Self.node("b", .unknown, running: [])],
                                previous: ([], [])).running.isEmpty)
        let lost = Topology.select(Self.deployment, nodes: [Self.node("a", .notReady, running: []), Self.node("b", .ready, running: [])],
                                   previous: (ready.running, []))
        #expect(lost.running.isEmpty)
    }
}
