import Foundation

/// A `meta.k8s.io/v1` Table: what `kubectl get` asks for (`Accept: application/json;as=Table;…`)
/// and prints as is. The columns are the ones `ampd get` prints ([PrinterColumns]).
public struct ObjectTable: Codable, Sendable, Hashable {
    public struct Column: Codable, Sendable, Hashable {
        public var name: String
        /// `string`, `integer`, `number`, `boolean` or `date` (kubectl shows a date as an age).
        public var type: String
        public var format: String = ""
        public var description: String
        public var priority: Int = 0
    }

    public struct Row: Codable, Sendable, Hashable {
        public var cells: [JSONValue]
        /// The object's metadata (`PartialObjectMetadata`), or the whole object with
        /// `includeObject=Object`.
        public var object: JSONValue?
    }

    public struct ListMeta: Codable, Sendable, Hashable {
        public var resourceVersion: String?
    }

    public var kind = "Table"
    public var apiVersion = "meta.k8s.io/v1"
    public var metadata: ListMeta
    public var columnDefinitions: [Column]
    public var rows: [Row]

    public init(resourceVersion: String?, columns: [Column], rows: [Row]) {
        self.metadata = ListMeta(resourceVersion: resourceVersion)
        self.columnDefinitions = columns
        self.rows = rows
    }

    /// What a row carries of its object (`includeObject`).
    public enum Include: String, Sendable, CaseIterable {
        case none = "None"
        case metadata = "Metadata"
        case object = "Object"
    }

    /// A table of `items` with `columns`; each row carries what `include` asks for.
    public static func of<T: Encodable>(_ items: [T], columns: PrinterColumns<T>, include: Include,
                                        resourceVersion: String?, now: Date = Date(), metadata: (T) -> ObjectMeta) throws -> ObjectTable {
        let rows = try items.map { item -> Row in
            let object: JSONValue?
            switch include {
            case .none: object = nil
            case .object: object = try JSONValue(encoding: item)
            case .metadata:
                object = .object(["kind": .string("PartialObjectMetadata"), "apiVersion": .string("meta.k8s.io/v1"),
                                  "metadata": try JSONValue(encoding: metadata(item))])
            }
            // Dates go out as ages, as the Kubernetes API server renders them: kubectl prints cells as given.
            let cells = zip(columns.columns, columns.cells(item)).map { column, cell -> JSONValue in
                guard column.type == "date", case .string(let ts) = cell else { return cell }
                return .string(age(since: ts, now: now))
            }
            return Row(cells: cells, object: object)
        }
        return ObjectTable(resourceVersion: resourceVersion, columns: columns.columns, rows: rows)
    }
}

/// How long ago an RFC 3339 time was, as kubectl shows ages (`45s`, `12m`, `5h`, `3d`); `-`
/// when it does not parse.
public func age(since timestamp: String, now: Date) -> String {
    let date = (try? Date(timestamp, strategy: .iso8601.year().month().day().time(includingFractionalSeconds: true)))
        ?? (try? Date(timestamp, strategy: .iso8601))
    guard let date else { return "-" }
    let s = Int(now.timeIntervalSince(date))
    if s < 120 { return "\(max(s, 0))s" }
    if s < 7200 { return "\(s / 60)m" }
    if s < 172_800 { return "\(s / 3600)h" }
    return "\(s / 86400)d"
}

/// The columns a resource is listed with, and each object's cells: one definition for
/// `ampd get` and for the Tables `kubectl get` prints.
public struct PrinterColumns<T>: Sendable {
    public let columns: [ObjectTable.Column]
    public let cells: @Sendable (T) -> [JSONValue]
}

extension PrinterColumns where T == ServingDeployment {
    public static let deployments = PrinterColumns(columns: [
        .init(name: "Name", type: "string", format: "name", description: "metadata.name"),
        .init(name: "Ready", type: "string", description: "The Ready condition (its reason when not True)"),
        .init(name: "Prefill", type: "string", description: "Ready/desired prefill instances (- with routing.policy colocated)"),
        .init(name: "Decode", type: "string", description: "Ready/desired decode instances"),
        .init(name: "Policy", type: "string", description: "spec.routing.policy"),
        .init(name: "Generation", type: "integer", description: "metadata.generation"),
        .init(name: "Age", type: "date", description: "metadata.creationTimestamp"),
    ], cells: { d in
        let s = d.status
        let ready = s?.conditions.first(ofType: ConditionType.ready)
        return [
            .string(d.metadata.name + (d.metadata.isDeleting ? " (deleting)" : "")),
            .string(ready.map { $0.status == .true ? "True" : "False (\($0.reason))" } ?? "Unknown"),
            .string(d.spec.prefill == nil ? "-" : "\(s?.pools.prefill.ready ?? 0)/\(d.desiredReplicas(.prefill))"),
            .string("\(s?.pools.decode.ready ?? 0)/\(d.desiredReplicas(.decode))"),
            .string(d.spec.routing?.policy.rawValue ?? "ampd"),
            .int(d.metadata.generation ?? 0),
            d.metadata.creationTimestamp.map(JSONValue.string) ?? .null,
        ]
    })
}

extension PrinterColumns where T == Node {
    /// `used` counts the accelerators placed on each node (from the deployments' assignments).
    public static func nodes(used: [String: Int]) -> PrinterColumns {
        PrinterColumns(columns: [
            .init(name: "Name", type: "string", format: "name", description: "metadata.name"),
            .init(name: "Phase", type: "string", description: "status.phase"),
            .init(name: "Accelerator", type: "string", description: "spec.capacity.accelerator"),
            .init(name: "Used/Capacity", type: "string", description: "Accelerators placed on the node / its capacity"),
            .init(name: "Instances", type: "integer", description: "Instances the node reports"),
            .init(name: "Queue", type: "integer", description: "Requests queued on the node"),
            .init(name: "Last-Heartbeat", type: "date", description: "status.lastHeartbeatTime"),
        ], cells: { n in
            [.string(n.name), .string(n.status.phase.rawValue), .string(n.spec.capacity.accelerator),
             .string("\(used[n.name] ?? 0)/\(n.spec.capacity.count)"), .int(Int64(n.status.instances.count)),
             .int(Int64(n.status.load.queueLength)), n.status.lastHeartbeatTime.map(JSONValue.string) ?? .null]
        })
    }
}
