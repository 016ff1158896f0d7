import AMPDEtcd
import AMPDStore
import AMPDTestSupport
import Foundation
import Testing

func tempPath() -> String {
    FileManager.default.temporaryDirectory.appendingPathComponent("ampd-store-\(UUID().uuidString).sqlite").path
}

/// The two implementations of `ObjectStore`; every contract test runs on both.
enum Backend: String, CaseIterable, CustomTestStringConvertible, Sendable {
    case sqlite, etcd
    var testDescription: String { rawValue }

    /// A fresh, empty store and a way to open it again (a restarted controller).
    func open() async throws -> Fixture? {
        switch self {
        case .sqlite:
            let path = tempPath()
            return Fixture(etcd: nil) { try SQLiteObjectStore(path: path) }
        case .etcd:
            guard EtcdProcess.available else { return nil }
            let etcd = EtcdProcess()
            try await etcd.start()
            let location = etcd.location()
            return Fixture(etcd: etcd) { EtcdObjectStore(location: location) }
        }
    }
}

struct Fixture: Sendable {
    let etcd: EtcdProcess?
    let make: @Sendable () throws -> any ObjectStore
    func store() throws -> any ObjectStore { try make() }
}

@Suite("Object store contract (SQLite and etcd)")
struct ObjectStoreContractTests {
    @Test("resourceVersion only grows, across a reopen too; a reopened store holds what was written", arguments: Backend.allCases)
    func resourceVersionOnlyGrowsAcrossReopen(_ backend: Backend) async throws {
        guard let f = try await backend.open() else { return }
        defer { f.etcd?.stop() }
        var last: Int64 = 0
        var o1: Int64 = 0
        do {
            let s = try f.store()
            for i in 0..<5 {
                let o = try await s.put(kind: "K", namespace: "ns", name: "o\(i % 2)", precondition: .none) { rv in Data("\(rv)".utf8) }
                #expect(o.resourceVersion > last)
                #expect(o.body == Data("\(o.resourceVersion)".utf8), "the body returned is encoded with its resourceVersion")
                last = o.resourceVersion
                if i % 2 == 1 { o1 = last }
            }
            #expect(try await s.delete(kind: "K", namespace: "ns", name: "o0", precondition: .none))
            #expect(try await !s.delete(kind: "K", namespace: "ns", name: "o0", precondition: .none))
        }
        let reopened = try f.store()
        #expect(try await reopened.currentResourceVersion() > last)
        let o = try await reopened.put(kind: "K", namespace: "ns", name: "o2", precondition: .none) { _ in Data() }
        #expect(o.resourceVersion > last + 1)
        #expect(try await reopened.list(kind: "K", namespace: "ns").map(\.name) == ["o1", "o2"])
        #expect(try await reopened.get(kind: "K", namespace: "ns", name: "o1")?.resourceVersion == o1)
    }

    @Test("preconditions: a stale resourceVersion conflicts naming the current one; create-only, replace-only and deletes obey theirs", arguments: Backend.allCases)
    func preconditions(_ backend: Backend) async throws {
        guard let f = try await backend.open() else { return }
        defer { f.etcd?.stop() }
        let s = try f.store()
        let a = try await s.put(kind: "K", namespace: "ns", name: "x", precondition: .mustNotExist) { _ in Data("a".utf8) }
        let b = try await s.put(kind: "K", namespace: "ns", name: "x", precondition: .resourceVersion(a.resourceVersion)) { _ in Data("b".utf8) }
        await expectStoreError(.conflict(current: b.resourceVersion)) {
            try await s.put(kind: "K", namespace: "ns", name: "x", precondition: .resourceVersion(a.resourceVersion)) { _ in Data("c".utf8) }
        }
        await expectStoreError(.alreadyExists) {
            try await s.put(kind: "K", namespace: "ns", name: "x", precondition: .mustNotExist) { _ in Data() }
        }
        await expectStoreError(.notFound) {
            try await s.put(kind: "K", namespace: "ns", name: "y", precondition: .mustExist) { _ in Data() }
        }
        await expectStoreError(.notFound) {
            try await s.put(kind: "K", namespace: "ns", name: "y", precondition: .resourceVersion(1)) { _ in Data() }
        }
        await expectStoreError(.conflict(current: b.resourceVersion)) {
            try await s.delete(kind: "K", namespace: "ns", name: "x", precondition: .resourceVersion(a.resourceVersion))
        }
        #expect(try await s.get(kind: "K", namespace: "ns", name: "x")?.body == Data("b".utf8))
        #expect(try await s.delete(kind: "K", namespace: "ns", name: "x", precondition: .resourceVersion(b.resourceVersion)))
        #expect(try await s.get(kind: "K", namespace: "ns", name: "x") == nil)
    }

