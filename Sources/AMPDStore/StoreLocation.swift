import AMPDEtcd
import Foundation

/// Where the controller keeps its state: `sqlite:PATH` (one machine; the default, in the data
/// directory) or `etcd://HOST:PORT[,HOST:PORT…][/PREFIX]`.
public enum StoreLocation: Sendable, Hashable, CustomStringConvertible {
    case sqlite(path: String)
    case etcd(EtcdLocation)

    public init(parsing text: String) throws(StoreError) {
        if text.hasPrefix("sqlite:") {
            let path = String(text.dropFirst("sqlite:".count))
            guard !path.isEmpty else { throw StoreError(.database, "--store sqlite:PATH needs a path") }
            self = .sqlite(path: path)
        } else if text.hasPrefix("etcd") {
            do { self = .etcd(try EtcdLocation(parsing: text)) } catch { throw StoreError(.database, "--store: \(error)") }
        } else {
            throw StoreError(.database, "--store \(text): expected sqlite:PATH or etcd://HOST:PORT[,HOST:PORT…][/PREFIX]")
        }
    }

    public var description: String {
        switch self {
        case .sqlite(let path): "sqlite:\(path)"
        case .etcd(let l): l.description
        }
    }

    /// Opens the store; for etcd, checks that it answers, so that a bad location fails at start.
    public func open() async throws -> any ObjectStore {
        switch self {
        case .sqlite(let path):
            return try SQLiteObjectStore(path: path)
        case .etcd(let location):
            let store = EtcdObjectStore(location: location)
            try await store.ping()
            return store
        }
    }
}
