import AMPDAPI
import AMPDAutoscaling
import AMPDPolicy
import AMPDObservability
import AMPDPKI
import AMPDStore
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore

/// The controller's REST API, Kubernetes-shaped:
/// `/apis/ampd.dev/v1alpha1/namespaces/{ns}/servingdeployments/{name}[/status|/scale]`,
/// `/apis/ampd.dev/v1alpha1/nodes/{name}[/heartbeat|/assignments]`, `/apis/ampd.dev/v1alpha1/decisions`,
/// plus `/healthz`, `/readyz`, `/metrics` and `/openapi.yaml`. Every error is a `Status` body.
struct APIServer: Sendable {
    let repo: Repository
    let registry: NodeRegistry
    let board: AssignmentBoard
    let decisions: DecisionLog
    let queue: WorkQueue
    let auth: Authenticator
    let metrics: MetricsRegistry
    let logger: Logger
    let ready: ReadinessFlag
    let issuer: CertificateIssuer
    let reports: WorkloadReports
    let calibrations: Calibrations
    /// Opens when the controller begins to shut down: open watches end then.
    let shuttingDown = Latch()

    static let prefix = "/apis/\(APIGroup.group)/\(APIGroup.version)"
    static let maxBody = 1 << 20

    typealias Context = BasicRequestContext
    typealias Handler = @Sendable (Request, Context, Identity) async throws -> Response

