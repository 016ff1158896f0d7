import AMPDAPI
import AMPDController
import AMPDObservability
import Foundation
import Yams

enum OpenAPIText {
    static var text: String { OpenAPIDocument.text }
}

/// YAML and JSON output of API objects, keys in Kubernetes order.
enum Render {
    static let leadingKeys = ["apiVersion", "kind", "metadata", "name", "namespace", "spec", "status"]

    static func document(_ value: JSONValue, as format: OutputFormat) throws -> String {
        switch format {
        case .json:
            return String(decoding: try JSONCoding.prettyEncoder.encode(value), as: UTF8.self)
        case .yaml, .table:
            return try Yams.serialize(node: node(value)).trimmingCharacters(in: .newlines)
        }
    }

    static func node(_ v: JSONValue) -> Yams.Node {
        switch v {
        case .null: return Yams.Node("null", Tag(.null))
        case .bool(let b): return Yams.Node(b ? "true" : "false", Tag(.bool))
        case .int(let i): return Yams.Node(String(i), Tag(.int))
        case .double(let d): return Yams.Node(String(d), Tag(.float))
        case .string(let s): return Yams.Node(s, Tag(.str), needsQuotes(s) ? .doubleQuoted : .any)
        case .array(let a): return Yams.Node(a.map(node))
        case .object(let o):
            let keys = o.keys.sorted { a, b in
                let ia = leadingKeys.firstIndex(of: a) ?? Int.max, ib = leadingKeys.firstIndex(of: b) ?? Int.max
                return ia != ib ? ia < ib : a < b
            }
            return Yams.Node(keys.map { (Yams.Node($0), node(o[$0]!)) })
        }
    }

    /// Strings that YAML would read back as something else ("True", "1", "null", "") get quotes.
    static func needsQuotes(_ s: String) -> Bool {
        if s.isEmpty { return true }
        if ["true", "false", "yes", "no", "on", "off", "null", "~"].contains(s.lowercased()) { return true }
        return Double(s) != nil || Int(s) != nil
    }
}

/// Human-readable tables.
enum Table {
    static func render(_ rows: [[String]]) -> String {
        guard let first = rows.first else { return "" }
        var widths = Array(repeating: 0, count: first.count)
        for r in rows { for (i, c) in r.enumerated() where i < widths.count { widths[i] = max(widths[i], c.count) } }
        return rows.map { r in
            r.enumerated().map { i, c in i == r.count - 1 ? c : c.padding(toLength: widths[i] + 3, withPad: " ", startingAt: 0) }.joined()
        }.joined(separator: "\n")
    }

    static func age(_ ts: String?) -> String {
        ts.map { AMPDAPI.age(since: $0, now: Date()) } ?? "-"
    }

    /// The printer columns the API's Tables use (kubectl prints the same), ages relative to now.
    static func columns<T>(_ items: [T], _ columns: PrinterColumns<T>, leading: (header: String, cell: (T) -> String)? = nil) -> String {
        var header = columns.columns.map { $0.name.uppercased() }
        if let leading { header.insert(leading.header, at: 0) }
        var rows = [header]
        for item in items {
            var row = zip(columns.columns, columns.cells(item)).map { column, cell -> String in
                switch cell {
                case .string(let s): column.type == "date" ? age(s) : s
                case .int(let i): String(i)
                case .double(let d): String(d)
                case .bool(let b): String(b)
                case .null, .array, .object: "-"
                }
            }
            if let leading { row.insert(leading.cell(item), at: 0) }
            rows.append(row)
        }
        return render(rows)
    }

    static func deployments(_ items: [ServingDeployment]) -> String {
        columns(items, .deployments, leading: ("NAMESPACE", { $0.metadata.namespaceOrDefault }))
    }

