import AMPDAPI
import Crypto
import Foundation

/// The OpenAPI v3 documents kubectl reads (`/openapi/v3`, then one per group-version): the
/// ServingDeployment schema for `kubectl explain` and client-side checks, and the operations
/// with their Kubernetes extensions, so kubectl sees that PATCH takes merge, JSON and apply
/// patches and the `fieldValidation` parameter (it then leaves validation to the server).
enum KubernetesOpenAPI {
    static let schemaName = "dev.ampd.v1alpha1.ServingDeployment"
    static let listName = "dev.ampd.v1alpha1.ServingDeploymentList"
    static let scaleName = "io.k8s.api.autoscaling.v1.Scale"

    static let groupVersionDocument: Data = {
        let data = (try? JSONCoding.encoder.encode(document)) ?? Data("{}".utf8)
        return data
    }()

    static var paths: JSONValue {
        let hash = SHA256.hash(data: groupVersionDocument).map { String(format: "%02X", $0) }.joined().prefix(32)
        return .object(["paths": .object([
            "apis/\(APIGroup.group)/\(APIGroup.version)": .object(["serverRelativeURL": .string("/openapi/v3/apis/\(APIGroup.group)/\(APIGroup.version)?hash=\(hash)")]),
        ])])
    }

    static func gvk(_ kind: String, group: String = APIGroup.group, version: String = APIGroup.version) -> JSONValue {
        .object(["group": .string(group), "version": .string(version), "kind": .string(kind)])
    }

    static func ref(_ name: String) -> JSONValue { .object(["$ref": .string("#/components/schemas/\(name)")]) }

    static func query(_ name: String, _ description: String) -> JSONValue {
        .object(["name": .string(name), "in": .string("query"), "description": .string(description), "schema": .object(["type": .string("string")])])
    }

    static func pathParam(_ name: String) -> JSONValue {
        .object(["name": .string(name), "in": .string("path"), "required": .bool(true), "schema": .object(["type": .string("string")])])
    }

    static let writeParams: [JSONValue] = [
        query("dryRun", "All: everything but the write"),
        query("fieldManager", "recorded in metadata.managedFields (required for server-side apply)"),
        query("fieldValidation", "Strict (default: unknown fields refused), Warn (dropped, with a Warning each) or Ignore (dropped)"),
    ]

    static func operation(_ id: String, _ action: String, kind: String, group: String = APIGroup.group, version: String = APIGroup.version,
                          params: [JSONValue] = [], body: [String: JSONValue]? = nil, response: JSONValue) -> JSONValue {
        var o: [String: JSONValue] = [
            "operationId": .string(id),
            "x-kubernetes-action": .string(action),
            "x-kubernetes-group-version-kind": gvk(kind, group: group, version: version),
            "responses": .object(["200": .object(["description": .string("OK"), "content": .object(["application/json": .object(["schema": response])])])]),
        ]
        if !params.isEmpty { o["parameters"] = .array(params) }
        if let body { o["requestBody"] = .object(["content": .object(body.mapValues { .object(["schema": $0]) })]) }
        return .object(o)
    }