    func router() -> Router<Context> {
        let r = Router(context: Context.self)
        r.get("/healthz") { _, _ in Response(status: .ok, body: .init(byteBuffer: ByteBuffer(string: "ok\n"))) }
        r.get("/readyz") { _, _ in
            await ready.isReady
                ? Response(status: .ok, body: .init(byteBuffer: ByteBuffer(string: "ok\n")))
                : Self.error(APIStatus(reason: .serviceUnavailable, code: 503, message: "controller is starting"))
        }
        r.get("/openapi.yaml") { _, _ in
            var h = HTTPFields()
            h[.contentType] = "application/yaml"
            return Response(status: .ok, headers: h, body: .init(byteBuffer: ByteBuffer(string: OpenAPIDocument.text)))
        }
        on(r, "/metrics", .get, "metrics", [.admin, .reader]) { _, _, _ in
            var h = HTTPFields()
            h[.contentType] = "text/plain; version=0.0.4"
            return Response(status: .ok, headers: h, body: .init(byteBuffer: ByteBuffer(string: metrics.render())))
        }

        kubernetesRoutes(r)

        let ns = "\(Self.prefix)/namespaces/:namespace/servingdeployments"
        on(r, "\(Self.prefix)/servingdeployments", .get, "listAllDeployments", [.admin, .reader]) { req, _, _ in
            try await listDeployments(req, namespace: nil)
        }
        on(r, ns, .get, "listDeployments", [.admin, .reader]) { req, ctx, _ in
            try await listDeployments(req, namespace: try ctx.parameters.require("namespace"))
        }
        on(r, ns, .post, "createDeployment", [.admin]) { req, ctx, id in
            try await apply(req, ctx, id, name: nil, create: true)
        }
        on(r, "\(ns)/:name", .get, "getDeployment", [.admin, .reader]) { req, ctx, _ in
            let d = try await existing(ctx)
            return Self.wantsTable(req) ? Self.json(try Self.deploymentTable([d], req, resourceVersion: d.metadata.resourceVersion)) : Self.json(d)
        }
        on(r, "\(ns)/:name", .put, "applyDeployment", [.admin]) { req, ctx, id in
            try await apply(req, ctx, id, name: try ctx.parameters.require("name"), create: false)
        }
        on(r, "\(ns)/:name", .patch, "patchDeployment", [.admin]) { req, ctx, id in
            try await patch(req, ctx, id)
        }
        on(r, "\(ns)/:name", .delete, "deleteDeployment", [.admin]) { req, ctx, id in
            try await delete(req, ctx, id)
        }
        on(r, "\(ns)/:name/status", .get, "getDeploymentStatus", [.admin, .reader]) { _, ctx, _ in
            Self.json(try await existing(ctx))
        }
        on(r, "\(ns)/:name/scale", .get, "getScale", [.admin, .reader]) { _, ctx, _ in
            Self.json(Self.scale(of: try await existing(ctx)))
        }
        on(r, "\(ns)/:name/scale", .put, "putScale", [.admin]) { req, ctx, id in
            let s = try await Self.decodeBody(Scale.self, req, kind: Scale.kind)
            return try await scaleTo(s, ctx, id, options: try WriteOptions(req, id))
        }
        on(r, "\(ns)/:name/scale", .patch, "patchScale", [.admin]) { req, ctx, id in
            let options = try WriteOptions(req, id)
            let type = try Self.patchType(req, allowed: [.merge, .json])
            let body = try await Self.body(req)
            let original = Self.scale(of: try await existing(ctx))
            let patched = try Self.applyPatch(type, body, to: try JSONValue(encoding: original))
            var s: Scale
            do throws(InvalidObjectError) { s = try StrictDecoder.decode(Scale.self, from: patched, kind: Scale.kind) } catch { throw APIStatus.invalid(error) }
            // spec.replicas and spec.decode are one pool: the one the patch changed decides.
            if s.spec.replicas != original.spec.replicas && s.spec.decode == original.spec.decode {
                s.spec.decode = s.spec.replicas
            } else if s.spec.decode != original.spec.decode && s.spec.replicas == original.spec.replicas {
                s.spec.replicas = s.spec.decode
            }
            return try await scaleTo(s, ctx, id, options: options)
        }

        on(r, "\(ns)/:name/profile", .get, "getCalibratedProfile", [.admin, .reader]) { _, ctx, _ in
            let d = try await existing(ctx)
            let catalog: ProfileCatalog
            do { catalog = try LiveCalibration.catalog(d, calibration: await calibrations.get(d.metadata.key)) } catch {
                throw APIStatus.badRequest("\(error)")
            }
            var h = HTTPFields()
            h[.contentType] = "application/yaml"
            return Response(status: .ok, headers: h, body: .init(byteBuffer: ByteBuffer(string: try catalog.yaml())))
        }
        on(r, "\(ns)/:name/workload", .get, "getWorkload", [.admin, .reader]) { _, ctx, _ in
            let d = try await existing(ctx)
            return Self.json(WorkloadStatus(reports: await reports.fresh(d.metadata.key, maxAge: .seconds(60))))
        }
        on(r, "\(ns)/:name/workload", .put, "putWorkload", [.admin]) { req, ctx, _ in
            let d = try await existing(ctx)
            let report = try await Self.decodeBody(WorkloadReport.self, req, kind: "WorkloadReport")
            let problems = report.problems()
            if !problems.isEmpty { throw APIStatus.invalid(InvalidObjectError(kind: "WorkloadReport", name: report.source, causes: problems)) }
            await reports.put(report, deployment: d.metadata.key)
            return Self.json(WorkloadStatus(reports: await reports.fresh(d.metadata.key, maxAge: .seconds(60))))
        }

        let nodes = "\(Self.prefix)/nodes"
        on(r, nodes, .get, "listNodes", [.admin, .reader, .node]) { req, _, id in
            // A node sees itself only.
            let items = await registry.all().filter { id.role != .node || $0.name == id.node }
            if Self.wantsTable(req) { return Self.json(try await nodeTable(items, req)) }
            return Self.json(ObjectList(kind: "NodeList", resourceVersion: nil, items: items))
        }
        on(r, nodes, .post, "registerNode", [.admin, .node]) { req, _, id in
            let reg = try await Self.decodeBody(NodeRegistration.self, req, kind: "NodeRegistration")
            // A bound node registers as itself; a bootstrap token only a node not registered yet.
            var mint = false
            if id.role == .node {
                if id.node != nil {
                    try Self.requireSelf(id, reg.name, op: "register")
                } else {
                    guard await registry.get(reg.name) == nil else {
                        throw APIStatus(reason: .conflict, code: 409, message: "node \"\(reg.name)\" is registered already: its agent authenticates with the node credential it got then (node.credential in its data directory); a bootstrap token cannot act as it. Delete the node to enroll it again")
                    }
                    mint = true
                }
            }
            // Node names are Kubernetes node names: DNS subdomains, dots allowed.
            if let why = ServingDeploymentAdmission.dnsSubdomainProblem(reg.name) {
                throw APIStatus.invalid(InvalidObjectError(kind: "NodeRegistration", name: reg.name, causes: [FieldError("name", why)]))
            }
            var causes: [FieldError] = []
            if reg.capacity.count < 1 || reg.capacity.count > 1024 { causes.append(FieldError("capacity.count", "must be from 1 to 1024; got \(reg.capacity.count)")) }
            if reg.capacity.memoryBytes < 0 { causes.append(FieldError("capacity.memoryBytes", "must not be negative; got \(reg.capacity.memoryBytes)")) }
            if reg.capacity.accelerator.isEmpty { causes.append(FieldError("capacity.accelerator", "must not be empty")) }
            if !causes.isEmpty { throw APIStatus.invalid(InvalidObjectError(kind: "NodeRegistration", name: reg.name, causes: causes)) }
            let (node, changed) = try await registry.register(reg)
            if changed { try await enqueueAll() }
            var res = Self.json(node, status: .created)
            if mint {
                // The node's own credential, from now on the only token that acts as it.
                let credential = Authenticator.randomToken()
                let hash = Authenticator.hash(credential)
                try await repo.writeCredential(node: reg.name, sha256: hash)
                auth.addCredential(hash: hash, node: reg.name)
                res.headers[HTTPField.Name(NodeCredentialHeader.name)!] = credential
                logger.info("Node credential issued", metadata: ["event": "NodeCredentialIssued", "node": "\(reg.name)", "by": "\(id.user)"])
            }
            return res
        }
        on(r, "\(nodes)/:name", .get, "getNode", [.admin, .reader, .node]) { req, ctx, id in
            let name = try ctx.parameters.require("name")
            try Self.requireSelf(id, name, op: "read node")
            guard let n = await registry.get(name) else { throw APIStatus.notFound("Node \"\(name)\"") }
            if Self.wantsTable(req) { return Self.json(try await nodeTable([n], req)) }
            return Self.json(n)
        }
        on(r, "\(nodes)/:name", .delete, "deleteNode", [.admin]) { _, ctx, _ in
            let name = try ctx.parameters.require("name")
            guard try await registry.remove(name) else { throw APIStatus.notFound("Node \"\(name)\"") }
            try await issuer.revoke(node: name)
            try await repo.deleteCredential(node: name)
            auth.removeCredential(node: name)
            try await enqueueAll()
            return Self.json(APIStatusSuccess(message: "Node \"\(name)\" deleted"))
        }
        on(r, "\(nodes)/:name/heartbeat", .put, "heartbeat", [.admin, .node]) { req, ctx, id in
            let name = try ctx.parameters.require("name")
            try Self.requireSelf(id, name, op: "heartbeat")
            let hb = try await Self.decodeBody(Heartbeat.self, req, kind: "Heartbeat")
            let problems = (hb.timings ?? []).enumerated().flatMap { $1.problems(at: "timings[\($0)]") }
            if !problems.isEmpty { throw APIStatus.invalid(InvalidObjectError(kind: "Heartbeat", name: name, causes: problems)) }
            switch try await registry.heartbeat(name, hb) {
            case .unknownNode:
                throw APIStatus.notFound("Node \"\(name)\" (register it first)")
            case .ok(let affected, let phaseChanged):
                if let t = hb.timings, !t.isEmpty {
                    // Only the node's own assigned instances calibrate their deployments: a node
                    // cannot skew another deployment's model.
                    let own = Set(await board.assignments(node: name).instances.map { "\($0.deployment)/\($0.instance)" })
                    await calibrations.add(t.filter { own.contains("\($0.deployment)/\($0.instance)") })
                }
                if phaseChanged { try await enqueueAll() } else { for k in affected { await queue.add(k) } }
            }
            return Self.json(await board.assignments(node: name))
        }
        on(r, "\(nodes)/:name/assignments", .get, "getAssignments", [.admin, .reader, .node]) { req, ctx, id in
            let name = try ctx.parameters.require("name")
            try Self.requireSelf(id, name, op: "read assignments")
            let after = try Self.intParam(req, "after") ?? -1
            let wait = min(try Self.intParam(req, "timeoutSeconds") ?? 0, 60)
            if wait > 0 {
                return Self.json(await board.wait(node: name, after: after, timeout: .seconds(wait)))
            }
            return Self.json(await board.assignments(node: name))
        }

        on(r, "\(Self.prefix)/certificatesigningrequests", .post, "signCertificate", [.admin, .node]) { req, _, id in
            let spec = try await Self.decodeBody(CertificateSigningRequestSpec.self, req, kind: "CertificateSigningRequest")
            switch spec.role {
            case .node:
                try Self.requireSelf(id, spec.name, op: "get a certificate")
                // A node's names are the ones it registered; the node must exist.
                guard let node = await registry.get(spec.name) else {
                    throw APIStatus.notFound("Node \"\(spec.name)\" (register it before asking for a certificate)")
                }
                let addresses = node.spec.addresses ?? []
                let ips = addresses.filter { IPAddressBytes.parse($0) != nil }
                let dns = [spec.name] + addresses.filter { IPAddressBytes.parse($0) == nil }
                return Self.json(try await issuer.sign(spec, dnsNames: dns, ipAddresses: ips), status: .created)
            case .gateway:
                guard id.role == .admin else {
                    throw APIStatus(reason: .forbidden, code: 403, message: "only an admin token may request a gateway certificate")
                }
                for ip in spec.ipAddresses ?? [] where IPAddressBytes.parse(ip) == nil {
                    throw APIStatus.invalid(InvalidObjectError(kind: "CertificateSigningRequest", name: spec.name, causes: [FieldError("ipAddresses", "not an IP address: \(ip)")]))
                }
                return Self.json(try await issuer.sign(spec, dnsNames: [spec.name] + (spec.dnsNames ?? []), ipAddresses: spec.ipAddresses ?? []), status: .created)
            }
        }
        on(r, "\(Self.prefix)/revokedcertificates", .get, "listRevokedCertificates", [.admin, .reader, .node]) { _, _, _ in
            Self.json(await issuer.revoked())
        }

        on(r, "\(Self.prefix)/decisions", .get, "listDecisions", [.admin, .reader]) { req, _, _ in
            var deployment = req.uri.queryParameters["deployment"].map(String.init)
            if let d = deployment, !d.contains("/") { deployment = "\(APIGroup.defaultNamespace)/\(d)" }
            let since = try Self.intParam(req, "since") ?? 0
            let limit = max(1, min(try Self.intParam(req, "limit") ?? 500, 5000))
            let wait = min(try Self.intParam(req, "waitSeconds") ?? 0, 60)
            let items = wait > 0
                ? try await decisions.follow(deployment: deployment, since: since, limit: Int(limit), timeout: .seconds(wait))
                : try await decisions.list(deployment: deployment, since: since, limit: Int(limit))
            return Self.json(DecisionList(items: items, lastSeq: items.last?.seq ?? since))
        }
        return r
    }