    @Test("lists by kind and namespace, in namespace then name order", arguments: Backend.allCases)
    func listing(_ backend: Backend) async throws {
        guard let f = try await backend.open() else { return }
        defer { f.etcd?.stop() }
        let s = try f.store()
        for (ns, name) in [("b", "z"), ("a-b", "y"), ("a", "x"), ("a", "w"), ("", "node-1")] {
            try await s.put(kind: "K", namespace: ns, name: name, precondition: .none) { _ in Data(name.utf8) }
        }
        try await s.put(kind: "Other", namespace: "a", name: "q", precondition: .none) { _ in Data() }
        #expect(try await s.list(kind: "K", namespace: nil).map { "\($0.namespace)/\($0.name)" } == ["/node-1", "a/w", "a/x", "a-b/y", "b/z"])
        #expect(try await s.list(kind: "K", namespace: "a").map(\.name) == ["w", "x"])
        #expect(try await s.list(kind: "K", namespace: "").map(\.name) == ["node-1"])
        #expect(try await s.list(kind: "Other", namespace: nil).map(\.name) == ["q"])
    }

    @Test("writers racing with compare-and-swap lose no update", arguments: Backend.allCases)
    func noLostUpdates(_ backend: Backend) async throws {
        guard let f = try await backend.open() else { return }
        defer { f.etcd?.stop() }
        let writers = 6, increments = 15
        try await f.store().put(kind: "K", namespace: "ns", name: "n", precondition: .mustNotExist) { _ in Data("0".utf8) }
        let conflicts = try await withThrowingTaskGroup(of: Int.self) { group in
            for _ in 0..<writers {
                let s = try f.store()   // one client per writer, as separate replicas would have
                group.addTask {
                    var conflicts = 0
                    for _ in 0..<increments {
                        while true {
                            let cur = try #require(try await s.get(kind: "K", namespace: "ns", name: "n"))
                            let n = Int(String(decoding: cur.body, as: UTF8.self))!
                            do {
                                try await s.put(kind: "K", namespace: "ns", name: "n", precondition: .resourceVersion(cur.resourceVersion)) { _ in Data("\(n + 1)".utf8) }
                                break
                            } catch let e as StoreError {
                                guard case .conflict = e.code else { throw e }
                                conflicts += 1
                            }
                        }
                    }
                    return conflicts
                }
            }
            return try await group.reduce(0, +)
        }
        let final = try #require(try await f.store().get(kind: "K", namespace: "ns", name: "n"))
        #expect(String(decoding: final.body, as: UTF8.self) == "\(writers * increments)")
        print("\(backend.rawValue): \(writers * increments) increments by \(writers) writers, \(conflicts) conflicts retried")
    }

