import AMPDAPI
import AMPDClient
import AMPDController
import AMPDEtcd
import AMPDTestSupport
import Foundation
import Testing

let quickstart = Binaries.packageRoot.appendingPathComponent("Manifests/quickstart-cpu.yaml").path

/// Runs `ampd controller` (its own data directory, plus `args`) expecting it to fail at start:
/// waits up to `seconds` for it to exit, else kills it. Returns whether it exited (rather than
/// being killed or signalled), its status and its output.
func controllerThatShouldFail(_ args: [String], within seconds: TimeInterval) async throws -> (exited: Bool, status: Int32, output: String) {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("ampd-ctl-\(UUID().uuidString)")
    defer { try? FileManager.default.removeItem(at: dir) }
    let p = Process()
    p.executableURL = Binaries.ampd
    p.arguments = ["controller", "--data-dir", dir.path, "--exit-with-parent"] + args
    let out = Pipe()
    p.standardOutput = out
    p.standardError = out
    try p.run()
    let deadline = Date().addingTimeInterval(seconds)
    while p.isRunning && Date() < deadline { try await Task.sleep(for: .milliseconds(100)) }
    if p.isRunning { kill(p.processIdentifier, SIGKILL) }
    let (status, text) = try await waitForExit(p, reading: out)
    return (p.terminationReason == .exit, status, text)
}

/// The controller's arguments for a store backend: none for SQLite (its default); for "etcd",
/// `etcd` started and a key-encryption key. Nil where etcd is not installed (the case skips).
func storeArguments(_ backend: String, etcd: EtcdProcess, prefix: String) async throws -> [String]? {
    guard backend == "etcd" else { return [] }
    guard EtcdProcess.available else { return nil }
    try await etcd.start()
    return ["--store", etcd.url(prefix: prefix), "--ca-kek", try keyEncryptionKeyFile()]
}

