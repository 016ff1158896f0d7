import Foundation
import GRDB

/// `ObjectStore` in one SQLite file (WAL, `synchronous=FULL`): what a write returned survives
/// a crash of the process, `kill -9` included.
public final class SQLiteObjectStore: ObjectStore {
    private let db: DatabaseQueue
    public let path: String
    private let hub: WatchHub

    public init(path: String) throws {
        self.path = path
        var config = Configuration()
        config.journalMode = .wal
        config.busyMode = .timeout(5)
        config.prepareDatabase { db in
            try db.execute(sql: "PRAGMA synchronous = FULL")
        }
        do {
            db = try DatabaseQueue(path: path, configuration: config)
            try Self.migrator.migrate(db)
            hub = WatchHub(current: try db.read { db in try Int64.fetchOne(db, sql: "SELECT value FROM counters WHERE name = 'resourceVersion'") ?? 0 })
        } catch {
            throw StoreError(.database, "cannot open store \(path): \(error)")
        }
    }

    static var migrator: DatabaseMigrator {
        var m = DatabaseMigrator()
        m.registerMigration("v1") { db in
            try db.execute(sql: """
                CREATE TABLE objects (
                    kind TEXT NOT NULL, namespace TEXT NOT NULL, name TEXT NOT NULL,
                    resource_version INTEGER NOT NULL, body BLOB NOT NULL,
                    PRIMARY KEY (kind, namespace, name));
                CREATE TABLE counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
                INSERT INTO counters (name, value) VALUES ('resourceVersion', 0);
                CREATE TABLE records (
                    seq INTEGER PRIMARY KEY AUTOINCREMENT, scope TEXT NOT NULL, body BLOB NOT NULL);
                CREATE INDEX records_scope ON records (scope, seq);
                """)
        }
        return m
    }

    public func get(kind: String, namespace: String, name: String) async throws -> StoredObject? {
        try await wrap {
            try await db.read { db in try Self.fetch(db, kind, namespace, name) }
        }
    }

    public func list(kind: String, namespace: String?) async throws -> [StoredObject] {
        try await wrap {
            try await db.read { db in
                let rows: [Row]
                if let namespace {
                    rows = try Row.fetchAll(db, sql: "SELECT * FROM objects WHERE kind = ? AND namespace = ? ORDER BY namespace, name", arguments: [kind, namespace])
                } else {
                    rows = try Row.fetchAll(db, sql: "SELECT * FROM objects WHERE kind = ? ORDER BY namespace, name", arguments: [kind])
                }
                return rows.map(Self.object)
            }
        }
    }

    public func put(kind: String, namespace: String, name: String, precondition: WritePrecondition,
                    encode: @escaping @Sendable (Int64) throws -> Data) async throws -> StoredObject {
        let (object, created) = try await wrap {
            try await db.write { db in
                let existing = try Self.fetch(db, kind, namespace, name)
                try Self.check(precondition, existing: existing, what: "\(kind) \(namespace)/\(name)")
                let rv = try Self.nextResourceVersion(db)
                let body = try encode(rv)
                try db.execute(sql: """
                    INSERT INTO objects (kind, namespace, name, resource_version, body) VALUES (?, ?, ?, ?, ?)
                    ON CONFLICT (kind, namespace, name) DO UPDATE SET resource_version = excluded.resource_version, body = excluded.body
                    """, arguments: [kind, namespace, name, rv, body])
                return (StoredObject(kind: kind, namespace: namespace, name: name, resourceVersion: rv, body: body), existing == nil)
            }
        }
        hub.publish(StoreEvent(type: created ? .added : .modified, object: object))
        return object
    }

    public func delete(kind: String, namespace: String, name: String, precondition: WritePrecondition) async throws -> Bool {
        let deleted: StoredObject? = try await wrap {
            try await db.write { db in
                guard let existing = try Self.fetch(db, kind, namespace, name) else {
                    if precondition == .none { return nil }
                    try Self.check(precondition, existing: nil, what: "\(kind) \(namespace)/\(name)")
                    return nil
                }
                try Self.check(precondition, existing: existing, what: "\(kind) \(namespace)/\(name)")
                var last = existing
                last.resourceVersion = try Self.nextResourceVersion(db)
                try db.execute(sql: "DELETE FROM objects WHERE kind = ? AND namespace = ? AND name = ?", arguments: [kind, namespace, name])
                return last
            }
        }
        guard let deleted else { return false }
        hub.publish(StoreEvent(type: .deleted, object: deleted))
        return true
    }