    @Test("records are numbered densely from 1, filtered by scope, paged by since and limit", arguments: Backend.allCases)
    func records(_ backend: Backend) async throws {
        guard let f = try await backend.open() else { return }
        defer { f.etcd?.stop() }
        let s = try f.store()
        let first = try await s.append(records: [(scope: "ns/a", encode: { Data("a\($0)".utf8) }), (scope: "ns/b", encode: { Data("b\($0)".utf8) })])
        #expect(first.map(\.seq) == [1, 2])
        _ = try await s.append(records: [(scope: "ns/a", encode: { Data("a\($0)".utf8) })])
        #expect(try await s.records(scope: "ns/a", since: 0, limit: 10).map(\.seq) == [1, 3])
        #expect(try await s.records(scope: "ns/a", since: 0, limit: 10).map(\.body) == [Data("a1".utf8), Data("a3".utf8)])
        #expect(try await s.records(scope: nil, since: 1, limit: 10).map(\.seq) == [2, 3])
        #expect(try await s.records(scope: nil, since: 0, limit: 2).map(\.scope) == ["ns/a", "ns/b"])
        #expect(try await s.records(scope: nil, since: 0, limit: 10).map(\.body) == [Data("a1".utf8), Data("b2".utf8), Data("a3".utf8)])
        #expect(try await s.records(scope: "ns/c", since: 0, limit: 10).isEmpty)
        // Appends racing from several clients still get distinct, dense numbers.
        try await withThrowingTaskGroup(of: Void.self) { group in
            for i in 0..<4 {
                let c = try f.store()
                group.addTask { for _ in 0..<5 { _ = try await c.append(records: [(scope: "ns/r\(i)", encode: { Data("\($0)".utf8) })]) } }
            }
            try await group.waitForAll()
        }
        #expect(try await s.records(scope: nil, since: 0, limit: 100).map(\.seq) == Array(1...23))
    }
}

/// Expects `body` to throw a `StoreError` of `code`.
func expectStoreError(_ code: StoreError.Code, sourceLocation: SourceLocation = #_sourceLocation,
                      _ body: () async throws -> Void) async {
    do {
        try await body()
        Issue.record("expected \(code), got no error", sourceLocation: sourceLocation)
    } catch let e as StoreError {
        #expect(e.code == code, "\(e)", sourceLocation: sourceLocation)
    } catch {
        Issue.record("expected \(code), got \(error)", sourceLocation: sourceLocation)
    }
}

@Suite("etcd locations")
struct EtcdLocationTests {
    @Test func parsing() throws {
        let l = try EtcdLocation(parsing: "etcd://10.0.0.1:2379,etcd-b:2379/prod/ampd/")
        #expect(l.endpoints == ["http://10.0.0.1:2379", "http://etcd-b:2379"])
        #expect(l.prefix == "/prod/ampd")
        #expect(try EtcdLocation(parsing: "etcd://h:1").prefix == "/ampd")
        for bad in ["etcd://", "etcd://h", "etcd://h:0", "etcd://:2379", "http://h:2379", "etcd://h:2379,", "etcds://h:2379"] {
            #expect(throws: EtcdError.self, "\(bad)") { try EtcdLocation(parsing: bad) }
        }
    }

    @Test("an endpoint that refuses connections is skipped for the next one; none answering is unavailable, naming each")
    func failover() async throws {
        guard EtcdProcess.available else { return }
        let etcd = EtcdProcess()
        try await etcd.start()
        defer { etcd.stop() }
        let dead = try EtcdProcess.freePort()
        let client = EtcdClient(EtcdLocation(endpoints: ["http://127.0.0.1:\(dead)", "http://127.0.0.1:\(etcd.clientPort)"]))
        #expect(try await client.revision() >= 1)
        let none = EtcdClient(EtcdLocation(endpoints: ["http://127.0.0.1:\(dead)"]))
        await #expect {
            _ = try await none.revision()
        } throws: { e in
            guard case .unavailable(let why) = e as? EtcdError else { return false }
            return why.count == 1 && why[0].contains("127.0.0.1:\(dead)")
        }
    }
}

