import AMPDAPI
import AMPDObservability
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore

/// What makes the controller's API one `kubectl` speaks: discovery, `/version`, the OpenAPI v3
/// documents, Tables on request, and the query parameters of Kubernetes writes.
extension APIServer {
    func kubernetesRoutes(_ r: Router<Context>) {
        let everyone: Set<Role> = [.admin, .reader, .node]
        on(r, "/version", .get, "getVersion", everyone) { _, _, _ in
            Self.json(KubernetesDiscovery.Version(major: "1", minor: "32", gitVersion: "v1.32.0-ampd.\(APIGroup.version)",
                                                  platform: "linux/\(Self.machine)"))
        }
        on(r, "/api", .get, "getCoreAPIVersions", everyone) { _, _, _ in
            // No core resources: kubectl then does not ask /api/v1 (an empty list there is an error to it).
            Self.json(KubernetesDiscovery.Versions(versions: []))
        }
        on(r, "/apis", .get, "getAPIGroups", everyone) { _, _, _ in
            Self.json(KubernetesDiscovery.groups)
        }
        on(r, "/apis/\(APIGroup.group)", .get, "getAPIGroup", everyone) { _, _, _ in
            Self.json(KubernetesDiscovery.groups.groups[0])
        }
        on(r, Self.prefix, .get, "getAPIResources", everyone) { _, _, _ in
            Self.json(KubernetesDiscovery.resources)
        }
        on(r, "/openapi/v3", .get, "getOpenAPIV3Paths", everyone) { _, _, _ in
            Self.json(KubernetesOpenAPI.paths)
        }
        on(r, "/openapi/v3/apis/\(APIGroup.group)/\(APIGroup.version)", .get, "getOpenAPIV3", everyone) { _, _, _ in
            var h = HTTPFields()
            h[.contentType] = "application/json"
            return Response(status: .ok, headers: h, body: .init(byteBuffer: ByteBuffer(bytes: KubernetesOpenAPI.groupVersionDocument)))
        }
    }

    static var machine: String {
        #if arch(x86_64)
        "amd64"
        #elseif arch(arm64)
        "arm64"
        #else
        "unknown"
        #endif
    }

    // MARK: - Tables

    /// `kubectl get` asks for a Table (`Accept: application/json;as=Table;v=v1;g=meta.k8s.io,…`).
    static func wantsTable(_ req: Request) -> Bool {
        guard let accept = req.headers[.accept] else { return false }
        return accept.split(separator: ",").contains { part in
            let params = part.split(separator: ";").map { $0.trimmingCharacters(in: .whitespaces) }
            return params.contains("as=Table") && params.contains("g=meta.k8s.io") && (params.contains("v=v1") || params.contains("v=v1beta1"))
        }
    }

    static func includeObject(_ req: Request) throws -> ObjectTable.Include {
        guard let v = req.uri.queryParameters["includeObject"].map(String.init) else { return .metadata }
        guard let i = ObjectTable.Include(rawValue: v) else {
            throw APIStatus.badRequest("includeObject: expected None, Metadata or Object; got \"\(v)\"")
        }
        return i
    }

    static func deploymentTable(_ items: [ServingDeployment], _ req: Request, resourceVersion: String?) throws -> ObjectTable {
        try ObjectTable.of(items, columns: .deployments, include: try includeObject(req), resourceVersion: resourceVersion) { $0.metadata }
    }

    // MARK: - Selectors

    struct Selectors {
        var labels: LabelSelector?
        var fields: FieldSelector?

        init(_ req: Request) throws {
            let q = req.uri.queryParameters
            // kubectl form-encodes spaces as '+' ("team+in+(a,b)"); no label key or value holds a '+'.
            func text(_ name: String) -> String? { q[Substring(name)].map { String($0).replacingOccurrences(of: "+", with: " ") } }
            do {
                labels = try text("labelSelector").map { try LabelSelector(parsing: $0) }
                fields = try text("fieldSelector").map { try FieldSelector(parsing: $0) }
            } catch let e as InvalidParameter {
                throw APIStatus.badRequest(e.description)
            }
        }