    /// A node identity acts as its own node only (admins and readers as any).
    static func requireSelf(_ id: Identity, _ name: String, op: String) throws {
        guard id.role == .node else { return }
        guard let own = id.node else {
            throw APIStatus(reason: .forbidden, code: 403, message: "a bootstrap token may only register a new node, not \(op) as \"\(name)\"")
        }
        guard own == name else {
            throw APIStatus(reason: .forbidden, code: 403, message: "node \"\(own)\" may not \(op) as node \"\(name)\"")
        }
    }

    // MARK: - Deployments

    private func listDeployments(_ req: Request, namespace: String?) async throws -> Response {
        if let w = req.uri.queryParameters["watch"].map(String.init), w == "true" || w == "1" {
            return try await watchDeployments(req, namespace: namespace)
        }
        let selectors = try Selectors(req)
        let rv = try await repo.store.currentResourceVersion()
        let items = try await repo.deployments(namespace: namespace).filter { selectors.matches($0.metadata) }
        if Self.wantsTable(req) { return Self.json(try Self.deploymentTable(items, req, resourceVersion: String(rv))) }
        return Self.json(ObjectList(kind: "ServingDeploymentList", resourceVersion: String(rv), items: items))
    }

    private func nodeTable(_ items: [Node], _ req: Request) async throws -> ObjectTable {
        var used: [String: Int] = [:]
        for d in try await repo.deployments(namespace: nil) { for a in d.status?.assignments ?? [] { used[a.node, default: 0] += a.accelerators } }
        return try ObjectTable.of(items, columns: .nodes(used: used), include: try Self.includeObject(req), resourceVersion: nil) { $0.metadata }
    }

