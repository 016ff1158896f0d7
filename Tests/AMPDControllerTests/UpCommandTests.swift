import AsyncHTTPClient
import AMPDTestSupport
import Foundation
import NIOCore
import Testing

@Suite("ampd up", .serialized)
struct UpCommandTests {
    @Test("one command: a cluster that answers a chat request, stopped cleanly by Ctrl-C")
    func upServesAndStops() async throws {
        guard AgentInstancesTests.modelAvailable else { return }
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("ampd-up-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        let p = Process()
        p.executableURL = Binaries.ampd
        p.arguments = ["up", "--exit-with-parent", "--port", "0", "--dir", dir.path, "-f", quickstart]
        let out = Pipe()
        p.standardOutput = out
        p.standardError = out
        try p.run()
        defer { if p.isRunning { kill(p.processIdentifier, SIGKILL) } }
        let portFile = dir.appendingPathComponent("gateway.port")
        let port = try await eventually("gateway up", timeout: .seconds(90)) { () -> Int? in
            (try? String(contentsOf: portFile, encoding: .utf8)).flatMap { Int($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
        }
        let http = HTTPClient(eventLoopGroupProvider: .singleton)
        defer { Task { try? await http.shutdown() } }
        var req = HTTPClientRequest(url: "http://127.0.0.1:\(port)/v1/chat/completions")
        req.method = .POST
        req.headers.add(name: "content-type", value: "application/json")
        req.body = .bytes(ByteBuffer(string: #"{"messages":[{"role":"user","content":"Hello!"}],"max_tokens":4}"#))
        // The gateway needs the key ampd up made: without it, 401.
        let refused = try await eventually("the gateway answering") { () -> Int? in
            Int(try await http.execute(req, timeout: .seconds(60)).status.code)
        }
        #expect(refused == 401)
        let keyLine = try String(contentsOf: dir.appendingPathComponent("api-keys.csv"), encoding: .utf8).split(separator: "\n").first { !$0.hasPrefix("#") }
        let key = String(try #require(keyLine?.split(separator: ",").first))
        req.headers.add(name: "authorization", value: "Bearer \(key)")
        let res = try await eventually("a chat answer") { () -> String? in
            let r = try await http.execute(req, timeout: .seconds(60))
            let body = String(buffer: try await r.body.collect(upTo: 1 << 20))
            return r.status == .ok ? body : nil
        }
        #expect(res.contains("chat.completion"))
        kill(p.processIdentifier, SIGINT)
        let (status, text) = try await waitForExit(p, reading: out)
        #expect(status == 0, "\(text)")
        #expect(text.contains("curl -s http://127.0.0.1:\(port)/v1/chat/completions") && text.contains("API key     \(key)"))
        #expect(text.contains("stopped controller (exit 0)") && text.contains("stopped gateway (exit 0)"))
    }
}

extension UpCommandTests {
    @Test("an agent that dies is started again: ampd up keeps serving; the node token is on no command line")
    func agentDeathIsSurvived() async throws {
        guard AgentInstancesTests.modelAvailable else { return }
        let up = try UpProcess(manifest: try String(contentsOfFile: quickstart, encoding: .utf8))
        defer { _ = up.stop() }
        let port = try await up.port()
        let c = ChatClient(http: HTTPClient(eventLoopGroupProvider: .singleton), base: "http://127.0.0.1:\(port)", key: try up.key())
        defer { Task { try? await c.http.shutdown() } }
        _ = try await c.chat([("user", "Hi")], session: "before", maxTokens: 2)
        // Find agent-1's process by its data directory; its command line holds no token.
        func pid(of label: String) throws -> Int32? {
            for entry in try FileManager.default.contentsOfDirectory(atPath: "/proc") {
                guard let n = Int32(entry), let cmd = FileManager.default.contents(atPath: "/proc/\(entry)/cmdline") else { continue }
                let args = String(decoding: cmd, as: UTF8.self).split(separator: "\0")
                if args.contains("agent"), args.contains(Substring(up.dir.appendingPathComponent(label).path)) {
                    #expect(!args.contains("--token"))
                    return n
                }
            }
            return nil
        }
        let victim = try #require(try pid(of: "agent-1"))
        kill(victim, SIGKILL)
        _ = try await eventually("agent-1 started again", timeout: .seconds(30)) { () -> Int32? in
            guard let p = try pid(of: "agent-1"), p != victim else { return nil }
            return p
        }
        #expect(up.process.isRunning)
        // Serving again once the deployment is whole (its instances re-placed or restarted).
        let after = try await eventually("a chat answer after the agent died", timeout: .seconds(90)) { () -> ChatAnswer? in
            let (status, body) = try await c.send([("user", "Hi")], session: "after-\(UUID())", maxTokens: 2)
            return status == 200 ? try JSONDecoder().decode(ChatAnswer.self, from: Data(body.utf8)) : nil
        }
        #expect(after.choices.count == 1)
    }
}