    static var document: JSONValue {
        let one = ref(schemaName), list = ref(listName), scale = ref(scaleName)
        let patchBody: [String: JSONValue] = [
            PatchType.merge.rawValue: .object(["type": .string("object")]),
            PatchType.json.rawValue: .object(["type": .string("array")]),
            PatchType.apply.rawValue: .object(["type": .string("object")]),
        ]
        let base = "/apis/\(APIGroup.group)/\(APIGroup.version)"
        let collection = "\(base)/namespaces/{namespace}/servingdeployments"
        let watchParams = [query("labelSelector", "k=v, k!=v, k in (a,b), k notin (a,b), k, !k"),
                           query("fieldSelector", "metadata.name or metadata.namespace, = or !="),
                           query("watch", "true: a JSON line per change"), query("resourceVersion", "with watch: the changes after it"),
                           query("timeoutSeconds", "with watch: end the stream after this long")]
        let paths: [String: JSONValue] = [
            "\(base)/servingdeployments": .object([
                "get": operation("listServingDeploymentForAllNamespaces", "list", kind: ServingDeployment.kind, params: watchParams, response: list),
            ]),
            collection: .object([
                "parameters": .array([pathParam("namespace")]),
                "get": operation("listNamespacedServingDeployment", "list", kind: ServingDeployment.kind, params: watchParams, response: list),
                "post": operation("createNamespacedServingDeployment", "post", kind: ServingDeployment.kind, params: writeParams,
                                  body: ["application/json": one, "application/yaml": one], response: one),
            ]),
            "\(collection)/{name}": .object([
                "parameters": .array([pathParam("namespace"), pathParam("name")]),
                "get": operation("readNamespacedServingDeployment", "get", kind: ServingDeployment.kind, response: one),
                "put": operation("replaceNamespacedServingDeployment", "put", kind: ServingDeployment.kind, params: writeParams,
                                 body: ["application/json": one, "application/yaml": one], response: one),
                "patch": operation("patchNamespacedServingDeployment", "patch", kind: ServingDeployment.kind,
                                   params: writeParams + [query("force", "server-side apply: true or false (field ownership is not tracked, so applies never conflict)")],
                                   body: patchBody, response: one),
                "delete": operation("deleteNamespacedServingDeployment", "delete", kind: ServingDeployment.kind, params: [query("dryRun", "All")],
                                    response: one),
            ]),
            "\(collection)/{name}/scale": .object([
                "parameters": .array([pathParam("namespace"), pathParam("name")]),
                "get": operation("readNamespacedServingDeploymentScale", "get", kind: Scale.kind, group: "autoscaling", version: "v1", response: scale),
                "put": operation("replaceNamespacedServingDeploymentScale", "put", kind: Scale.kind, group: "autoscaling", version: "v1",
                                 params: [query("dryRun", "All"), query("fieldManager", "recorded on the deployment")],
                                 body: ["application/json": scale], response: scale),
                "patch": operation("patchNamespacedServingDeploymentScale", "patch", kind: Scale.kind, group: "autoscaling", version: "v1",
                                   params: [query("dryRun", "All"), query("fieldManager", "recorded on the deployment")],
                                   body: [PatchType.merge.rawValue: .object(["type": .string("object")]), PatchType.json.rawValue: .object(["type": .string("array")])],
                                   response: scale),
            ]),
        ]
        var schema = ServingDeployment.schema.json
        if case .object(var o) = schema {
            o["x-kubernetes-group-version-kind"] = .array([gvk(ServingDeployment.kind)])
            schema = .object(o)
        }
        let listSchema: JSONValue = .object([
            "type": .string("object"), "description": .string("A list of ServingDeployments."),
            "required": .array([.string("items")]),
            "properties": .object([
                "apiVersion": .object(["type": .string("string")]), "kind": .object(["type": .string("string")]),
                "metadata": .object(["type": .string("object"), "properties": .object(["resourceVersion": .object(["type": .string("string")])])]),
                "items": .object(["type": .string("array"), "items": one]),
            ]),
            "x-kubernetes-group-version-kind": .array([gvk("ServingDeploymentList")]),
        ])
        let scaleSchema: JSONValue = .object([
            "type": .string("object"),
            "description": .string("The scale subresource: spec.replicas is the decode pool (kubectl scale); spec.prefill and spec.decode name each pool."),
            "properties": .object([
                "apiVersion": .object(["type": .string("string")]), "kind": .object(["type": .string("string")]),
                "metadata": .object(["type": .string("object"), "x-kubernetes-preserve-unknown-fields": .bool(true)]),
                "spec": .object(["type": .string("object"), "properties": .object([
                    "replicas": .object(["type": .string("integer"), "description": .string("The decode pool's instances.")]),
                    "prefill": .object(["type": .string("integer"), "description": .string("The prefill pool's instances.")]),
                    "decode": .object(["type": .string("integer"), "description": .string("The decode pool's instances (the same as replicas).")]),
                ])]),
                "status": .object(["type": .string("object"), "x-kubernetes-preserve-unknown-fields": .bool(true)]),
            ]),
            "x-kubernetes-group-version-kind": .array([gvk(Scale.kind, group: "autoscaling", version: "v1")]),
        ])
        return .object([
            "openapi": .string("3.0.0"),
            "info": .object(["title": .string("ampd"), "version": .string(APIGroup.version)]),
            "paths": .object(paths),
            "components": .object([
                "schemas": .object([schemaName: schema, listName: listSchema, scaleName: scaleSchema]),
                "securitySchemes": .object(["BearerToken": .object(["type": .string("apiKey"), "name": .string("authorization"), "in": .string("header")])]),
            ]),
        ])
    }
}