    /// `?watch=true[&resourceVersion=N][&timeoutSeconds=S]`: one JSON line per change, as
    /// Kubernetes streams them. Without a resourceVersion (or with 0) the current objects come
    /// first as ADDED; with one, the changes after it (ERROR 410 Expired when that is older
    /// than the store keeps: list again). The stream ends after `timeoutSeconds` if given.
    private func watchDeployments(_ req: Request, namespace: String?) async throws -> Response {
        let q = req.uri.queryParameters
        let selectors = try Selectors(req)
        let table = Self.wantsTable(req)
        let include = try Self.includeObject(req)
        var after: Int64
        var initial: [ServingDeployment] = []
        // Which objects match the selectors now: a watch resumed from a resourceVersion (as
        // kubectl's, after its list) must say DELETED for one that stops matching.
        var matching: Set<String> = []
        if let text = q["resourceVersion"].map(String.init), !text.isEmpty, text != "0" {
            guard let rv = Int64(text), rv > 0 else { throw APIStatus.badRequest("resourceVersion: expected a positive integer, got \(text)") }
            after = rv
            matching = Set(try await repo.deployments(namespace: namespace).filter { selectors.matches($0.metadata) }.map(\.metadata.key))
        } else {
            after = try await repo.store.currentResourceVersion()
            initial = try await repo.deployments(namespace: namespace).filter { selectors.matches($0.metadata) }
        }
        var timeout: Duration?
        if let text = q["timeoutSeconds"].map(String.init) {
            guard let t = Int(text), t > 0 else { throw APIStatus.badRequest("timeoutSeconds: expected a positive integer, got \(text)") }
            timeout = .seconds(t)
        }
        let listed = Dictionary(initial.map { ($0.metadata.key, Int64($0.metadata.resourceVersion ?? "0") ?? 0) }, uniquingKeysWith: max)
        let first = initial
        let matching0 = matching
        let events = Self.bounded(repo.store.watch(kind: ServingDeployment.kind, namespace: namespace, after: after), by: timeout,
                                  until: shuttingDown)
        let repo = self.repo
        var headers = HTTPFields()
        headers[.contentType] = "application/json"
        return Response(status: .ok, headers: headers, body: ResponseBody { writer in
            func line(_ value: some Encodable) throws -> ByteBuffer {
                var b = ByteBuffer(data: try JSONCoding.encoder.encode(value))
                b.writeString("\n")
                return b
            }
            func event(_ type: String, _ d: ServingDeployment) throws -> ByteBuffer {
                guard table else { return try line(WatchEvent(type: type, object: d)) }
                let t = try ObjectTable.of([d], columns: .deployments, include: include, resourceVersion: d.metadata.resourceVersion) { $0.metadata }
                return try line(WatchEvent(type: type, object: t))
            }
            // With selectors, an object that comes to match is ADDED and one that stops
            // matching DELETED, as Kubernetes watches say it.
            var matched = matching0.union(first.map(\.metadata.key))
            do {
                for d in first { try await writer.write(try event("ADDED", d)) }
                for try await e in events {
                    let d = try repo.decodeDeployment(e.object)
                    // A change the initial list already showed is not repeated.
                    if let seen = listed[d.metadata.key], e.object.resourceVersion <= seen { continue }
                    let key = d.metadata.key
                    let was = matched.contains(key)
                    let type: String
                    if e.type == .deleted {
                        guard was || selectors.matches(d.metadata) else { continue }
                        matched.remove(key)
                        type = e.type.rawValue
                    } else if selectors.matches(d.metadata) {
                        matched.insert(key)
                        type = was ? e.type.rawValue : "ADDED"
                    } else {
                        guard was else { continue }
                        matched.remove(key)
                        type = "DELETED"
                    }
                    try await writer.write(try event(type, d))
                }
            } catch {
                let status = Self.status(for: error, logger: logger, op: "watchDeployments")
                try? await writer.write(try line(WatchEvent(type: "ERROR", object: status)))
            }
            try await writer.finish(nil)
        })
    }

    /// `events`, ended after `timeout` (if any) or when `end` opens (the controller shuts down:
    /// a watch would otherwise hold its graceful shutdown forever).
    static func bounded(_ events: AsyncThrowingStream<StoreEvent, any Error>, by timeout: Duration?,
                        until end: Latch) -> AsyncThrowingStream<StoreEvent, any Error> {
        let (stream, continuation) = AsyncThrowingStream<StoreEvent, any Error>.makeStream()
        let forward = Task {
            do {
                for try await e in events { continuation.yield(e) }
                continuation.finish()
            } catch {
                continuation.finish(throwing: error)
            }
        }
        let timer = Task {
            if let timeout {
                await withTaskGroup(of: Void.self) { group in
                    group.addTask { try? await Task.sleep(for: timeout) }
                    group.addTask { await end.wait() }
                    await group.next()
                    group.cancelAll()
                }
            } else {
                await end.wait()
            }
            continuation.finish()
        }
        continuation.onTermination = { _ in
            forward.cancel()
            timer.cancel()
        }
        return stream
    }

