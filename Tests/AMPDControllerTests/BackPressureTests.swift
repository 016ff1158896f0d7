import AsyncHTTPClient
import Foundation
import NIOCore
import Testing

@Suite("Back-pressure on a live gateway", .serialized, .exclusiveLiveCluster)
struct BackPressureTests {
    /// Sends `count` chats at once over as many connections; returns each answer's status and
    /// Retry-After header and body.
    static func burst(_ http: HTTPClient, base: String, count: Int, tag: String, maxTokens: Int = 4) async throws -> [(Int, String?, String)] {
        try await withThrowingTaskGroup(of: (Int, String?, String).self) { group in
            for i in 0..<count {
                group.addTask {
                    var req = HTTPClientRequest(url: "\(base)/v1/chat/completions")
                    req.method = .POST
                    req.headers.add(name: "content-type", value: "application/json")
                    req.headers.add(name: "x-session-id", value: "\(tag)-\(i)")
                    req.body = .bytes(ByteBuffer(string: #"{"messages":[{"role":"user","content":"Say a number: \#(i)"}],"max_tokens":\#(maxTokens),"ignore_eos":true}"#))
                    let res = try await http.execute(req, timeout: .seconds(300))
                    return (Int(res.status.code), res.headers.first(name: "retry-after"), String(buffer: try await res.body.collect(upTo: 1 << 20)))
                }
            }
            return try await group.reduce(into: []) { $0.append($1) }
        }
    }

    @Test("64 concurrent clients: beyond spec.routing.maxRoundsInFlight the gateway answers 429 with Retry-After, never a 5xx; without the limit every one is served")
    func saturation() async throws {
        guard AgentInstancesTests.modelAvailable else { return }
        let limited = try quickstartManifest(routing: "policy: ampd\nmaxRoundsInFlight: 4")
        let cluster = try await GatewayCluster.start(manifest: limited)
        defer { cluster.stop() }
        var config = HTTPClient.Configuration()
        config.connectionPool.concurrentHTTP1ConnectionsPerHostSoftLimit = 128
        let http = HTTPClient(eventLoopGroupProvider: .singleton, configuration: config)
        defer { Task { try? await http.shutdown() } }
        let c = cluster.client()
        _ = try await eventually("the limit in force") { try await c.routing().routing.maxRoundsInFlight == 4 ? true : nil }

        let answers = try await Self.burst(http, base: cluster.base, count: 64, tag: "limited")
        let served = answers.filter { $0.0 == 200 }.count
        let refused = answers.filter { $0.0 == 429 }
        #expect(served + refused.count == 64, "\(answers.filter { $0.0 != 200 && $0.0 != 429 }.prefix(3))")
        #expect(served >= 4 && refused.count > 0, "served \(served), refused \(refused.count)")
        for r in refused {
            #expect(r.1.flatMap(Int.init).map { $0 >= 1 } == true && r.2.contains("rate_limit_exceeded") && r.2.contains("maxRoundsInFlight"), "\(r)")
        }
        // The setting is obeyed both ways: without it, the same burst is served whole.
        #expect(try await cluster.ctl.cli(["apply", "-f", "-"], stdin: try quickstartManifest(routing: "policy: ampd")).0 == 0)
        _ = try await eventually("no limit in force") { try await c.routing().routing.maxRoundsInFlight == nil ? true : nil }
        // Long answers: 64 streams held open at once to one decode instance, which batches more of
        // them than a default client pool (8 connections per agent) would let through.
        let agent = cluster.agent, ctl = cluster.ctl
        let peak = Task {
            var most = 0.0
            while !Task.isCancelled {
                let text = (try? await agent.metrics(ctl)) ?? ""
                for line in text.split(separator: "\n") where line.hasPrefix("ampd_agent_running_sequences ") {
                    most = max(most, Double(line.split(separator: " ").last ?? "") ?? 0)
                }
                try? await Task.sleep(for: .milliseconds(250))
            }
            return most
        }
        let open = try await Self.burst(http, base: cluster.base, count: 64, tag: "open", maxTokens: 64)
        peak.cancel()
        let most = await peak.value
        #expect(most > 8, "the decode instance ran at most \(most) sequences at once")
        #expect(open.allSatisfy { $0.0 == 200 }, "\(open.filter { $0.0 != 200 }.prefix(3))")
        // Every round's KV moved: none waited out the gateway's connection pool to the agents.
        let log = cluster.gw.log()
        #expect(!log.contains("\"KVTransferFailed\"") && !log.contains("getConnectionFromPoolTimeout"),
                "\(log.split(separator: "\n").filter { $0.contains("KVTransferFailed") }.prefix(2))")
        #expect(!cluster.gw.log().contains("\"level\":\"critical\""))
    }
}