@Suite("Controller, as a real process", .serialized)
struct ControllerIntegrationTests {
    @Test("apply, place, scale, kill -9 and restart: nothing accepted is lost (SQLite, and etcd)", arguments: ["sqlite", "etcd"])
    func applyPlaceScaleRestartAfterKill9(_ backend: String) async throws {
        let etcd = EtcdProcess()
        defer { etcd.stop() }
        guard let storeArgs = try await storeArguments(backend, etcd: etcd, prefix: "/controller-test") else { return }
        // Liveness is not what this test is about: a long node grace keeps a test process whose
        // heartbeat task a loaded machine delays from having its nodes declared lost (instances
        // then move, or with no Ready node left, go unplaced).
        let ctl = try ControllerProcess(extraArgs: ["--node-grace-seconds", "300"] + storeArgs)
        try await ctl.start()
        defer { Task { await ctl.shutdown() } }
        #expect(ctl.log().contains(backend == "etcd" ? "etcd://127.0.0.1:\(etcd.clientPort)/controller-test" : "sqlite:"))

        let bootstrap = try ctl.client(role: "node")
        defer { Task { try? await bootstrap.shutdown() } }
        let a = FakeAgentHeartbeat(client: bootstrap, name: "node-a")
        let b = FakeAgentHeartbeat(client: bootstrap, name: "node-b")
        try await a.register()
        try await b.register()
        // The nodes heart-beat every second, as agents do, so that a slow machine running the CLI
        // below does not let them go NotReady (and their instances move) before the kill.
        let beats = Task {
            while !Task.isCancelled {
                _ = try? await a.converge()
                _ = try? await b.converge()
                try? await Task.sleep(for: .seconds(1))
            }
        }
        defer { beats.cancel() }

        var (code, out, err) = try await ctl.cli(["apply", "-f", quickstart])
        #expect(code == 0, "\(err)")
        #expect(out.contains("servingdeployment.ampd.dev/smollm2 created"))
        (code, out, err) = try await ctl.cli(["apply", "-f", quickstart])
        #expect(out.contains("unchanged"), "\(out) \(err)")
        let relabelled = try String(contentsOfFile: quickstart, encoding: .utf8).replacingOccurrences(of: "app: quickstart", with: "app: quickstart-b")
        (code, out, err) = try await ctl.cli(["apply", "-f", "-"], stdin: relabelled)
        #expect(out.contains("configured"), "\(out) \(err)")
        (code, out, err) = try await ctl.cli(["apply", "-f", quickstart])
        #expect(out.contains("configured"), "\(out) \(err)")


        // Placement spreads the two instances over the two nodes; agents report them Running.
        let placed = try await eventually("placement", timeout: .seconds(60)) { () -> ServingDeployment? in
            try await a.converge(); try await b.converge()
            let d = try await ctl.client.deployment("smollm2")
            return d.status?.conditions.first(ofType: "Ready")?.status == .true ? d : nil
        }
        let assignments = try #require(placed.status?.assignments)
        #expect(assignments.count == 2)
        #expect(Set(assignments.map(\.node)) == ["node-a", "node-b"])

        // Scale through the CLI: recorded as a decision naming who did it.
        (code, out, err) = try await ctl.cli(["scale", "smollm2", "--decode", "2"])
        #expect(code == 0, "\(err)")
        let scaled = try await eventually("scale-up placement") { () -> ServingDeployment? in
            let d = try await ctl.client.deployment("smollm2")
            return d.status?.assignments.count == 3 ? d : nil
        }
        #expect(scaled.metadata.generation == 2)
        let decisions = try await ctl.client.decisions(deployment: "default/smollm2").items
        let scaleDecision = try #require(decisions.first { $0.event == "ScaledPool" })
        #expect(scaleDecision.actor == "admin")
        #expect(scaleDecision.fields["to"] == .int(2))
        #expect(decisions.contains { $0.event == "PlacedInstance" })
        (code, out, _) = try await ctl.cli(["decisions", "smollm2"])
        #expect(out.contains("ScaledPool"))
        #expect(ctl.log().contains("\"event\":\"ScaledPool\""))

        // kill -9, restart: everything accepted is still there, resourceVersion keeps growing.
        try await ctl.stop(signal: SIGKILL)
        try await ctl.start()
        let after = try await ctl.client.deployment("smollm2")
        #expect(after.metadata.uid == scaled.metadata.uid)
        #expect(after.spec == scaled.spec)
        let history = (try? await ctl.client.decisions(deployment: "default/smollm2").items.map(\.message)) ?? []
        #expect(Set(after.status?.assignments ?? []) == Set(scaled.status?.assignments ?? []), "decisions: \(history)")
        let nodes = try await ctl.client.nodes()
        #expect(Set(nodes.map(\.name)) == ["node-a", "node-b"])
        var edited = after
        edited.metadata.labels = ["app": "quickstart", "edited": "yes"]
        let updated = try await ctl.client.update(edited)
        #expect(Int64(updated.metadata.resourceVersion!)! > Int64(after.metadata.resourceVersion!)!)
        #expect(try await ctl.client.decisions(deployment: "default/smollm2").items.count >= decisions.count)

        // get -o yaml / json and describe work.
        (code, out, _) = try await ctl.cli(["get", "deployments", "-o", "yaml"])
        #expect(code == 0 && out.contains("kind: ServingDeploymentList"))
        (code, out, _) = try await ctl.cli(["get", "nodes"])
        #expect(code == 0 && out.contains("node-a"))
        (code, out, _) = try await ctl.cli(["describe", "deployment", "smollm2"])
        #expect(code == 0 && out.contains("Conditions:"))
    }

