import AMPDEtcd
import Foundation
import Synchronization

/// Proof of leadership that the leader's writes carry: the leader key and the revision at which
/// this leader created it. A write fenced by it is a transaction that also checks that the key
/// still exists with that create revision, so a leader whose lease ran out (a new leader has
/// created the key again since) can no longer write, however late it wakes up.
public struct Fence: Sendable, Hashable {
    public var key: String
    public var createRevision: Int64
    public var holder: String
}

/// This replica's term as leader. `lost` turns true when the lease could not be renewed in
/// time (or was revoked); the holder must then stop leader work. Writes stay safe regardless:
/// they are fenced.
public final class Leadership: Sendable {
    public let fence: Fence
    public let lease: Int64
    private let lostLatch = Latch()
    private let renewal = Mutex<Task<Void, Never>?>(nil)
    private let client: EtcdClient

    init(fence: Fence, lease: Int64, ttl: Int64, client: EtcdClient) {
        self.fence = fence
        self.lease = lease
        self.client = client
        let task = Task { [weak self] in
            var lastRenewed = ContinuousClock.now
            while !Task.isCancelled {
                try? await Task.sleep(for: .milliseconds(ttl * 1000 / 3))
                guard let self, !self.lost else { return }
                do {
                    if try await client.keepAlive(lease: lease) == 0 {
                        self.markLost()
                        return
                    }
                    lastRenewed = .now
                } catch {
                    // etcd unreachable: the lease may run out meanwhile. Step down before it
                    // can have (a successor may be elected once it has).
                    if ContinuousClock.now - lastRenewed >= .milliseconds(ttl * 1000 * 2 / 3) {
                        self.markLost()
                        return
                    }
                }
            }
        }
        renewal.withLock { $0 = task }
    }

    public var lost: Bool { lostLatch.isOpen }

    /// Returns once leadership is lost, or when the calling task is cancelled.
    public func waitUntilLost() async { await lostLatch.wait() }

    func markLost() { lostLatch.open() }

    /// Gives leadership up now (revoking the lease deletes the leader key, so a successor need
    /// not wait for it to expire).
    public func resign() async {
        renewal.withLock { $0?.cancel() }
        markLost()
        try? await client.revoke(lease: lease)
    }
}

/// Elects one leader among the controller replicas sharing an etcd prefix: the first to create
/// `PREFIX/leader` with its lease leads until the lease ends. Others poll the key and try again
/// when it is gone, so a successor takes over within the lease TTL plus one poll interval.
public struct LeaderElection: Sendable {
    public let client: EtcdClient
    public let key: String
    public let identity: String
    public let ttlSeconds: Int64
    public let poll: Duration

    public init(location: EtcdLocation, identity: String, ttlSeconds: Int64 = 5, poll: Duration = .milliseconds(250)) {
        client = EtcdClient(location)
        key = (location.prefix == "/" ? "" : location.prefix) + "/leader"
        self.identity = identity
        self.ttlSeconds = max(1, ttlSeconds)
        self.poll = poll
    }

    /// Returns when this replica leads. Throws only when cancelled.
    public func campaign() async throws -> Leadership {
        let keyBytes = Data(key.utf8)
        while true {
            try Task.checkCancellation()
            do {
                let lease = try await client.grantLease(ttl: ttlSeconds)
                while true {
                    try Task.checkCancellation()
                    let r = try await client.txn(TxnRequest(
                        compare: [.exists(keyBytes, false)],
                        success: [.put(PutRequest(key: keyBytes, value: Data(identity.utf8), lease: lease.id))],
                        failure: [.range(RangeRequest(key: keyBytes))]))
                    if r.didSucceed {
                        let fence = Fence(key: key, createRevision: r.header?.rev ?? 0, holder: identity)
                        return Leadership(fence: fence, lease: lease.id, ttl: lease.ttl, client: client)
                    }
                    try await Task.sleep(for: poll)
                    // Keep our own lease alive while waiting; a new one if it has run out.
                    if try await client.keepAlive(lease: lease.id) == 0 { break }
                }
            } catch let e as CancellationError {
                throw e
            } catch {
                try await Task.sleep(for: poll)   // etcd unreachable: try again
            }
        }
    }

    /// Who leads now (nil: nobody).
    public func leader() async throws -> String? {
        try await client.range(RangeRequest(key: Data(key.utf8))).items.first.map { String(decoding: $0.bytes, as: UTF8.self) }
    }
}
