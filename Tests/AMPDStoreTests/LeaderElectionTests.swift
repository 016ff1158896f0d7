import AMPDEtcd
import AMPDStore
import AMPDTestSupport
import Foundation
import Testing

@Suite("Leader election and fenced writes on etcd")
struct LeaderElectionTests {
    @Test("one leader at a time; a deposed leader's late write is refused by the fence, while its successor's goes through")
    func deposedLeaderIsFenced() async throws {
        guard EtcdProcess.available else { return }
        let etcd = EtcdProcess()
        try await etcd.start()
        defer { etcd.stop() }
        let location = etcd.location()
        let a = LeaderElection(location: location, identity: "replica-a", ttlSeconds: 10)
        let b = LeaderElection(location: location, identity: "replica-b", ttlSeconds: 10)
        let store = EtcdObjectStore(location: location)

        let leadA = try await a.campaign()
        #expect(try await a.leader() == "replica-a")
        let asA = store.fenced(by: leadA.fence)
        let first = try await asA.put(kind: "K", namespace: "ns", name: "x", precondition: .mustNotExist) { _ in Data("by a".utf8) }

        // B campaigns and waits: A holds the key. (That A's renewals outlast its lease is shown by
        // the controller replicas' test, with real processes: a test process that the suite's
        // heavy synchronous tests starve could miss a short lease's renewals.)
        let campaignB = Task { try await b.campaign() }
        try await Task.sleep(for: .seconds(2))
        #expect(try await a.leader() == "replica-a")
        #expect(!leadA.lost)

        // A's lease ends behind its back (as when its process stalls longer than the TTL):
        // B takes over; A, not knowing yet, writes as leader and is refused.
        let revoked = ContinuousClock.now
        try await EtcdClient(location).revoke(lease: leadA.lease)
        let leadB = try await campaignB.value
        print("takeover after the leader's lease ended: \(ContinuousClock.now - revoked)")
        #expect(try await a.leader() == "replica-b")
        #expect(leadB.fence.createRevision > leadA.fence.createRevision)
        await expectStoreError(.fenced) {
            try await asA.put(kind: "K", namespace: "ns", name: "x", precondition: .resourceVersion(first.resourceVersion)) { _ in Data("late a".utf8) }
        }
        await expectStoreError(.fenced) {
            try await asA.delete(kind: "K", namespace: "ns", name: "x", precondition: .none)
        }
        await expectStoreError(.fenced) {
            _ = try await asA.append(records: [(scope: "ns/x", encode: { _ in Data("late a".utf8) })])
        }
        #expect(try await store.get(kind: "K", namespace: "ns", name: "x")?.body == Data("by a".utf8))
        #expect(try await store.records(scope: nil, since: 0, limit: 10).isEmpty)

        let asB = store.fenced(by: leadB.fence)
        try await asB.put(kind: "K", namespace: "ns", name: "x", precondition: .resourceVersion(first.resourceVersion)) { _ in Data("by b".utf8) }
        #expect(try await asB.append(records: [(scope: "ns/x", encode: { _ in Data("by b".utf8) })]).map(\.seq) == [1])
        // A preconditions still come first when the fence holds: B with a stale version conflicts.
        await expectStoreError(.conflict(current: try #require(try await store.get(kind: "K", namespace: "ns", name: "x")).resourceVersion)) {
            try await asB.put(kind: "K", namespace: "ns", name: "x", precondition: .resourceVersion(first.resourceVersion)) { _ in Data() }
        }

        // A learns it lost at its next renewal; B resigning hands over at once.
        await leadA.waitUntilLost()
        #expect(leadA.lost)
        await leadB.resign()
        #expect(try await a.leader() == nil)
    }
}