    private func existing(_ ctx: Context) async throws -> ServingDeployment {
        let ns = try ctx.parameters.require("namespace")
        let name = try ctx.parameters.require("name")
        guard let d = try await repo.deployment(namespace: ns, name: name) else {
            throw APIStatus.notFound("ServingDeployment \"\(ns)/\(name)\"")
        }
        return d
    }

    /// Create (POST) or apply (PUT: create or update). A `metadata.resourceVersion` in the body
    /// makes the update conditional (409 when it is stale). `generation` bumps on spec changes only.
    private func apply(_ req: Request, _ ctx: Context, _ id: Identity, name: String?, create: Bool) async throws -> Response {
        let ns = try ctx.parameters.require("namespace")
        let options = try WriteOptions(req, id)
        let value = try Self.singleDocument(try await Self.body(req))
        return try await write(ns: ns, name: name, create: create, id: id, options: options) { _ in value }
    }

    /// PATCH: a JSON merge patch or JSON patch applied to the object as stored (and admitted as a
    /// whole, like any write), or a server-side apply (`application/apply-patch+yaml`: the body
    /// is the applier's whole object, created if missing; field ownership is not tracked, so the
    /// applied object replaces spec, labels and annotations, as `ampd apply` does).
    private func patch(_ req: Request, _ ctx: Context, _ id: Identity) async throws -> Response {
        let ns = try ctx.parameters.require("namespace")
        let name = try ctx.parameters.require("name")
        let type = try Self.patchType(req, allowed: [.merge, .json, .apply])
        let options = try WriteOptions(req, id, apply: type == .apply)
        let body = try await Self.body(req)
        if type == .apply {
            let value = try Self.singleDocument(body)
            return try await write(ns: ns, name: name, create: false, id: id, options: options) { _ in value }
        }
        return try await write(ns: ns, name: name, create: false, id: id, options: options) { current in
            guard let current else { throw APIStatus.notFound("ServingDeployment \"\(ns)/\(name)\"") }
            let stored = try JSONValue(encoding: current)
            var patched = try Self.applyPatch(type, body, to: stored)
            // The stored resourceVersion rides along in the document; only one the patch itself
            // sets makes the write conditional.
            if patched["metadata"]?["resourceVersion"] == stored["metadata"]?["resourceVersion"],
               case .object(var top) = patched, case .object(var meta)? = top["metadata"] {
                meta["resourceVersion"] = nil
                top["metadata"] = .object(meta)
                patched = .object(top)
            }
            return patched
        }
    }

    /// Admits what `desired` makes of the stored object (nil: none) and writes it, conditional
    /// on the version read; a write that loses a race with the controller's status writes is
    /// made again from the new version (unless the client named a resourceVersion).
    private func write(ns: String, name: String?, create: Bool, id: Identity, options: WriteOptions,
                       desired: (ServingDeployment?) throws -> JSONValue) async throws -> Response {
        for attempt in 0..<5 {
            var current: ServingDeployment?
            let lookup: String? = try name ?? Self.name(of: desired(nil))
            if let lookup {
                current = try await repo.deployment(namespace: ns, name: lookup)
            }
            let value = try desired(current)
            let admitted: (deployment: ServingDeployment, warnings: [String])
            do { admitted = try ServingDeploymentAdmission.admit(value, fieldValidation: options.fieldValidation) } catch { throw APIStatus.invalid(error) }
            var d = admitted.deployment
            if let bodyNS = d.metadata.namespace, value["metadata"]?["namespace"] != nil, bodyNS != ns {
                throw APIStatus.badRequest("metadata.namespace \"\(bodyNS)\" does not match the namespace in the URL \"\(ns)\"")
            }
            if let name, d.metadata.name != name {
                throw APIStatus.badRequest("metadata.name \"\(d.metadata.name)\" does not match the name in the URL \"\(name)\"")
            }
            d.metadata.namespace = ns
            let clientRV = d.metadata.resourceVersion.flatMap { Int64($0) }
            var next = d
            next.status = current?.status
            next.metadata.managedFields = current?.metadata.managedFields
            next.metadata.record(options.entry())
            let precondition: WritePrecondition
            if let current {
                if create {
                    throw APIStatus(reason: .alreadyExists, code: 409, message: "ServingDeployment \"\(ns)/\(d.metadata.name)\" already exists")
                }
                if current.metadata.isDeleting {
                    throw APIStatus.conflict("ServingDeployment \"\(ns)/\(d.metadata.name)\" is being deleted; apply again once it is gone")
                }
                let currentRV = Int64(current.metadata.resourceVersion ?? "0") ?? 0
                if let clientRV, clientRV != currentRV {
                    throw APIStatus.conflict("ServingDeployment \"\(ns)/\(d.metadata.name)\" was modified: you sent resourceVersion \(clientRV), the current one is \(currentRV); get it again and retry")
                }
                next.metadata.uid = current.metadata.uid
                next.metadata.creationTimestamp = current.metadata.creationTimestamp
                next.metadata.finalizers = current.metadata.finalizers
                next.metadata.deletionTimestamp = nil
                let specChanged = current.spec != next.spec
                next.metadata.generation = (current.metadata.generation ?? 1) + (specChanged ? 1 : 0)
                if specChanged, var status = next.status {
                    // A new spec supersedes earlier scale-subresource overrides of autoscaled pools.
                    if current.spec.prefill?.autoscale != next.spec.prefill?.autoscale { status.scaleOverride?.prefill = nil }
                    if current.spec.decode.autoscale != next.spec.decode.autoscale { status.scaleOverride?.decode = nil }
                    next.status = status
                }
                if !specChanged && current.metadata.labels == next.metadata.labels && current.metadata.annotations == next.metadata.annotations {
                    return Self.warned(Self.json(current), admitted.warnings)   // nothing to change: no new resourceVersion
                }
                precondition = .resourceVersion(currentRV)
            } else {
                if clientRV != nil && !create {
                    throw APIStatus.conflict("ServingDeployment \"\(ns)/\(d.metadata.name)\" does not exist, but the body names resourceVersion \(clientRV!); remove it to create")
                }
                next.metadata.uid = UUID().uuidString.lowercased()
                next.metadata.creationTimestamp = Timestamp.rfc3339(Date())
                next.metadata.generation = 1
                next.metadata.finalizers = [APIGroup.instancesFinalizer]
                next.metadata.deletionTimestamp = nil
                precondition = .mustNotExist
            }
            if options.dryRun {
                next.metadata.resourceVersion = current?.metadata.resourceVersion
                return Self.warned(Self.json(next, status: current == nil ? .created : .ok), admitted.warnings)
            }
            do {
                let stored = try await repo.write(next, precondition: precondition)
                logger.info("Applied deployment", metadata: ["event": current == nil ? "CreatedDeployment" : "UpdatedDeployment",
                    "deployment": "\(stored.metadata.key)", "generation": "\(stored.metadata.generation ?? 0)",
                    "resourceVersion": "\(stored.metadata.resourceVersion ?? "")", "actor": "\(id.user)", "fieldManager": "\(options.fieldManager)"])
                await queue.add(stored.metadata.key)
                return Self.warned(Self.json(stored, status: current == nil ? .created : .ok), admitted.warnings)
            } catch let e as StoreError {
                switch e.code {
                case .conflict, .alreadyExists, .notFound:
                    if clientRV != nil || create { throw APIStatus.conflict(e.message) }
                    if attempt < 4 { continue }   // the controller wrote status meanwhile: read again
                    throw APIStatus.conflict(e.message)
                case .database, .unavailable, .fenced, .expired:
                    throw e
                }
            }
        }
        throw APIStatus.conflict("ServingDeployment \"\(ns)/\(name ?? "")\" kept changing; retry")
    }

