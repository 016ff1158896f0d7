import AsyncHTTPClient
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
        p.waitUntilExit()
        let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        #expect(p.terminationStatus == 0, "\(text)")
        #expect(text.contains("curl -s http://127.0.0.1:\(port)/v1/chat/completions") && text.contains("API key     \(key)"))
        #expect(text.contains("stopped controller (exit 0)") && text.contains("stopped gateway (exit 0)"))
    }
}
