import AMPDAPI
import Foundation
import Testing

private func json(_ text: String) throws -> JSONValue {
    try JSONCoding.decoder.decode(JSONValue.self, from: Data(text.utf8))
}

@Suite("Patches: RFC 7386 merge and RFC 6902 JSON patch")
struct PatchTests {
    @Test("merge patch: objects merge, null deletes, lists and scalars replace (the RFC's examples)")
    func mergePatch() throws {
        let target = try json(#"{"title":"Goodbye!","author":{"givenName":"John","familyName":"Doe"},"tags":["example","sample"],"content":"x"}"#)
        let patch = try json(#"{"title":"Hello!","phoneNumber":"+01-123-456-7890","author":{"familyName":null},"tags":["example"]}"#)
        let want = try json(#"{"title":"Hello!","author":{"givenName":"John"},"tags":["example"],"content":"x","phoneNumber":"+01-123-456-7890"}"#)
        #expect(MergePatch.apply(patch, to: target) == want)
        #expect(MergePatch.apply(try json(#"{"a":{"b":"c"}}"#), to: try json(#"{"a":[1]}"#)) == (try json(#"{"a":{"b":"c"}}"#)))
        #expect(MergePatch.apply(try json(#"["c"]"#), to: try json(#"{"a":"b"}"#)) == (try json(#"["c"]"#)))
    }

    @Test("JSON patch: add, remove, replace, move, copy, test; a failed test or a missing path names the operation")
    func jsonPatch() throws {
        let doc = try json(#"{"spec":{"slo":{"ttftMs":2000},"list":[1,2,3]},"a/b":{"~x":1}}"#)
        let ops = try json(#"""
        [{"op":"test","path":"/spec/slo/ttftMs","value":2000},
         {"op":"replace","path":"/spec/slo/ttftMs","value":1500},
         {"op":"add","path":"/spec/slo/tpotMs","value":50},
         {"op":"add","path":"/spec/list/1","value":9},
         {"op":"add","path":"/spec/list/-","value":4},
         {"op":"remove","path":"/spec/list/0"},
         {"op":"copy","from":"/spec/slo/tpotMs","path":"/copied"},
         {"op":"move","from":"/a~1b/~0x","path":"/moved"}]
        """#)
        let out = try JSONPatch.apply(ops, to: doc)
        #expect(out == (try json(#"{"spec":{"slo":{"ttftMs":1500,"tpotMs":50},"list":[9,2,3,4]},"a/b":{},"copied":50,"moved":1}"#)))

        #expect(throws: PatchError("[1].path", "test failed: /spec/slo/ttftMs is 2000, not 1")) {
            try JSONPatch.apply(try json(#"[{"op":"add","path":"/x","value":1},{"op":"test","path":"/spec/slo/ttftMs","value":1}]"#), to: doc)
        }
        #expect(throws: PatchError("[0].path", "/spec/nope does not exist")) {
            try JSONPatch.apply(try json(#"[{"op":"replace","path":"/spec/nope","value":1}]"#), to: doc)
        }
        #expect(throws: PatchError("[0].op", "unknown operation \"merge\"; expected add, remove, replace, move, copy or test")) {
            try JSONPatch.apply(try json(#"[{"op":"merge","path":"/spec"}]"#), to: doc)
        }
        #expect(throws: PatchError("[0].value", "required for add")) {
            try JSONPatch.apply(try json(#"[{"op":"add","path":"/spec/x"}]"#), to: doc)
        }
        #expect(throws: PatchError("[0].path", "index 7 is outside a list of 3")) {
            try JSONPatch.apply(try json(#"[{"op":"add","path":"/spec/list/7","value":1}]"#), to: doc)
        }
        #expect(PatchType(contentType: "application/merge-patch+json; charset=utf-8") == .merge)
        #expect(PatchType(contentType: "application/json") == nil)
    }
}

@Suite("Selectors")
struct SelectorTests {
    @Test("label selectors: equality, inequality, set membership, existence; a bad key is refused by name")
    func labels() throws {
        let l = ["app": "chat", "tier": "gold", "team": "blue"]
        func m(_ s: String) throws -> Bool { try LabelSelector(parsing: s).matches(l) }
        #expect(try m("app=chat") && m("app==chat") && m("app!=web") && m("tier in (gold, silver)") && m("tier notin (bronze)"))
        #expect(try m("team") && m("!owner") && m("app=chat,tier=gold") && m(""))
        #expect(try !m("app=web") && !m("tier in (bronze)") && !m("owner") && !m("!team") && !m("app=chat,tier=silver"))
        #expect(try !LabelSelector(parsing: "x!=1").matches(["x": "1"]) && LabelSelector(parsing: "x!=1").matches(nil))
        #expect(throws: InvalidParameter.self) { try LabelSelector(parsing: "a b=c") }
        #expect(throws: InvalidParameter.self) { try LabelSelector(parsing: "tier in gold") }
    }

    @Test("field selectors: metadata.name and metadata.namespace; any other field refused, naming the supported ones")
    func fields() throws {
        var meta = ObjectMeta(name: "smollm2", namespace: "prod")
        #expect(try FieldSelector(parsing: "metadata.name=smollm2").matches(meta))
        #expect(try FieldSelector(parsing: "metadata.name=smollm2,metadata.namespace!=dev").matches(meta))
        #expect(try !FieldSelector(parsing: "metadata.namespace==dev").matches(meta))
        meta.namespace = nil
        #expect(try FieldSelector(parsing: "metadata.namespace=default").matches(meta))
        #expect(throws: InvalidParameter("fieldSelector", "\"spec.model.name\" is not a supported field selector; supported: metadata.name, metadata.namespace")) {
            try FieldSelector(parsing: "spec.model.name=x")
        }
    }
}

@Suite("Tables and the scale subresource")
struct TableAndScaleTests {
    @Test("a deployment's Table row: the columns ampd get prints, the age rendered as kubectl shows it, metadata as PartialObjectMetadata")
    func table() throws {
        let d = try ServingDeploymentAdmission.admit(try DocumentReader.read(Data(validManifest.utf8))[0].value)
        var created = d
        created.metadata.creationTimestamp = "2026-12-03T10:00:00Z"
        created.metadata.generation = 2
        let now = try Date("2026-12-03T10:05:00Z", strategy: .iso8601)
        let t = try ObjectTable.of([created], columns: .deployments, include: .metadata, resourceVersion: "7", now: now) { $0.metadata }
        #expect(t.columnDefinitions.map(\.name) == ["Name", "Ready", "Prefill", "Decode", "Policy", "Generation", "Age"])
        #expect(t.rows[0].cells == [.string("demo"), .string("Unknown"), .string("0/1"), .string("0/1"), .string("ampd"), .int(2), .string("5m")])
        #expect(t.rows[0].object?["kind"] == .string("PartialObjectMetadata"))
        #expect(t.rows[0].object?["metadata"]?["name"] == .string("demo"))
        #expect(try ObjectTable.of([created], columns: .deployments, include: .none, resourceVersion: nil) { $0.metadata }.rows[0].object == nil)
        #expect(age(since: "not a time", now: now) == "-")
        #expect(age(since: "2026-12-01T10:05:00.000Z", now: now) == "2d")
    }

    @Test("spec.replicas is the decode pool; given with a different spec.decode it is refused by name")
    func scaleCounts() throws {
        #expect(try ScaleSpec(replicas: 3).counts() == ScaleCounts(prefill: nil, decode: 3))
        #expect(try ScaleSpec(prefill: 2, decode: 4).counts() == ScaleCounts(prefill: 2, decode: 4))
        #expect(try ScaleSpec(replicas: 4, decode: 4).counts() == ScaleCounts(prefill: nil, decode: 4))
        do {
            _ = try ScaleSpec(replicas: 2, decode: 4).counts()
            Issue.record("accepted replicas 2 with decode 4")
        } catch {
            #expect(error.causes.map(\.field) == ["spec.replicas"])
        }
    }
}

@Suite("The ServingDeployment schema against the types and the validator")
struct SchemaAgreementTests {
    /// Every field a ServingDeployment's metadata and spec can carry, each set (so that encoding
    /// shows every key the types know).
    static var everyField: ServingDeployment {
        var m = ObjectMeta(name: "demo", namespace: "default", labels: ["a": "b"])
        m.annotations = ["c": "d"]
        m.uid = "u"
        m.generation = 1
        m.resourceVersion = "1"
        m.creationTimestamp = "2026-12-03T10:00:00Z"
        m.deletionTimestamp = "2026-12-03T10:00:00Z"
        m.finalizers = ["f"]
        m.managedFields = [ManagedFieldsEntry(manager: "m", operation: "Update", apiVersion: APIGroup.apiVersion, time: "t", subresource: "scale")]
        let pool = PoolSpec(replicas: 1, autoscale: AutoscaleSpec(min: 1, max: 2), parallelism: ParallelismSpec(tensor: 1),
                            resources: ResourceSpec(accelerator: "cpu", count: 1))
        let spec = ServingDeploymentSpec(
            model: ModelSpec(name: "m", source: ModelSource(path: "/m", pip: "p", file: "f"), format: "gguf"),
            slo: SLOSpec(ttftMs: 1, tpotMs: 1, attainmentTarget: 0.9), prefill: pool, decode: pool,
            routing: RoutingSpec(policy: .ampd, alpha: 1, beta: 1, reorderWindow: 1, conditionalThresholdTokens: 1, onPrefillUnavailable: .fail, maxRoundsInFlight: 1),
            planner: PlannerSpec(mode: .auto, intervalSeconds: 30),
            kvPool: KVPoolSpec(blockTokens: 16, capacityPerAgent: Quantity(parsing: "1Gi"), tls: KVPoolTLSSpec(mode: .mutual, allowInsecure: false),
                               tenantIsolation: true, encryption: KVEncryption.none, onTransferFailure: .fail, leaseSeconds: 1))
        return ServingDeployment(metadata: m, spec: spec)
    }

    static func keyPaths(_ v: JSONValue, _ prefix: String, maps: Set<String>) -> [String] {
        switch v {
        case .object(let o):
            if maps.contains(prefix) { return o.values.flatMap { keyPaths($0, "\(prefix).{}", maps: maps) } }
            return o.flatMap { k, child -> [String] in
                let p = prefix.isEmpty ? k : "\(prefix).\(k)"
                return [p] + keyPaths(child, p, maps: maps)
            }
        case .array(let a): return a.flatMap { keyPaths($0, "\(prefix)[]", maps: maps) }
        default: return []
        }
    }

    @Test("the schema describes exactly the metadata and spec fields the types decode")
    func sameFields() throws {
        let encoded = try JSONValue(encoding: Self.everyField)
        let typed = Set(Self.keyPaths(encoded, "", maps: ["metadata.labels", "metadata.annotations", "metadata.managedFields[].fieldsV1"]))
            .filter { $0.hasPrefix("metadata") || $0.hasPrefix("spec") }
        // fieldsV1 is an opaque set; the schema leaves it out.
        let described = Set(ServingDeployment.schema.paths()).filter { ($0.hasPrefix("metadata") || $0.hasPrefix("spec")) }
        #expect(typed.subtracting(described).filter { !$0.contains("fieldsType") && !$0.contains("fieldsV1") }.sorted() == [], "fields the schema does not describe")
        #expect(described.subtracting(typed).sorted() == [], "fields the schema describes that the types do not have")
    }

    @Test("every enum in the schema lists the type's cases")
    func enums() throws {
        let s = ServingDeployment.schema
        #expect(s.at("spec.routing.policy")?.enumValues == RoutingPolicy.allCases.map { .string($0.rawValue) })
        #expect(s.at("spec.routing.onPrefillUnavailable")?.enumValues == PrefillUnavailableAction.allCases.map { .string($0.rawValue) })
        #expect(s.at("spec.planner.mode")?.enumValues == PlannerMode.allCases.map { .string($0.rawValue) })
        #expect(s.at("spec.kvPool.encryption")?.enumValues == KVEncryption.allCases.map { .string($0.rawValue) })
        #expect(s.at("spec.kvPool.onTransferFailure")?.enumValues == TransferFailureAction.allCases.map { .string($0.rawValue) })
        #expect(s.at("spec.decode.parallelism.tensor")?.enumValues == ServingDeploymentAdmission.tensorDegrees.map { .int(Int64($0)) })
    }

    /// `doc` with the value at a dotted path set (intermediate objects made; `.null` removes).
    static func setting(_ doc: JSONValue, _ parts: ArraySlice<Substring>, _ v: JSONValue) -> JSONValue {
        guard let k = parts.first.map(String.init) else { return v }
        var o: [String: JSONValue] = [:]
        if case .object(let x) = doc { o = x }
        let next = setting(o[k] ?? .object([:]), parts.dropFirst(), v)
        o[k] = next == .null ? nil : next
        return .object(o)
    }

    /// Each numeric range in the schema: just outside is refused by the validator (so kubectl's
    /// client-side check never lets through what the server refuses), and the bounds are
    /// accepted where no other rule applies.
    @Test("every numeric range the schema states is the validator's")
    func ranges() throws {
        let base = try DocumentReader.read(Data(validManifest.utf8))[0].value
        func numericPaths(_ s: Schema, _ prefix: String) -> [(String, Schema)] {
            s.properties.flatMap { k, v -> [(String, Schema)] in
                let p = "\(prefix).\(k)"
                return ((v.minimum != nil || v.maximum != nil) ? [(p, v)] : []) + numericPaths(v, p)
            }
        }
        var checked = 0
        for (path, s) in numericPaths(ServingDeployment.schema.at("spec")!, "spec") {
            // A manifest in which the field applies.
            var doc = base
            func set(_ p: String, _ v: JSONValue) { doc = Self.setting(doc, p.split(separator: ".")[...], v) }
            if path.hasSuffix("conditionalThresholdTokens") { set("spec.routing", .object(["policy": .string("conditional-pd")])) }
            if path == "spec.decode.replicas" { set("spec.decode.autoscale", .null); set("spec.planner.mode", .string("off")) }
            if path.hasPrefix("spec.prefill.autoscale") { set("spec.prefill.replicas", .null) }
            if path.hasSuffix("resources.count") { set(path.replacingOccurrences(of: ".count", with: ".accelerator"), .string("cpu")) }
            if path.contains(".autoscale.") { set(path.components(separatedBy: ".autoscale.")[0] + ".autoscale", .object(["min": .int(1), "max": .int(1024)])) }
            let integer = s.type == "integer"
            func admitted(_ x: Double) -> Bool {
                let d = Self.setting(doc, path.split(separator: ".")[...], integer ? .int(Int64(x)) : .double(x))
                return (try? ServingDeploymentAdmission.admit(d)) != nil
            }
            // The schema's own check (what a Kubernetes API server would run) says the same.
            func schemaRefuses(_ x: Double) -> Bool {
                let d = Self.setting(doc, path.split(separator: ".")[...], integer ? .int(Int64(x)) : .double(x))
                return ServingDeployment.schema.problems(in: d).contains { $0.field == path }
            }
            if let max = s.maximum {
                #expect(!admitted(integer ? max + 1 : max + max * 1e-6), "\(path) above \(max) accepted")
                #expect(schemaRefuses(integer ? max + 1 : max + max * 1e-6) && !schemaRefuses(max), "\(path): the schema's check")
                #expect(admitted(max), "\(path) = \(max) refused")
            }
            if let min = s.minimum {
                #expect(schemaRefuses(s.exclusiveMinimum ? min : min - 1), "\(path): the schema's check at its minimum")
                #expect(!admitted(s.exclusiveMinimum ? min : min - 1), "\(path) at or below \(min) accepted")
                // The decode pool's floor is 1 (the shared pool schema says 0, the prefill pool's);
                // an autoscaled pool's max is at least 1.
                let floorOne = path.hasPrefix("spec.decode") || path.hasSuffix("autoscale.max")
                if !s.exclusiveMinimum && !floorOne { #expect(admitted(min), "\(path) = \(min) refused") }
            }
            checked += 1
        }
        #expect(checked >= 15, "only \(checked) ranges checked")
    }
}

@Suite("The ServingDeployment CRD")
struct CRDTests {
    static var crdSchema: JSONValue? { ServingDeploymentCRD.object["spec"]?["versions"].flatMap { if case .array(let a) = $0 { a.first } else { nil } }?["schema"]?["openAPIV3Schema"] }

    @Test("structural: every node typed, metadata left to the API server; scale addresses the decode pool")
    func structural() throws {
        #expect(ServingDeployment.schema.structuralProblems() == [])
        let schema = try #require(Self.crdSchema)
        #expect(schema["properties"]?["metadata"] == .object(["type": .string("object")]))
        #expect(schema["properties"]?["spec"] == ServingDeployment.schema.json["properties"]?["spec"])
        let version = ServingDeploymentCRD.object["spec"]?["versions"].flatMap { if case .array(let a) = $0 { a.first } else { nil } }
        #expect(version?["subresources"]?["scale"]?["specReplicasPath"] == .string(".spec.decode.replicas"))
        #expect(version?["subresources"]?["status"] == .object([:]))
    }

    @Test("every example manifest passes the schema's check; a bad one is refused naming each field")
    func manifests() throws {
        let dir = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Manifests")
        var seen = 0
        for file in try FileManager.default.contentsOfDirectory(atPath: dir.path) where file.hasSuffix(".yaml") {
            for doc in try DocumentReader.read(try Data(contentsOf: dir.appendingPathComponent(file))) where doc.value["kind"] == .string(ServingDeployment.kind) {
                #expect(ServingDeployment.schema.problems(in: doc.value) == [], "\(file)")
                seen += 1
            }
        }
        #expect(seen >= 3)
        let bad = try JSONCoding.decoder.decode(JSONValue.self, from: Data(#"""
        {"apiVersion":"ampd.dev/v1alpha1","kind":"ServingDeployment","metadata":{"name":"x"},
         "spec":{"model":{"name":"m","source":{"pip":"p"}},"slo":{"ttftMs":"fast","tpotMs":0},
                 "decode":{"replicas":1,"parallelism":{"tensor":3}},"routing":{"policy":"fastest"},"bogus":1}}
        """#.utf8))
        #expect(ServingDeployment.schema.problems(in: bad).map(\.field) == [
            "spec.bogus", "spec.decode.parallelism.tensor", "spec.routing.policy", "spec.slo.tpotMs", "spec.slo.ttftMs",
        ])
    }
}