    /// The one object of a request body (YAML or JSON).
    static func singleDocument(_ body: ByteBuffer) throws -> JSONValue {
        let docs: [DocumentReader.Document]
        do { docs = try DocumentReader.read(Data(buffer: body)) } catch { throw APIStatus.invalid(error) }
        guard docs.count == 1 else {
            throw APIStatus.badRequest("expected one object in the body; got \(docs.count) (apply documents one at a time)")
        }
        return docs[0].value
    }

    /// `metadata.name` of a document, for creates (whose URL has none).
    static func name(of value: JSONValue) -> String? {
        if case .string(let n)? = value["metadata"]?["name"] { return n }
        return nil
    }

    static func patchType(_ req: Request, allowed: [PatchType]) throws -> PatchType {
        let header = req.headers[.contentType] ?? ""
        guard let type = PatchType(contentType: header), allowed.contains(type) else {
            throw APIStatus(reason: .unsupportedMediaType, code: 415,
                            message: "Content-Type \"\(header)\": this PATCH takes \(allowed.map(\.rawValue).joined(separator: ", "))"
                                + (PatchType(contentType: header) == .strategic ? " (strategic merge patch needs merge keys ampd's types do not declare; use --type merge or --type json)" : ""))
        }
        return type
    }

    static func applyPatch(_ type: PatchType, _ body: ByteBuffer, to value: JSONValue) throws -> JSONValue {
        let patch: JSONValue
        do { patch = try JSONCoding.decoder.decode(JSONValue.self, from: Data(buffer: body)) } catch let e as DecodingError {
            throw APIStatus.badRequest("the patch is not JSON: \(DocumentReader.describe(e))")
        }
        if let path = JSONDuplicateKeys.first(in: Data(buffer: body)) {
            throw APIStatus.badRequest("the patch has a duplicate key at \(path)")
        }
        switch type {
        case .merge: return MergePatch.apply(patch, to: value)
        case .json:
            do { return try JSONPatch.apply(patch, to: value) } catch {
                throw APIStatus(reason: .invalid, code: 422, message: "the JSON patch cannot be applied: \(error)")
            }
        case .apply, .strategic: throw APIStatus.badRequest("\(type.rawValue) is not a patch applied to the stored object")
        }
    }

    private func delete(_ req: Request, _ ctx: Context, _ id: Identity) async throws -> Response {
        let options = try await Self.deleteOptions(req)
        let dryRun = try WriteOptions(req, id).dryRun || options.dryRun == ["All"]
        for _ in 0..<5 {
            var d = try await existing(ctx)
            if let p = options.preconditions {
                if let uid = p.uid, uid != d.metadata.uid {
                    throw APIStatus.conflict("precondition failed: preconditions.uid is \(uid), the object's is \(d.metadata.uid ?? "-")")
                }
                if let rv = p.resourceVersion, rv != d.metadata.resourceVersion {
                    throw APIStatus.conflict("precondition failed: preconditions.resourceVersion is \(rv), the object's is \(d.metadata.resourceVersion ?? "-")")
                }
            }
            if d.metadata.isDeleting { return Self.json(d, status: .accepted) }
            d.metadata.deletionTimestamp = Timestamp.rfc3339(Date())
            if dryRun { return Self.json(d, status: .accepted) }
            do {
                let stored = try await repo.write(d, precondition: .resourceVersion(Int64(d.metadata.resourceVersion ?? "0") ?? 0))
                logger.info("Marked deployment for deletion", metadata: ["event": "DeletingDeployment",
                    "deployment": "\(stored.metadata.key)", "actor": "\(id.user)"])
                await queue.add(stored.metadata.key)
                return Self.json(stored, status: .accepted)
            } catch let e as StoreError where e.code != .database {
                continue
            }
        }
        throw APIStatus.conflict("deployment kept changing; retry")
    }