        func matches(_ meta: ObjectMeta) -> Bool {
            (labels?.matches(meta.labels) ?? true) && (fields?.matches(meta) ?? true)
        }
    }

    // MARK: - Write options

    /// The query parameters of a create, update, patch or delete.
    struct WriteOptions {
        /// `dryRun=All`: everything but the write; the answer is the object as it would be.
        var dryRun = false
        /// `fieldManager`, or the caller's user name; recorded in `metadata.managedFields`.
        var fieldManager: String
        var fieldValidation: FieldValidation = .strict
        /// `Apply` (server-side apply) or `Update`.
        var operation = "Update"

        init(_ req: Request, _ id: Identity, apply: Bool = false) throws {
            let q = req.uri.queryParameters
            if let d = q["dryRun"].map(String.init) {
                guard d == "All" else { throw APIStatus.badRequest("dryRun: the only dry run is All; got \"\(d)\"") }
                dryRun = true
            }
            if let v = q["fieldValidation"].map(String.init) {
                guard let f = FieldValidation(rawValue: v) else {
                    throw APIStatus.badRequest("fieldValidation: expected Strict, Warn or Ignore; got \"\(v)\"")
                }
                fieldValidation = f
            }
            let manager = q["fieldManager"].map(String.init)
            if let manager, manager.isEmpty || manager.count > 128 {
                throw APIStatus.badRequest("fieldManager: must be 1 to 128 characters")
            }
            if apply {
                guard let manager else { throw APIStatus.badRequest("fieldManager: required for server-side apply (application/apply-patch+yaml)") }
                operation = "Apply"
                if let f = q["force"].map(String.init), f != "true" && f != "false" {
                    throw APIStatus.badRequest("force: expected true or false; got \"\(f)\"")
                }
            } else if let f = q["force"].map(String.init) {
                throw APIStatus.badRequest("force: only for server-side apply; got \"\(f)\" on a \(req.method.rawValue)")
            }
            fieldManager = manager ?? id.user
        }

        func entry(subresource: String? = nil) -> ManagedFieldsEntry {
            ManagedFieldsEntry(manager: fieldManager, operation: operation, apiVersion: APIGroup.apiVersion,
                               time: Timestamp.rfc3339(Date()), subresource: subresource)
        }
    }

    /// `Warning: 299 - "…"` headers, one per warning, as kubectl prints them.
    static func warned(_ response: Response, _ warnings: [String]) -> Response {
        var r = response
        for w in warnings {
            r.headers.append(HTTPField(name: HTTPField.Name("Warning")!, value: "299 - \"\(w.replacingOccurrences(of: "\"", with: "\\\""))\""))
        }
        return r
    }

    /// `DeleteOptions`, as `kubectl delete` sends them.
    struct DeleteOptions: Codable {
        struct Preconditions: Codable {
            var uid: String?
            var resourceVersion: String?
        }
        var kind: String?
        var apiVersion: String?
        var propagationPolicy: String?
        var preconditions: Preconditions?
        var dryRun: [String]?
        var gracePeriodSeconds: Int64?
        var orphanDependents: Bool?
    }

    static func deleteOptions(_ req: Request) async throws -> DeleteOptions {
        let buf = try await body(req)
        guard buf.readableBytes > 0 else { return DeleteOptions() }
        let o = try await decodeBuffer(DeleteOptions.self, buf, kind: "DeleteOptions")
        if let p = o.propagationPolicy, !["Background", "Foreground"].contains(p) {
            throw APIStatus.badRequest("propagationPolicy: \(p) is not supported: a deployment's instances are always torn down before it goes (Background and Foreground both wait for them)")
        }
        if o.orphanDependents == true {
            throw APIStatus.badRequest("orphanDependents: not supported: a deployment's instances are always torn down before it goes")
        }
        if let g = o.gracePeriodSeconds {
            throw APIStatus.badRequest("gracePeriodSeconds: not supported (got \(g)): a deployment goes once its instances are torn down")
        }
        if let d = o.dryRun, d != ["All"] && !d.isEmpty {
            throw APIStatus.badRequest("dryRun: the only dry run is All; got \(d)")
        }
        return o
    }
}