    static func nodes(_ items: [AMPDAPI.Node], deployments: [ServingDeployment]) -> String {
        var used: [String: Int] = [:]
        for d in deployments { for a in d.status?.assignments ?? [] { used[a.node, default: 0] += a.accelerators } }
        return columns(items, .nodes(used: used))
    }

    static let decisionHeader = render([["SEQ", "TIME", "DEPLOYMENT", "EVENT", "REASON", "ACTOR", "MESSAGE"]])

    static func decisionRow(_ d: Decision) -> String {
        "\(d.seq)  \(d.ts)  \(d.deployment)  \(d.event)  \(d.reason)  \(d.actor)  \(d.message)"
    }

    static func describe(_ d: ServingDeployment, decisions: [Decision], nodes: [AMPDAPI.Node] = []) -> String {
        var out: [String] = []
        let m = d.metadata
        out.append("Name:               \(m.name)")
        out.append("Namespace:          \(m.namespaceOrDefault)")
        out.append("UID:                \(m.uid ?? "-")")
        out.append("Generation:         \(m.generation ?? 0) (observed \(d.status?.observedGeneration.map(String.init) ?? "-"))")
        out.append("ResourceVersion:    \(m.resourceVersion ?? "-")")
        out.append("Created:            \(m.creationTimestamp ?? "-")")
        if let del = m.deletionTimestamp { out.append("Deleting since:     \(del)") }
        if let l = m.labels, !l.isEmpty { out.append("Labels:             " + l.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ", ")) }
        let src = d.spec.model.source
        out.append("Model:              \(d.spec.model.name) (\(src.path ?? "pip:\(src.pip ?? "?")\(src.file.map { "/\($0)" } ?? "")"), \(d.spec.model.format ?? "gguf"))")
        out.append("SLO:                TTFT \(d.spec.slo.ttftMs) ms per round, TPOT \(d.spec.slo.tpotMs) ms, attainment \(d.spec.slo.attainmentTarget ?? 0.9)")
        let r = d.spec.routing
        out.append("Routing:            \(r?.policy.rawValue ?? "ampd")" + (r?.alpha.map { " α=\($0)" } ?? "") + (r?.beta.map { " β=\($0)" } ?? "")
                   + (r?.reorderWindow.map { " window=\($0)" } ?? "") + (r?.conditionalThresholdTokens.map { " threshold=\($0) tokens" } ?? "")
                   + " onPrefillUnavailable=\(r?.onPrefillUnavailable?.rawValue ?? "aggregate")"
                   + " maxRoundsInFlight=\(r?.maxRoundsInFlight.map(String.init) ?? "unlimited")")
        out.append("Planner:            \(d.spec.planner?.mode.rawValue ?? "off") every \(d.spec.planner?.intervalSeconds ?? 30)s")
        if let p = d.status?.planner {
            func pct(_ x: Double?) -> String { x.map { "\(($0 * 1000).rounded() / 10)%" } ?? "-" }
            out.append("  Last run:         \(p.lastUpdateTime) \(p.outcome)\(p.plan.map { " \($0)" } ?? "")")
            out.append("  Attainment:       predicted \(pct(p.predictedRoundAttainment)) of rounds (\(pct(p.predictedSessionAttainment)) of sessions), observed \(pct(p.observedRoundAttainment)) of rounds"
                       + (p.runningPredictedRoundAttainment.map { "; running plan predicted \(pct($0))" } ?? ""))
            if let c = p.calibration {
                func phase(_ name: String, _ x: CalibrationStatus.Phase) -> String {
                    "\(name) ×\(x.scale) (\(x.samples) steps, \(x.inForce ? "in force" : "profile until \(20)"))"
                        + (x.profileError.map { " error profile \(pct($0))" } ?? "") + (x.calibratedError.map { " calibrated \(pct($0))" } ?? "")
                }
                out.append("  Cost model:       \(c.profile): \(phase("prefill", c.prefill)); \(phase("decode", c.decode))"
                           + (c.kvWork.map { String(format: "; KV export/import %.1f ms + %.4f ms/token (%d, ", $0.overheadSeconds * 1000, $0.secondsPerToken * 1000, $0.samples) + ($0.inForce ? "in force)" : "not yet in force)") } ?? "")
                           + (c.coreSharing.map { "; cores shared ×\($0)" } ?? ""))
            }
            if let s = p.sloShortfall { out.append("  SLO:              \(s)") }
            if let m = p.mismatch { out.append("  Mismatch:         \(m)") }
            if let w = p.workload {
                out.append("  Workload:         \(String(format: "%.3g", w.sessionRate)) sessions/s × \(String(format: "%.2g", w.meanRounds)) rounds, prefill \(Int(w.meanInitialPrefillTokens)) then \(Int(w.meanIncrementalPrefillTokens)) tokens, decode \(Int(w.meanDecodeTokens)), local \(pct(w.localShare)) (from \(w.sources.joined(separator: ", ")))")
            }
            out.append("  Reason:           \(p.reason)")
        }
        if let kv = d.spec.kvPool {
            out.append("KV pool:            \(kv.blockTokens ?? 16) tokens/block, \(kv.capacityPerAgent?.text ?? "-") per agent, TLS \(kv.tls?.mode.rawValue ?? "mutual"), tenant isolation \(kv.tenantIsolation ?? true), encryption \(kv.encryption?.rawValue ?? "-"), lease \(kv.leaseSeconds ?? 120)s, on transfer failure \(kv.onTransferFailure?.rawValue ?? "recompute")")
        }
        // What each agent runs for this deployment, as its last heartbeat reported.
        let inForce = nodes.compactMap { n in n.status.pools?.first { $0.deployment == d.metadata.key }.map { (n.name, $0) } }
        if !inForce.isEmpty {
            out.append("KV pools in force:")
            var prow = [["  NODE", "BLOCK", "CAPACITY", "USED", "ENCRYPTION", "ISOLATION", "LEASE"]]
            for (node, p) in inForce {
                prow.append(["  \(node)", "\(p.blockTokens)", "\(p.capacityBytes >> 20)Mi", "\(p.usedBytes)", p.encryption.rawValue,
                             p.tenantIsolation ? "tenant" : "shared", "\(p.leaseSeconds)s"])
            }
            out.append(render(prow))
        }
        out.append("Pools:")
        var rows = [["  ROLE", "MODE", "TP", "ACCELERATORS", "DESIRED", "PLACED", "READY"]]
        for role in InstanceRole.allCases {
            guard let p = d.pool(role) else { continue }
            let mode = p.autoscale.map { "autoscale \($0.min)-\($0.max)" } ?? "fixed"
            let ps = d.status?.pools[role]
            rows.append(["  \(role.rawValue)", mode, "\(p.tensor)", "\(p.acceleratorsPerInstance)x \(p.acceleratorKind)",
                         "\(d.desiredReplicas(role))", "\(ps?.placed ?? 0)", "\(ps?.ready ?? 0)"])
        }
        out.append(render(rows))
        out.append("Conditions:")
        var crows = [["  TYPE", "STATUS", "REASON", "SINCE", "MESSAGE"]]
        for c in d.status?.conditions ?? [] { crows.append(["  \(c.type)", c.status.rawValue, c.reason, c.lastTransitionTime, c.message]) }
        out.append(render(crows))
        out.append("Placement:")
        var arows = [["  INSTANCE", "ROLE", "NODE", "ACCELERATORS"]]
        for a in d.status?.assignments ?? [] { arows.append(["  \(a.instance)", a.role.rawValue, a.node, "\(a.accelerators)"]) }
        out.append(render(arows))
        out.append("Recent decisions:")
        out.append(decisions.isEmpty ? "  <none>" : decisions.map { "  " + decisionRow($0) }.joined(separator: "\n"))
        return out.joined(separator: "\n")
    }
}
