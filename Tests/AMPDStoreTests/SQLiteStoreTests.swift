import AMPDStore
import Foundation
import Testing

func tempPath() -> String {
    FileManager.default.temporaryDirectory.appendingPathComponent("ampd-store-\(UUID().uuidString).sqlite").path
}

@Suite("SQLite store")
struct SQLiteStoreTests {
    @Test func resourceVersionOnlyGrowsAcrossReopen() async throws {
        let path = tempPath()
        var last: Int64 = 0
        do {
            let s = try SQLiteObjectStore(path: path)
            for i in 0..<5 {
                let o = try await s.put(kind: "K", namespace: "ns", name: "o\(i % 2)", precondition: .none) { rv in Data("\(rv)".utf8) }
                #expect(o.resourceVersion > last)
                last = o.resourceVersion
            }
            try await s.delete(kind: "K", namespace: "ns", name: "o0", precondition: .none)
        }
        let reopened = try SQLiteObjectStore(path: path)
        #expect(try await reopened.currentResourceVersion() == last + 1)
        let o = try await reopened.put(kind: "K", namespace: "ns", name: "o2", precondition: .none) { _ in Data() }
        #expect(o.resourceVersion == last + 2)
        #expect(try await reopened.list(kind: "K", namespace: "ns").map(\.name) == ["o1", "o2"])
    }

    @Test func staleResourceVersionConflicts() async throws {
        let s = try SQLiteObjectStore(path: tempPath())
        let a = try await s.put(kind: "K", namespace: "ns", name: "x", precondition: .mustNotExist) { _ in Data("a".utf8) }
        _ = try await s.put(kind: "K", namespace: "ns", name: "x", precondition: .resourceVersion(a.resourceVersion)) { _ in Data("b".utf8) }
        await #expect(throws: StoreError.self) {
            try await s.put(kind: "K", namespace: "ns", name: "x", precondition: .resourceVersion(a.resourceVersion)) { _ in Data("c".utf8) }
        }
        await #expect(throws: StoreError.self) {
            try await s.put(kind: "K", namespace: "ns", name: "x", precondition: .mustNotExist) { _ in Data() }
        }
        #expect(try await s.get(kind: "K", namespace: "ns", name: "x")?.body == Data("b".utf8))
    }

    @Test func recordsAreSequencedAndFiltered() async throws {
        let s = try SQLiteObjectStore(path: tempPath())
        let first = try await s.append(records: [(scope: "a", encode: { Data("\($0)".utf8) }), (scope: "b", encode: { Data("\($0)".utf8) })])
        #expect(first.map(\.seq) == [1, 2])
        _ = try await s.append(records: [(scope: "a", encode: { Data("\($0)".utf8) })])
        #expect(try await s.records(scope: "a", since: 0, limit: 10).map(\.seq) == [1, 3])
        #expect(try await s.records(scope: nil, since: 1, limit: 10).map(\.seq) == [2, 3])
    }
}
