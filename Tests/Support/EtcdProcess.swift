import AMPDEtcd
import Foundation

/// A real single-member etcd (Debian's `etcd-server`) on ephemeral loopback ports, with its own
/// data directory, for tests. Without the binary, `start()` throws `EtcdProcess.Missing`:
/// tests skip then, except under `CI=true`, where `.ci/run` installs it and a missing etcd fails.
public final class EtcdProcess: @unchecked Sendable {
    public struct Missing: Error, CustomStringConvertible {
        public var description: String { "etcd is not installed (apt install etcd-server)" }
    }

    public let dataDir: URL
    public private(set) var clientPort = 0
    private var process: Process?
    private var lifeline: Pipe?
    private let logURL: URL

    public static var binary: String? {
        let env = ProcessInfo.processInfo.environment
        if let p = env["AMPD_ETCD_BINARY"] { return p }
        for dir in (env["PATH"] ?? "/usr/bin").split(separator: ":") + ["/usr/bin", "/usr/local/bin"] {
            let p = "\(dir)/etcd"
            if FileManager.default.isExecutableFile(atPath: p) { return p }
        }
        return nil
    }

    /// Whether etcd tests run here: always under CI (where a missing etcd is a failure).
    public static var available: Bool { binary != nil || ProcessInfo.processInfo.environment["CI"] == "true" }

    public init() {
        dataDir = FileManager.default.temporaryDirectory.appendingPathComponent("ampd-etcd-\(UUID().uuidString)")
        logURL = dataDir.appendingPathComponent("etcd.log")
    }

    /// `etcd://127.0.0.1:PORT/PREFIX`.
    public func location(prefix: String = "/ampd-\(UUID().uuidString.prefix(8))") -> EtcdLocation {
        EtcdLocation(endpoints: ["http://127.0.0.1:\(clientPort)"], prefix: prefix)
    }

    public func url(prefix: String) -> String { "etcd://127.0.0.1:\(clientPort)\(prefix)" }

    /// Starts etcd and waits until it answers (a few tries: another process may take a port
    /// between choosing it and etcd binding it).
    public func start() async throws {
        guard let binary = Self.binary else { throw Missing() }
        try FileManager.default.createDirectory(at: dataDir, withIntermediateDirectories: true)
        var lastLog = ""
        for _ in 0..<5 {
            let (client, peer) = (try Self.freePort(), try Self.freePort())
            // etcd runs under a shell that kills it when our end of its stdin closes, so that
            // it never outlives the test process, however that ends.
            let args = [
                binary, "--name", "test", "--data-dir", dataDir.appendingPathComponent("member").path,
                "--listen-client-urls", "http://127.0.0.1:\(client)", "--advertise-client-urls", "http://127.0.0.1:\(client)",
                "--listen-peer-urls", "http://127.0.0.1:\(peer)", "--initial-advertise-peer-urls", "http://127.0.0.1:\(peer)",
                "--initial-cluster", "test=http://127.0.0.1:\(peer)", "--log-level", "warn",
            ]
            let p = Process()
            p.executableURL = URL(fileURLWithPath: "/bin/sh")
            p.arguments = ["-c", "\"$@\" </dev/null & pid=$!; cat >/dev/null; kill -9 $pid; wait $pid", "etcd"] + args
            let stdin = Pipe()
            p.standardInput = stdin
            lifeline = stdin
            FileManager.default.createFile(atPath: logURL.path, contents: nil)
            let log = try FileHandle(forWritingTo: logURL)
            p.standardOutput = log
            p.standardError = log
            try p.run()
            let probe = EtcdClient(EtcdLocation(endpoints: ["http://127.0.0.1:\(client)"]), timeout: .seconds(2))
            let deadline = Date().addingTimeInterval(20)
            while p.isRunning && Date() < deadline {
                if (try? await probe.revision()) != nil {
                    process = p
                    clientPort = client
                    return
                }
                try await Task.sleep(for: .milliseconds(100))
            }
            try? stdin.fileHandleForWriting.close()
            p.waitUntilExit()
            lastLog = (try? String(contentsOf: logURL, encoding: .utf8)) ?? ""
            try? FileManager.default.removeItem(at: dataDir.appendingPathComponent("member"))
        }
        throw EtcdError.unavailable(["etcd did not start: \(lastLog.suffix(2000))"])
    }

    public func stop() {
        guard let p = process else { return }
        try? lifeline?.fileHandleForWriting.close()
        p.waitUntilExit()
        process = nil
        lifeline = nil
        try? FileManager.default.removeItem(at: dataDir)
    }

    deinit { stop() }

    /// A loopback TCP port nothing listens on now.
    public static func freePort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw POSIXError(.EMFILE) }
        defer { close(fd) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = 0
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        let ok = withUnsafeMutablePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, len) == 0 && getsockname(fd, $0, &len) == 0 }
        }
        guard ok else { throw POSIXError(.EADDRINUSE) }
        return Int(UInt16(bigEndian: addr.sin_port))
    }
}