    @Test("hostile input: an alias bomb, a 10 MB body, duplicate keys and a fractional replica count are 4xx naming the problem; the controller keeps answering")
    func hostileInput() async throws {
        let ctl = try ControllerProcess()
        try await ctl.start()
        defer { Task { await ctl.shutdown() } }
        let path = "/apis/ampd.dev/v1alpha1/namespaces/default/servingdeployments"
        var bomb = "a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n"
        for (i, name) in ["b", "c", "d", "e", "f", "g", "h", "i"].enumerated() {
            bomb += "\(name): &\(name) [" + Array(repeating: "*\(i == 0 ? "a" : ["b", "c", "d", "e", "f", "g", "h"][i - 1])", count: 9).joined(separator: ",") + "]\n"
        }
        let (s1, b1) = try await ctl.client.raw(.POST, path, body: Data(bomb.utf8))
        #expect(s1 == 422 && String(decoding: b1, as: UTF8.self).contains("anchors are not accepted"))
        let (s2, _) = try await ctl.client.raw(.POST, path, body: Data(repeating: UInt8(ascii: "a"), count: 10 << 20))
        #expect(s2 == 413)
        let manifest = try String(contentsOfFile: quickstart, encoding: .utf8)
        let (s3, b3) = try await ctl.client.raw(.POST, path, body: Data(#"{"kind":"ServingDeployment","kind":"X"}"#.utf8))
        #expect(s3 == 422 && String(decoding: b3, as: UTF8.self).contains("duplicate key"), "\(String(decoding: b3, as: UTF8.self))")
        let (s4, b4) = try await ctl.client.raw(.POST, path, body: Data(manifest.replacingOccurrences(of: "replicas: 1", with: "replicas: 1.5").utf8))
        #expect(s4 == 422 && String(decoding: b4, as: UTF8.self).contains("replicas: expected an integer, got 1.5"), "\(String(decoding: b4, as: UTF8.self))")
        #expect(try await ctl.cli(["apply", "-f", quickstart]).0 == 0)
    }

    @Test("a controller whose port is taken exits 1 with the reason, at once")
    func portInUse() async throws {
        let ctl = try ControllerProcess()
        try await ctl.start()
        defer { Task { await ctl.shutdown() } }
        let port = try #require(URL(string: try ClientConfiguration.load(URL(fileURLWithPath: ctl.configPath)).server)?.port)
        let (exited, status, text) = try await controllerThatShouldFail(["--port", "\(port)"], within: 20)
        #expect(exited && status == 1 && text.contains("Address already in use"), "\(text)")
    }

    @Test("a controller whose store cannot be opened exits 1 naming it: etcd that does not answer, a malformed --store")
    func storeUnavailable() async throws {
        let dead = try EtcdProcess.freePort()
        for (store, want) in [("etcd://127.0.0.1:\(dead)/x", "no etcd endpoint answered"), ("etcds://127.0.0.1:\(dead)", "client TLS to etcd is not supported yet"),
                              ("mysql://h/db", "expected sqlite:PATH or etcd://")] {
            let (exited, status, text) = try await controllerThatShouldFail(["--port", "0", "--store", store], within: 30)
            #expect(exited && status != 0 && text.contains(want), "\(store): \(text)")
        }
    }

    @Test("--store sqlite:PATH keeps the state in that file, not in the data directory")
    func sqliteStoreElsewhere() async throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("ampd-elsewhere-\(UUID().uuidString).sqlite").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        let ctl = try ControllerProcess(extraArgs: ["--store", "sqlite:\(path)"])
        try await ctl.start()
        defer { Task { await ctl.shutdown() } }
        #expect(try await ctl.cli(["apply", "-f", quickstart]).0 == 0)
        #expect(FileManager.default.fileExists(atPath: path))
        #expect(!FileManager.default.fileExists(atPath: ctl.dataDir.appendingPathComponent("ampd.sqlite").path))
    }

    @Test("watch: the list as ADDED, then MODIFIED and DELETED as they happen; from a resourceVersion, what came after; too old after a restart: 410 Expired; ampd get -w prints them", arguments: ["sqlite", "etcd"])
    func watchDeployments(_ backend: String) async throws {
        let etcd = EtcdProcess()
        defer { etcd.stop() }
        guard let storeArgs = try await storeArguments(backend, etcd: etcd, prefix: "/watch-test") else { return }
        let ctl = try ControllerProcess(extraArgs: storeArgs)
        try await ctl.start()
        defer { Task { await ctl.shutdown() } }
        #expect(try await ctl.cli(["apply", "-f", quickstart]).0 == 0)
        let cliOut = ctl.dataDir.appendingPathComponent("watch.out")
        FileManager.default.createFile(atPath: cliOut.path, contents: nil)
        let watcher = Process()
        watcher.executableURL = Binaries.ampd
        watcher.arguments = ["get", "deployments", "-w", "--config", ctl.configPath]
        watcher.standardOutput = try FileHandle(forWritingTo: cliOut)
        try watcher.run()
        defer { if watcher.isRunning { kill(watcher.processIdentifier, SIGKILL) } }

        var events: [WatchEvent<ServingDeployment>] = []
        let stream = ctl.client.watchDeployments(namespace: "default")
        var iterator = stream.makeAsyncIterator()
        func next() async throws -> WatchEvent<ServingDeployment> {
            let e = try #require(try await iterator.next())
            events.append(e)
            return e
        }
        let first = try await next()
        #expect(first.type == "ADDED" && first.object.metadata.name == "smollm2")
        #expect(try await ctl.cli(["scale", "smollm2", "--decode", "2"]).0 == 0)
        var e = try await next()
        #expect(e.type == "MODIFIED")
        while e.object.spec.decode.replicas != 2 && e.object.status?.scaleOverride?.decode != 2 { e = try await next() }
        #expect(try await ctl.cli(["delete", "deployment", "smollm2"]).0 == 0)
        while e.type != "DELETED" { e = try await next() }
        #expect(e.object.metadata.name == "smollm2")
        let rvs = events.compactMap { Int64($0.object.metadata.resourceVersion ?? "") }
        #expect(rvs == rvs.sorted() && Set(rvs).count == rvs.count, "resourceVersions in order: \(rvs)")

        // From the first event's resourceVersion: the changes after it, the same ones.
        var replayed: [String] = []
        for try await r in ctl.client.watchDeployments(namespace: "default", resourceVersion: first.object.metadata.resourceVersion, timeoutSeconds: 2) {
            replayed.append(r.object.metadata.resourceVersion ?? "")
        }
        #expect(replayed == events.dropFirst().map { $0.object.metadata.resourceVersion ?? "" })

        let printed = try await eventually("ampd get -w lines") { () -> String? in
            let text = (try? String(contentsOf: cliOut, encoding: .utf8)) ?? ""
            return text.contains("DELETED") ? text : nil
        }
        #expect(printed.hasPrefix("EVENT") && printed.contains("ADDED") && printed.contains("MODIFIED") && printed.contains("smollm2"), "\(printed)")
        #expect(try await ctl.cli(["get", "nodes", "-w"]).0 != 0)

        // A resourceVersion the store no longer has changes after: 410 Expired, list again.
        if backend == "sqlite" {
            // SIGTERM with watches open (the CLI's): they end, and the controller exits 0 at once.
            let stopping = ContinuousClock.now
            #expect(try await ctl.stop(signal: SIGTERM) == 0)
            print("controller stopped with a watch open in \(ContinuousClock.now - stopping)")
            try await ctl.start()
        } else {
            try await EtcdClient(try EtcdLocation(parsing: etcd.url(prefix: "/"))).compact(revision: try #require(rvs.last))
        }
        do {
            for try await _ in ctl.client.watchDeployments(namespace: "default", resourceVersion: first.object.metadata.resourceVersion, timeoutSeconds: 5) {}
            Issue.record("expected 410 Expired")
        } catch let e as ClientError {
            #expect(e.status?.code == 410 && e.status?.reason == .expired, "\(e)")
        }
    }

    @Test func conflictingAppliesGet409() async throws {
        let ctl = try ControllerProcess()
        try await ctl.start()
        defer { Task { await ctl.shutdown() } }
        let (code, _, err) = try await ctl.cli(["apply", "-f", quickstart])
        #expect(code == 0, "\(err)")
        let read = try await ctl.client.deployment("smollm2")
        var one = read, two = read
        one.spec.slo.ttftMs = 1000
        two.spec.slo.ttftMs = 3000
        let client = ctl.client!
        let first = one, second = two
        async let r1 = attempt { try await client.update(first) }
        async let r2 = attempt { try await client.update(second) }
        let results = await [r1, r2]
        let ok = results.filter { if case .success = $0 { true } else { false } }
        let conflicts = results.compactMap { r -> ClientError? in if case .failure(let e) = r { e as? ClientError } else { nil } }
        #expect(ok.count == 1)
        #expect(conflicts.count == 1)
        #expect(conflicts.first?.code == 409)
        #expect(conflicts.first?.status?.reason == .conflict)
    }

    @Test func badManifestGets422WithTheFieldPath() async throws {
        let ctl = try ControllerProcess()
        try await ctl.start()
        defer { Task { await ctl.shutdown() } }
        let bad = try String(contentsOfFile: quickstart, encoding: .utf8)
            .replacingOccurrences(of: "  decode:\n    replicas: 1\n    parallelism: {tensor: 1}", with: "  decode:\n    replicas: 1\n    parallelism: {tensor: 3}")
        #expect(bad.contains("tensor: 3"))
        let (code, _, err) = try await ctl.cli(["apply", "-f", "-"], stdin: bad)
        #expect(code != 0)
        #expect(err.contains("spec.decode.parallelism.tensor: must be 1, 2, 4 or 8; got 3"), "\(err)")
        #expect(err.split(separator: "\n").count == 1)

        let (status, body) = try await ctl.client.raw(.PUT, ControllerClient.deploymentPath("default", "smollm2"), body: Data(#"{"apiVersion":"ampd.dev/v1alpha1","kind":"ServingDeployment","metadata":{"name":"smollm2"},"spec":{"bogus":1}}"#.utf8))
        #expect(status == 422)
        let s = try JSONCoding.decoder.decode(APIStatus.self, from: body)
        #expect(s.reason == .invalid)
        #expect(s.details?.causes?.isEmpty == false)

        let (status2, _) = try await ctl.client.raw(.PUT, ControllerClient.deploymentPath("default", "smollm2"), body: Data("{not json".utf8))
        #expect(status2 == 422 || status2 == 400)
        // Nothing was stored by the rejected requests.
        #expect(try await ctl.client.deployments().isEmpty)
    }

    @Test func authenticationAndRolesAreEnforced() async throws {
        let ctl = try ControllerProcess()
        try await ctl.start()
        defer { Task { await ctl.shutdown() } }
        let path = ControllerClient.deploymentPath("default")
        #expect(try await ctl.client.raw(.GET, path, token: "").0 == 401)
        #expect(try await ctl.client.raw(.GET, path, token: "not-a-real-token-at-all").0 == 401)
        let reader = try ctl.token("reader")
        #expect(try await ctl.client.raw(.GET, path, token: reader).0 == 200)
        let manifest = try Data(contentsOf: URL(fileURLWithPath: quickstart))
        #expect(try await ctl.client.raw(.PUT, ControllerClient.deploymentPath("default", "smollm2"), body: manifest, token: reader).0 == 403)
        let node = try ctl.token("node")
        #expect(try await ctl.client.raw(.PUT, ControllerClient.deploymentPath("default", "smollm2"), body: manifest, token: node).0 == 403)
        #expect(try await ctl.client.raw(.GET, "/healthz", token: "").0 == 200)
        #expect(try await ctl.client.raw(.GET, "/metrics", token: "").0 == 401)
        let (mcode, metrics) = try await ctl.client.raw(.GET, "/metrics", token: reader)
        #expect(mcode == 200)
        #expect(String(decoding: metrics, as: UTF8.self).contains("ampd_api_requests_total"))
    }

    @Test func lostNodeInstancesAreReplaced() async throws {
        let ctl = try ControllerProcess(extraArgs: ["--node-grace-seconds", "4"])  // robust to a loaded CI machine
        try await ctl.start()
        defer { Task { await ctl.shutdown() } }
        let bootstrap = try ctl.client(role: "node")
        defer { Task { try? await bootstrap.shutdown() } }
        let a = FakeAgentHeartbeat(client: bootstrap, name: "node-a")
        let b = FakeAgentHeartbeat(client: bootstrap, name: "node-b")
        try await a.register(count: 2)
        try await b.register(count: 2)
        #expect(try await ctl.cli(["apply", "-f", quickstart]).0 == 0)
        let first = try await eventually("placement", timeout: .seconds(60)) { () -> ServingDeployment? in
            try await a.converge(); try await b.converge()
            let d = try await ctl.client.deployment("smollm2")
            return d.status?.assignments.count == 2 ? d : nil
        }
        #expect(first.status?.assignments.contains { $0.node == "node-a" } == true)
        // node-a stops heart-beating; node-b keeps going.
        let moved = try await eventually("re-placement", timeout: .seconds(30)) { () -> ServingDeployment? in
            try await b.converge()
            let d = try await ctl.client.deployment("smollm2")
            return (d.status?.assignments.allSatisfy { $0.node == "node-b" } ?? false) && d.status?.assignments.count == 2 ? d : nil
        }
        #expect(moved.status?.pools.decode.placed == 1)
        let nodes = try await ctl.client.nodes()
        #expect(nodes.first { $0.name == "node-a" }?.status.phase == .notReady)
        let decisions = try await ctl.client.decisions(deployment: "default/smollm2").items
        #expect(decisions.contains { $0.event == "ReplacedInstance" && $0.fields["fromNode"] == .string("node-a") })
    }

    @Test func deleteWaitsUntilInstancesAreTornDown() async throws {
        let ctl = try ControllerProcess()
        try await ctl.start()
        defer { Task { await ctl.shutdown() } }
        let bootstrap = try ctl.client(role: "node")
        defer { Task { try? await bootstrap.shutdown() } }
        let a = FakeAgentHeartbeat(client: bootstrap, name: "node-a")
        try await a.register(count: 4)
        #expect(try await ctl.cli(["apply", "-f", quickstart]).0 == 0)
        let running = try await eventually("running") { () -> [NodeInstance]? in
            let got = try await a.converge()
            return got.instances.count == 2 ? got.instances : nil
        }
        #expect(try await ctl.cli(["delete", "deployment", "smollm2"]).0 == 0)
        // The agent still reports its instances: the object stays, marked deleting.
        try await a.beat(running: running)
        try await Task.sleep(for: .milliseconds(500))
        let deleting = try await ctl.client.deployment("smollm2")
        #expect(deleting.metadata.deletionTimestamp != nil)
        #expect(deleting.metadata.finalizers == [APIGroup.instancesFinalizer])
        // The agent stops what it no longer has: then the object goes.
        try await eventually("finalization") { () -> Bool? in
            try await a.beat(running: try await a.client.assignments(node: "node-a", token: a.credential).instances)
            do {
                _ = try await ctl.client.deployment("smollm2")
                return nil
            } catch let e as ClientError where e.code == 404 {
                return true
            }
        }
        #expect(try await ctl.client.decisions(deployment: "default/smollm2").items.contains { $0.event == "Finalized" })
    }

    @Test func sigtermStopsTheControllerCleanly() async throws {
        let ctl = try ControllerProcess()
        try await ctl.start()
        defer { Task { await ctl.shutdown() } }
        let status = try await ctl.stop(signal: SIGTERM)
        #expect(status == 0, "\(ctl.log())")
        #expect(ctl.log().contains("\"event\":\"Stopped\""))
    }

    @Test func servedOpenAPIDocumentIsTheCommittedOne() async throws {
        let committed = try String(contentsOf: Binaries.packageRoot.appendingPathComponent("Docs/openapi.yaml"), encoding: .utf8)
        #expect(committed.trimmingCharacters(in: .newlines) == OpenAPIDocument.text.trimmingCharacters(in: .newlines),
                "regenerate with: ampd openapi > Docs/openapi.yaml")
        for route in ["/servingdeployments/{name}/scale", "/nodes/{name}/heartbeat", "/nodes/{name}/assignments", "/decisions", "/metrics", "/readyz"] {
            #expect(committed.contains(route), "OpenAPI document lacks \(route)")
        }
    }
}

func attempt<T: Sendable>(_ body: @Sendable () async throws -> T) async -> Result<T, any Error> {
    do { return .success(try await body()) } catch { return .failure(error) }
}

@Suite struct ExitWithParentTests {
    /// A controller started with --exit-with-parent by a parent that is then killed outright
    /// (no chance to stop its children) notices, and shuts down by itself.
    @Test func orphanedProcessShutsDown() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("ampd-orphan-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let pidFile = dir.appendingPathComponent("pid")
        let parent = Process()
        parent.executableURL = URL(fileURLWithPath: "/bin/sh")
        parent.arguments = ["-c", "\"$0\" controller --exit-with-parent --data-dir \"$1\" --port 0 > \"$1/log\" 2>&1 & echo $! > \"$2\"; wait",
                            Binaries.ampd.path, dir.path, pidFile.path]
        try parent.run()
        let pid = try await eventually("controller started") { () -> Int32? in
            guard FileManager.default.fileExists(atPath: dir.appendingPathComponent("client.json").path) else { return nil }
            return (try? String(contentsOf: pidFile, encoding: .utf8)).flatMap { Int32($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
        }
        kill(parent.processIdentifier, SIGKILL)
        parent.waitUntilExit()
        _ = try await eventually("orphaned controller exits", timeout: .seconds(15)) { kill(pid, 0) != 0 ? true : nil }
        let log = (try? String(contentsOf: dir.appendingPathComponent("log"), encoding: .utf8)) ?? ""
        #expect(log.contains("\"event\":\"Stopped\""), "\(log)")
    }
}
