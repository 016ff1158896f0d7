import AMPDAPI
import AMPDClient
import AMPDTestSupport
import Foundation
import Testing

/// The real `kubectl` (Debian's package) against a real controller, with a kubeconfig
/// `ampd kubeconfig` wrote.
struct Kubectl {
    static let path = "/usr/bin/kubectl"
    static var available: Bool { FileManager.default.isExecutableFile(atPath: path) }
    let kubeconfig: String

    /// Runs kubectl; returns its status and its output (stdout and stderr together).
    func run(_ args: [String], stdin: String? = nil) async throws -> (status: Int32, output: String) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: Self.path)
        p.arguments = ["--kubeconfig", kubeconfig] + args
        let out = Pipe()
        p.standardOutput = out
        p.standardError = out
        if let stdin {
            let inPipe = Pipe()
            p.standardInput = inPipe
            try p.run()
            inPipe.fileHandleForWriting.write(Data(stdin.utf8))
            try inPipe.fileHandleForWriting.close()
        } else {
            try p.run()
        }
        let r = try await waitForExit(p, reading: out)
        return (r.status, r.output)
    }

    /// Runs kubectl and expects it to succeed.
    @discardableResult
    func ok(_ args: [String], stdin: String? = nil, sourceLocation: SourceLocation = #_sourceLocation) async throws -> String {
        let r = try await run(args, stdin: stdin)
        #expect(r.status == 0, "kubectl \(args.joined(separator: " ")): \(r.output)", sourceLocation: sourceLocation)
        return r.output
    }
}