    // MARK: - Scale

    static func scale(of d: ServingDeployment) -> Scale {
        var meta = ObjectMeta(name: d.metadata.name, namespace: d.metadata.namespace)
        meta.resourceVersion = d.metadata.resourceVersion
        let pools = d.status?.pools ?? PoolsStatus()
        let decode = d.desiredReplicas(.decode)
        return Scale(metadata: meta,
                     spec: ScaleSpec(replicas: decode, prefill: d.spec.prefill == nil ? nil : d.desiredReplicas(.prefill), decode: decode),
                     status: ScaleStatus(replicas: pools.decode.ready, prefill: d.spec.prefill == nil ? nil : pools.prefill, decode: pools.decode))
    }

    /// Sets the pools' replicas a Scale asks for (PUT, or PATCH applied to the current Scale).
    private func scaleTo(_ s: Scale, _ ctx: Context, _ id: Identity, options: WriteOptions) async throws -> Response {
        var wrong: [FieldError] = []
        if s.apiVersion != Scale.apiVersion { wrong.append(FieldError("apiVersion", "must be \(Scale.apiVersion); got \(s.apiVersion)")) }
        if s.kind != Scale.kind { wrong.append(FieldError("kind", "must be \(Scale.kind); got \(s.kind)")) }
        if !wrong.isEmpty { throw APIStatus.invalid(InvalidObjectError(kind: Scale.kind, name: s.metadata.name, causes: wrong)) }
        let counts: ScaleCounts
        do { counts = try s.spec.counts() } catch {
            var e = error
            e.name = try ctx.parameters.require("name")
            throw APIStatus.invalid(e)
        }
        for _ in 0..<5 {
            var d = try await existing(ctx)
            if d.metadata.isDeleting { throw APIStatus.conflict("ServingDeployment \"\(d.metadata.key)\" is being deleted") }
            let rv = Int64(d.metadata.resourceVersion ?? "0") ?? 0
            if let want = s.metadata.resourceVersion, Int64(want) != rv {
                throw APIStatus.conflict("ServingDeployment \"\(d.metadata.key)\" was modified: you sent resourceVersion \(want), the current one is \(rv)")
            }
            var causes: [FieldError] = []
            var changes: [(InstanceRole, Int, Int)] = []
            for role in InstanceRole.allCases {
                guard let n = role == .prefill ? counts.prefill : counts.decode else { continue }
                let field = "spec.\(role.rawValue)"
                guard var pool = d.pool(role) else {
                    causes.append(FieldError(field, "this deployment has no \(role.rawValue) pool (routing.policy colocated)"))
                    continue
                }
                let minimum = role == .decode ? 1 : 0
                let before = d.desiredReplicas(role)
                if let a = pool.autoscale {
                    guard n >= a.min && n <= a.max else {
                        causes.append(FieldError(field, "must be within the pool's autoscale bounds \(a.min)...\(a.max); got \(n) (change spec.\(role.rawValue).autoscale to go beyond)"))
                        continue
                    }
                    var status = d.status ?? ServingDeploymentStatus()
                    var o = status.scaleOverride ?? ScaleCounts()
                    if role == .prefill { o.prefill = n } else { o.decode = n }
                    status.scaleOverride = o
                    d.status = status
                } else {
                    guard n >= minimum && n <= ServingDeploymentAdmission.maxReplicas else {
                        causes.append(FieldError(field, "must be from \(minimum) to \(ServingDeploymentAdmission.maxReplicas); got \(n)"))
                        continue
                    }
                    if pool.replicas != n {
                        pool.replicas = n
                        if role == .prefill { d.spec.prefill = pool } else { d.spec.decode = pool }
                        d.metadata.generation = (d.metadata.generation ?? 1) + 1
                    }
                }
                if before != n { changes.append((role, before, n)) }
            }
            if !causes.isEmpty { throw APIStatus.invalid(InvalidObjectError(kind: "Scale", name: d.metadata.name, causes: causes)) }
            if changes.isEmpty || options.dryRun { return Self.json(Self.scale(of: d)) }
            d.metadata.record(options.entry(subresource: "scale"))
            do {
                let stored = try await repo.write(d, precondition: .resourceVersion(rv))
                let now = Timestamp.rfc3339(Date())
                try await decisions.record(changes.map { role, from, to in
                    Decision(ts: now, deployment: stored.metadata.key, event: DecisionEvent.scaledPool, reason: "ScaleSubresource",
                             actor: id.user, message: "Scaled \(role.rawValue) pool of \(stored.metadata.key) from \(from) to \(to)",
                             fields: ["role": .string(role.rawValue), "from": .int(Int64(from)), "to": .int(Int64(to))])
                })
                await queue.add(stored.metadata.key)
                return Self.json(Self.scale(of: stored))
            } catch let e as StoreError where e.code != .database {
                if s.metadata.resourceVersion != nil { throw APIStatus.conflict(e.message) }
                continue
            }
        }
        throw APIStatus.conflict("deployment kept changing; retry")
    }

    private func enqueueAll() async throws {
        for d in try await repo.deployments(namespace: nil) { await queue.add(d.metadata.key) }
    }

