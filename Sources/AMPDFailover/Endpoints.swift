import AsyncHTTPClient
import NIOCore
import NIOPosix
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Several addresses of one service (controller replicas, etcd members), tried in order from the
/// one that last answered. A request moves on to the next address only when it certainly never
/// reached the current one (the connection could not be made); one that may have been sent is
/// not repeated elsewhere, since it may have been applied.
public final class Endpoints: Sendable {
    public let all: [String]
    private let current = Mutex(0)

    public init(_ all: [String]) {
        precondition(!all.isEmpty, "at least one endpoint")
        self.all = all
    }

    /// The address requests go to first.
    public var preferred: String { all[current.withLock { $0 }] }

    /// Why no address took the request: each one's reason.
    public struct Unreachable: Error, Sendable, CustomStringConvertible {
        public var reasons: [(endpoint: String, error: String)]
        public var description: String { reasons.map { "\($0.endpoint): \($0.error)" }.joined(separator: "; ") }
    }

    /// Runs `call` against each address from the preferred one until one takes it; remembers it.
    /// Errors other than a connection that could not be made are thrown as they are.
    public func attempt<T: Sendable>(_ call: (String) async throws -> T) async throws -> T {
        let first = current.withLock { $0 }
        var reasons: [(String, String)] = []
        for step in 0..<all.count {
            let index = (first + step) % all.count
            do {
                let value = try await call(all[index])
                if index != first { current.withLock { $0 = index } }
                return value
            } catch where Self.neverSent(error) {
                reasons.append((all[index], "\(error)"))
            }
        }
        throw Unreachable(reasons: reasons)
    }

    /// Errors that mean the request never reached the server: the connection could not be made.
    public static func neverSent(_ error: any Error) -> Bool {
        if error is NIOConnectionError { return true }
        if let e = error as? ChannelError, case .connectTimeout = e { return true }
        if let e = error as? HTTPClientError, e == .connectTimeout { return true }
        if let e = error as? IOError, [ECONNREFUSED, EHOSTUNREACH, ENETUNREACH].contains(e.errnoCode) { return true }
        return false
    }
}