@Suite("kubectl against the controller")
struct KubectlTests {
    @Test("kubectl: api-resources, explain, apply (client- and server-side), get (table, -o yaml, -w, -l), describe, scale, patch, label, delete; refusals by name")
    func kubectlVerbs() async throws {
        guard Kubectl.available else {
            if ProcessInfo.processInfo.environment["CI"] == "true" { Issue.record("kubectl is not installed (CI installs the Debian package)") }
            return
        }
        let ctl = try ControllerProcess()
        try await ctl.start()
        defer { Task { await ctl.shutdown() } }
        let kc = ctl.dataDir.appendingPathComponent("kubeconfig").path
        let (status, wrote) = try await runAmpd(["kubeconfig", "--config", ctl.configPath, "-o", kc])
        #expect(status == 0, "\(wrote)")
        let k = Kubectl(kubeconfig: kc)
        let manifest = try String(contentsOf: Binaries.packageRoot.appendingPathComponent("Manifests/quickstart-cpu.yaml"), encoding: .utf8)
        let client = ctl.client!

        // Discovery and the schema.
        let resources = try await k.ok(["api-resources"])
        #expect(resources.contains("servingdeployments") && resources.contains("ampd.dev/v1alpha1") && resources.contains(" sd "), "\(resources)")
        let explained = try await k.ok(["explain", "servingdeployment.spec.routing"])
        #expect(explained.contains("reorderWindow") && explained.contains("conditional-pd") && explained.contains("policy\t<string> -required-"), "\(explained)")
        #expect(try await k.ok(["version"]).contains("Server Version: v1.32.0-ampd"))

        // Client-side apply: create, unchanged, configured (a merge patch of what changed).
        #expect(try await k.ok(["apply", "-f", "-"], stdin: manifest).contains("servingdeployment.ampd.dev/smollm2 created"))
        #expect(try await k.ok(["apply", "-f", "-"], stdin: manifest).contains("unchanged"))
        let edited = manifest.replacingOccurrences(of: "ttftMs: 2000", with: "ttftMs: 1500")
        #expect(try await k.ok(["apply", "-f", "-"], stdin: edited).contains("configured"))
        var d = try await client.deployment("smollm2")
        #expect(d.spec.slo.ttftMs == 1500 && d.metadata.generation == 2)
        #expect(d.metadata.annotations?["kubectl.kubernetes.io/last-applied-configuration"] != nil)
        // Server-side apply: the applied object is the whole intent; the manager is recorded.
        #expect(try await k.ok(["apply", "--server-side", "-f", "-"], stdin: manifest).contains("serverside-applied"))
        d = try await client.deployment("smollm2")
        #expect(d.spec.slo.ttftMs == 2000)
        #expect(d.metadata.managedFields?.contains { $0.manager == "kubectl" && $0.operation == "Apply" } == true)
        #expect(d.metadata.managedFields?.contains { $0.manager == "kubectl-client-side-apply" && $0.operation == "Update" } == true)
        // A server-side dry run changes nothing.
        _ = try await k.ok(["apply", "--dry-run=server", "-f", "-"], stdin: edited)
        #expect(try await client.deployment("smollm2").spec.slo.ttftMs == 2000)

        // Unknown fields: refused by name (Strict, kubectl's default), a warning (Warn).
        let bogus = manifest.replacingOccurrences(of: "\nspec:\n", with: "\nspec:\n  bogus: 3\n")
        let refused = try await k.run(["apply", "-f", "-"], stdin: bogus)
        #expect(refused.status != 0 && refused.output.contains("spec.bogus: unknown field"), "\(refused.output)")
        let warned = try await k.run(["apply", "--validate=warn", "-f", "-"], stdin: bogus)
        #expect(warned.status == 0 && warned.output.contains("Warning: unknown field \"spec.bogus\""), "\(warned.output)")
        let ignored = try await k.run(["apply", "--validate=false", "-f", "-"], stdin: bogus.replacingOccurrences(of: "tpotMs: 100", with: "tpotMs: 90"))
        #expect(ignored.status == 0 && !ignored.output.contains("Warning"), "\(ignored.output)")
        #expect(try await client.deployment("smollm2").spec.slo.tpotMs == 90)

        // get: the table ampd get prints, YAML, names by label.
        let table = try await k.ok(["get", "servingdeployments"])
        let header = table.split(separator: "\n").first.map { $0.split(separator: " ").map(String.init) } ?? []
        #expect(header == ["NAME", "READY", "PREFILL", "DECODE", "POLICY", "GENERATION", "AGE"], "\(table)")
        #expect(table.contains("smollm2") && table.contains("0/1"), "\(table)")
        #expect(try await k.ok(["get", "sd", "-A"]).contains("NAMESPACE"))
        let yaml = try await k.ok(["get", "sd", "smollm2", "-o", "yaml"])
        #expect(yaml.contains("kind: ServingDeployment") && yaml.contains("reorderWindow: 3"), "\(yaml)")
        #expect(try await k.ok(["label", "sd", "smollm2", "team=blue"]).contains("labeled"))
        #expect(try await k.ok(["get", "sd", "-l", "team=blue", "-o", "name"]).contains("servingdeployment.ampd.dev/smollm2"))
        #expect(try await k.ok(["get", "sd", "-l", "team in (red,green)", "-o", "name"]).isEmpty)

        // get -w: the list, then a row per change.
        async let watched = k.run(["get", "sd", "-w", "--request-timeout=6s"])
        try await Task.sleep(for: .seconds(2))
        _ = try await k.ok(["label", "sd", "smollm2", "tier=gold"])
        let w = try await watched
        #expect(w.output.components(separatedBy: "\n").filter { $0.hasPrefix("smollm2") }.count >= 2, "\(w.output)")

        // A watch with a selector: an object that stops matching is DELETED for it.
        async let selected = k.run(["get", "sd", "-l", "tier=gold", "-w", "--output-watch-events", "--request-timeout=6s"])
        try await Task.sleep(for: .seconds(2))
        _ = try await k.ok(["label", "sd", "smollm2", "tier=silver", "--overwrite"])
        let sel = try await selected
        let events = sel.output.components(separatedBy: "\n").filter { $0.contains("smollm2") }.map { $0.split(separator: " ").first.map(String.init) ?? "" }
        #expect(events == ["ADDED", "DELETED"], "\(sel.output)")

        // describe.
        let described = try await k.ok(["describe", "sd", "smollm2"])
        #expect(described.contains("Name:         smollm2") && described.contains("Policy:") && described.contains("team=blue"), "\(described)")

        // scale: kubectl scale sets the decode pool; the scale subresource's prefill field the other.
        #expect(try await k.ok(["scale", "sd", "smollm2", "--replicas=2"]).contains("scaled"))
        _ = try await k.ok(["patch", "sd", "smollm2", "--subresource=scale", "--type=merge", "-p", #"{"spec":{"prefill":3}}"#])
        d = try await client.deployment("smollm2")
        #expect(d.spec.decode.replicas == 2 && d.spec.prefill?.replicas == 3)
        #expect(try await k.ok(["get", "sd", "smollm2", "--subresource=scale", "-o", "jsonpath={.spec.replicas}"]) == "2")
        let decisions = try await client.decisions(deployment: "default/smollm2").items
        #expect(decisions.contains { $0.reason == "ScaleSubresource" && $0.message.contains("decode") && $0.message.contains("to 2") })

        // patch: merge, JSON; strategic (kubectl's default) refused, naming the alternatives.
        _ = try await k.ok(["patch", "sd", "smollm2", "--type=merge", "-p", #"{"spec":{"slo":{"tpotMs":80}}}"#])
        _ = try await k.ok(["patch", "sd", "smollm2", "--type=json", "-p", #"[{"op":"replace","path":"/spec/slo/ttftMs","value":2500}]"#])
        d = try await client.deployment("smollm2")
        #expect(d.spec.slo.tpotMs == 80 && d.spec.slo.ttftMs == 2500)
        let strategic = try await k.run(["patch", "sd", "smollm2", "-p", #"{"spec":{"slo":{"tpotMs":70}}}"#])
        #expect(strategic.status != 0 && strategic.output.contains("--type merge"), "\(strategic.output)")
        let badValue = try await k.run(["patch", "sd", "smollm2", "--type=merge", "-p", #"{"spec":{"slo":{"tpotMs":"fast"}}}"#])
        #expect(badValue.status != 0 && badValue.output.contains("spec.slo.tpotMs: expected a number"), "\(badValue.output)")
        let badTest = try await k.run(["patch", "sd", "smollm2", "--type=json", "-p", #"[{"op":"test","path":"/spec/slo/ttftMs","value":1}]"#])
        #expect(badTest.status != 0 && badTest.output.contains("test failed"), "\(badTest.output)")
        #expect(try await client.deployment("smollm2").spec.slo.tpotMs == 80)

        // dryRun on the scale subresource changes nothing; Table rows carry what includeObject asks.
        let path = "/apis/ampd.dev/v1alpha1/namespaces/default/servingdeployments/smollm2"
        let (dryStatus, _) = try await client.raw(.PUT, path + "/scale?dryRun=All",
            body: Data(#"{"apiVersion":"autoscaling/v1","kind":"Scale","metadata":{"name":"smollm2"},"spec":{"replicas":5}}"#.utf8))
        #expect(dryStatus == 200)
        #expect(try await client.deployment("smollm2").spec.decode.replicas == 2)
        let rows = try await k.ok(["get", "--raw", "/apis/ampd.dev/v1alpha1/namespaces/default/servingdeployments?includeObject=None"])
        #expect(rows.contains("\"items\""), "without as=Table it is a list: \(rows.prefix(200))")

        // Delete preconditions that do not hold are 409; dry-run deletes change nothing.
        let uid = try await client.deployment("smollm2").metadata.uid ?? ""
        let (pre, preBody) = try await client.raw(.DELETE, path, body: Data(#"{"kind":"DeleteOptions","apiVersion":"v1","preconditions":{"uid":"not-\#(uid)"}}"#.utf8))
        #expect(pre == 409 && String(decoding: preBody, as: UTF8.self).contains("preconditions.uid"))
        let (orphan, orphanBody) = try await client.raw(.DELETE, path, body: Data(#"{"propagationPolicy":"Orphan"}"#.utf8))
        #expect(orphan == 400 && String(decoding: orphanBody, as: UTF8.self).contains("propagationPolicy: Orphan is not supported"))

        // A wrong token.
        let wrong = ctl.dataDir.appendingPathComponent("wrong-kubeconfig").path
        try (try String(contentsOfFile: kc, encoding: .utf8)).replacingOccurrences(of: ctl.client.config.token, with: "nope").write(toFile: wrong, atomically: true, encoding: .utf8)
        let unauthorized = try await Kubectl(kubeconfig: wrong).run(["get", "sd"])
        #expect(unauthorized.status != 0 && unauthorized.output.contains("You must be logged in to the server (unknown bearer token)"), "\(unauthorized.output)")

        // delete: kubectl waits until it is gone (the finalizer lifted once instances are down).
        #expect(try await k.ok(["delete", "sd", "smollm2", "--dry-run=server"]).contains("server dry run"))
        #expect(try await client.deployment("smollm2").metadata.deletionTimestamp == nil)
        #expect(try await k.ok(["delete", "sd", "smollm2", "--timeout=60s"]).contains("deleted"))
        #expect(try await k.ok(["get", "sd"]).contains("No resources found"))
    }
}

@Suite("The chart's CRD")
struct ChartCRDTests {
    @Test("Helm/ampd/crds/servingdeployments.yaml is what ampd crd prints, and kubernetes-validate --strict accepts it")
    func committedCRD() async throws {
        let path = Binaries.packageRoot.appendingPathComponent("Helm/ampd/crds/servingdeployments.yaml")
        let committed = try String(contentsOf: path, encoding: .utf8)
        let (status, printed) = try await runAmpd(["crd"])
        #expect(status == 0)
        #expect(printed == committed, "regenerate with: ampd crd > Helm/ampd/crds/servingdeployments.yaml")
        // kubernetes-validate from PATH (pip installs it; 127: not installed).
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["kubernetes-validate", "--strict", path.path]
        let out = Pipe()
        p.standardOutput = out
        p.standardError = out
        try p.run()
        let r = try await waitForExit(p, reading: out)
        if r.status == 127 {
            if ProcessInfo.processInfo.environment["CI"] == "true" { Issue.record("kubernetes-validate is not installed (CI installs it with pip)") }
            return
        }
        #expect(r.status == 0 && r.output.contains("passed"), "\(r.output)")
    }
}