    // MARK: - Plumbing

    /// Registers a route with authentication, role checks, error mapping and metrics.
    func on(_ r: Router<Context>, _ path: String, _ method: HTTPRequest.Method, _ op: String,
                    _ roles: Set<Role>, _ handler: @escaping Handler) {
        r.on(RouterPath(path), method: method) { req, ctx in
            let start = ContinuousClock.now
            let response: Response
            if let id = auth.identify(authorization: req.headers[.authorization]) {
                if roles.contains(id.role) {
                    do {
                        response = try await handler(req, ctx, id)
                    } catch {
                        response = Self.error(Self.status(for: error, logger: logger, op: op))
                    }
                } else {
                    response = Self.error(APIStatus(reason: .forbidden, code: 403,
                        message: "user \"\(id.user)\" (role \(id.role.rawValue)) may not \(op); needs role \(roles.map(\.rawValue).sorted().joined(separator: " or "))"))
                }
            } else {
                response = Self.error(APIStatus(reason: .unauthorized, code: 401,
                    message: req.headers[.authorization] == nil ? "missing bearer token (Authorization: Bearer <token>)" : "unknown bearer token"))
            }
            let code = String(response.status.code)
            metrics.registry.makeCounter(name: "ampd_api_requests_total", labels: [("operation", op), ("code", code)]).increment()
            metrics.registry.makeDurationHistogram(name: "ampd_api_request_duration_seconds", labels: [("operation", op)],
                buckets: MetricsRegistry.latencyBuckets).recordNanoseconds((ContinuousClock.now - start).nanoseconds)
            return response
        }
    }

    static func status(for error: any Error, logger: Logger, op: String) -> APIStatus {
        switch error {
        case let s as APIStatus: return s
        case let e as InvalidObjectError: return .invalid(e)
        case let e as StoreError:
            switch e.code {
            case .notFound: return .notFound(e.message)
            case .alreadyExists: return APIStatus(reason: .alreadyExists, code: 409, message: e.message)
            case .conflict: return .conflict(e.message)
            case .expired:
                return APIStatus(reason: .expired, code: 410, message: e.message)
            case .unavailable, .fenced:
                logger.warning("Store unavailable", metadata: ["event": "StoreUnavailable", "operation": "\(op)", "error": "\(e.message)"])
                return APIStatus(reason: .serviceUnavailable, code: 503, message: "store unavailable: \(e.message)")
            case .database:
                logger.error("Store failed", metadata: ["event": "StoreFailed", "operation": "\(op)", "error": "\(e.message)"])
                return APIStatus(reason: .internalError, code: 500, message: "store error: \(e.message)")
            }
        case let e as HTTPError:
            if e.status == .contentTooLarge { return APIStatus(reason: .badRequest, code: 413, message: "request body exceeds \(maxBody) bytes") }
            return APIStatus(reason: .badRequest, code: Int(e.status.code), message: e.body ?? e.status.reasonPhrase)
        default:
            logger.error("Request failed", metadata: ["event": "RequestFailed", "operation": "\(op)", "error": "\(error)"])
            return APIStatus(reason: .internalError, code: 500, message: "\(error)")
        }
    }

    static func body(_ req: Request) async throws -> ByteBuffer {
        var r = req
        do {
            return try await r.collectBody(upTo: maxBody)
        } catch is NIOTooManyBytesError {
            throw APIStatus(reason: .badRequest, code: 413, message: "request body exceeds \(maxBody) bytes")
        }
    }

    static func decodeBody<T: Codable>(_ type: T.Type, _ req: Request, kind: String) async throws -> T {
        try await decodeBuffer(type, try await body(req), kind: kind)
    }

    static func decodeBuffer<T: Codable>(_ type: T.Type, _ buf: ByteBuffer, kind: String) async throws -> T {
        let value: JSONValue
        do {
            value = try JSONCoding.decoder.decode(JSONValue.self, from: Data(buffer: buf))
        } catch let e as DecodingError {
            throw APIStatus.badRequest("body is not JSON: \(DocumentReader.describe(e))")
        }
        if let path = JSONDuplicateKeys.first(in: Data(buffer: buf)) {
            throw APIStatus.invalid(InvalidObjectError(kind: kind, causes: [FieldError(path, "duplicate key")]))
        }
        do { return try StrictDecoder.decode(T.self, from: value, kind: kind) } catch { throw APIStatus.invalid(error) }
    }

    static func intParam(_ req: Request, _ name: String) throws -> Int64? {
        guard let v = req.uri.queryParameters[Substring(name)] else { return nil }
        guard let i = Int64(v) else { throw APIStatus.badRequest("query parameter \(name) must be an integer; got \"\(v)\"") }
        return i
    }

    static func json(_ value: some Encodable, status: HTTPResponse.Status = .ok) -> Response {
        var h = HTTPFields()
        h[.contentType] = "application/json"
        let data = (try? JSONCoding.encoder.encode(value)) ?? Data("{}".utf8)
        return Response(status: status, headers: h, body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }

    static func error(_ s: APIStatus) -> Response {
        json(s, status: HTTPResponse.Status(code: s.code))
    }
}

/// `{"kind":"Status","status":"Success"}` for deletes of cluster-scoped objects.
struct APIStatusSuccess: Codable, Sendable {
    var apiVersion = "v1"
    var kind = "Status"
    var status = "Success"
    var message: String
}

/// Whether the controller has finished starting (store loaded, nodes known).
actor ReadinessFlag {
    private(set) var isReady = false
    func set() { isReady = true }
}