    public func watch(kind: String, namespace: String?, after resourceVersion: Int64) -> AsyncThrowingStream<StoreEvent, any Error> {
        hub.watch(kind: kind, namespace: namespace, after: resourceVersion)
    }

    public func currentResourceVersion() async throws -> Int64 {
        try await wrap {
            try await db.read { db in try Int64.fetchOne(db, sql: "SELECT value FROM counters WHERE name = 'resourceVersion'") ?? 0 }
        }
    }

    public func append(records: [(scope: String, encode: @Sendable (Int64) throws -> Data)]) async throws -> [StoredRecord] {
        let items = records.map { RecordInput(scope: $0.scope, encode: $0.encode) }
        return try await wrap {
            try await db.write { db in
                var out: [StoredRecord] = []
                let last = try Int64.fetchOne(db, sql: "SELECT seq FROM sqlite_sequence WHERE name = 'records'") ?? 0
                var next = last + 1
                for r in items {
                    let body = try r.encode(next)
                    try db.execute(sql: "INSERT INTO records (seq, scope, body) VALUES (?, ?, ?)", arguments: [next, r.scope, body])
                    out.append(StoredRecord(seq: next, scope: r.scope, body: body))
                    next += 1
                }
                return out
            }
        }
    }

    public func records(scope: String?, since: Int64, limit: Int) async throws -> [StoredRecord] {
        try await wrap {
            try await db.read { db in
                let rows: [Row]
                if let scope {
                    rows = try Row.fetchAll(db, sql: "SELECT * FROM records WHERE scope = ? AND seq > ? ORDER BY seq LIMIT ?", arguments: [scope, since, limit])
                } else {
                    rows = try Row.fetchAll(db, sql: "SELECT * FROM records WHERE seq > ? ORDER BY seq LIMIT ?", arguments: [since, limit])
                }
                return rows.map { StoredRecord(seq: $0["seq"], scope: $0["scope"], body: $0["body"]) }
            }
        }
    }

    // MARK: - Helpers

    private struct RecordInput: Sendable {
        var scope: String
        var encode: @Sendable (Int64) throws -> Data
    }

    private static func fetch(_ db: Database, _ kind: String, _ namespace: String, _ name: String) throws -> StoredObject? {
        try Row.fetchOne(db, sql: "SELECT * FROM objects WHERE kind = ? AND namespace = ? AND name = ?",
                         arguments: [kind, namespace, name]).map(object)
    }

    private static func object(_ row: Row) -> StoredObject {
        StoredObject(kind: row["kind"], namespace: row["namespace"], name: row["name"],
                     resourceVersion: row["resource_version"], body: row["body"])
    }

    private static func check(_ p: WritePrecondition, existing: StoredObject?, what: String) throws {
        switch p {
        case .none: return
        case .mustNotExist:
            if existing != nil { throw StoreError(.alreadyExists, "\(what) already exists") }
        case .mustExist:
            if existing == nil { throw StoreError(.notFound, "\(what) not found") }
        case .resourceVersion(let rv):
            guard let existing else { throw StoreError(.notFound, "\(what) not found") }
            if existing.resourceVersion != rv {
                throw StoreError(.conflict(current: existing.resourceVersion),
                                 "\(what) was modified: you sent resourceVersion \(rv), the current one is \(existing.resourceVersion); read it again and retry")
            }
        }
    }

    private static func nextResourceVersion(_ db: Database) throws -> Int64 {
        try db.execute(sql: "UPDATE counters SET value = value + 1 WHERE name = 'resourceVersion'")
        return try Int64.fetchOne(db, sql: "SELECT value FROM counters WHERE name = 'resourceVersion'") ?? 0
    }

    private func wrap<T>(_ body: () async throws -> T) async throws -> T {
        do {
            return try await body()
        } catch let e as StoreError {
            throw e
        } catch {
            throw StoreError(.database, "store \(path): \(error)")
        }
    }
}