@Suite("Object store watches (SQLite and etcd)")
struct ObjectStoreWatchTests {
    /// Collects `n` events (or fails after 10 s).
    func take(_ n: Int, from stream: AsyncThrowingStream<StoreEvent, any Error>) async throws -> [StoreEvent] {
        try await withThrowingTaskGroup(of: [StoreEvent]?.self) { group in
            group.addTask {
                var out: [StoreEvent] = []
                for try await e in stream {
                    out.append(e)
                    if out.count == n { break }
                }
                return out
            }
            group.addTask { try await Task.sleep(for: .seconds(10)); return nil }
            let first = try await group.next() ?? nil
            group.cancelAll()
            return try #require(first, "timed out waiting for \(n) events")
        }
    }

    @Test("a watch sees every change after its resourceVersion, in order, typed, filtered by kind and namespace; a deletion carries the last state", arguments: Backend.allCases)
    func changesInOrder(_ backend: Backend) async throws {
        guard let f = try await backend.open() else { return }
        defer { f.etcd?.stop() }
        let s = try f.store()
        let before = try await s.put(kind: "K", namespace: "ns", name: "early", precondition: .none) { _ in Data("early".utf8) }
        let start = try await s.currentResourceVersion()
        let all = s.watch(kind: "K", namespace: nil, after: start)
        let onlyNS = s.watch(kind: "K", namespace: "ns", after: start)
        let a1 = try await s.put(kind: "K", namespace: "ns", name: "a", precondition: .mustNotExist) { _ in Data("a1".utf8) }
        try await s.put(kind: "Other", namespace: "ns", name: "x", precondition: .none) { _ in Data("x".utf8) }
        let a2 = try await s.put(kind: "K", namespace: "ns", name: "a", precondition: .resourceVersion(a1.resourceVersion)) { _ in Data("a2".utf8) }
        let b = try await s.put(kind: "K", namespace: "other", name: "b", precondition: .none) { _ in Data("b".utf8) }
        #expect(try await s.delete(kind: "K", namespace: "ns", name: "a", precondition: .none))
        let events = try await take(4, from: all)
        #expect(events.map(\.type) == [.added, .modified, .added, .deleted])
        #expect(events.map(\.object.name) == ["a", "a", "b", "a"])
        #expect(events.map(\.object.body) == [Data("a1".utf8), Data("a2".utf8), Data("b".utf8), Data("a2".utf8)])
        #expect(events[0].object.resourceVersion == a1.resourceVersion && events[1].object.resourceVersion == a2.resourceVersion)
        #expect(events[2].object.resourceVersion == b.resourceVersion && events[3].object.resourceVersion > b.resourceVersion)
        #expect(try await take(3, from: onlyNS).map(\.type) == [.added, .modified, .deleted])
        // A watch from an earlier resourceVersion replays what came after it.
        let replay = try await take(2, from: s.watch(kind: "K", namespace: "ns", after: before.resourceVersion))
        #expect(replay.map(\.type) == [.added, .modified] && replay.map(\.object.name) == ["a", "a"])
    }

    @Test("a watch from a resourceVersion the store no longer has changes for fails as expired", arguments: Backend.allCases)
    func expired(_ backend: Backend) async throws {
        guard let f = try await backend.open() else { return }
        defer { f.etcd?.stop() }
        let s = try f.store()
        let first = try await s.put(kind: "K", namespace: "ns", name: "a", precondition: .none) { _ in Data() }
        for i in 0..<3 { try await s.put(kind: "K", namespace: "ns", name: "a", precondition: .none) { _ in Data("\(i)".utf8) } }
        let fresh: any ObjectStore
        switch backend {
        case .sqlite:
            fresh = try f.store()   // another process's view: it has no changes from before it opened
        case .etcd:
            let etcd = try #require(s as? EtcdObjectStore)
            try await etcd.client.compact(revision: try await s.currentResourceVersion())
            fresh = s
        }
        var failure: (any Error)?
        do {
            for try await _ in fresh.watch(kind: "K", namespace: nil, after: first.resourceVersion) { break }
        } catch {
            failure = error
        }
        guard case .expired? = (failure as? StoreError)?.code else {
            Issue.record("expected expired, got \(String(describing: failure))")
            return
        }
    }
}
