/// The OpenAPI 3.1 document of the controller API, served at `/openapi.yaml`.
/// `Docs/openapi.yaml` is the same text (a test keeps them equal; `ampd openapi > Docs/openapi.yaml`).
public enum OpenAPIDocument {
    public static let text = #"""
openapi: 3.1.0
info:
  title: ampd controller API
  version: v1alpha1
  description: |
    REST API of the ampd controller. Every call but /healthz, /readyz and /openapi.yaml needs
    `Authorization: Bearer <token>`; tokens come from the controller's token file
    (`token,user,role`; roles admin, reader, node). Errors are Kubernetes-style Status objects.
servers:
  - url: https://127.0.0.1:8443
security:
  - bearer: []
paths:
  /healthz:
    get:
      summary: Liveness probe
      security: []
      responses: {"200": {description: ok}}
  /readyz:
    get:
      summary: Readiness probe (503 until the controller has started)
      security: []
      responses: {"200": {description: ok}, "503": {$ref: "#/components/responses/Error"}}
  /openapi.yaml:
    get:
      summary: This document
      security: []
      responses: {"200": {description: OpenAPI document}}
  /version:
    get:
      summary: The server version kubectl shows (roles admin, reader, node)
      responses: {"200": {description: version}}
  /api:
    get:
      summary: "Kubernetes discovery: the core group's versions (none: ampd serves no core resources)"
      responses: {"200": {description: APIVersions}}
  /apis:
    get:
      summary: "Kubernetes discovery: the ampd.dev group (roles admin, reader, node)"
      responses: {"200": {description: APIGroupList}}
  /apis/ampd.dev:
    get:
      summary: "Kubernetes discovery: the ampd.dev group's versions"
      responses: {"200": {description: APIGroup}}
  /apis/ampd.dev/v1alpha1:
    get:
      summary: "Kubernetes discovery: the resources with their verbs, short names (sd) and categories; servingdeployments/scale is autoscaling/v1 Scale"
      responses: {"200": {description: APIResourceList}}
  /openapi/v3:
    get:
      summary: The OpenAPI v3 documents kubectl reads, by group-version
      responses: {"200": {description: "paths: {apis/ampd.dev/v1alpha1: {serverRelativeURL}}"}}
  /openapi/v3/apis/ampd.dev/v1alpha1:
    get:
      summary: "OpenAPI 3.0 document of ampd.dev/v1alpha1 with the ServingDeployment's structural schema (from the same types and limits as admission) and Kubernetes extensions: what kubectl explain and apply read"
      responses: {"200": {description: OpenAPI v3 document}}
  /metrics:
    get:
      summary: Prometheus metrics (roles admin, reader)
      responses: {"200": {description: Prometheus text format}}
  /apis/ampd.dev/v1alpha1/servingdeployments:
    get:
      summary: List deployments in all namespaces (roles admin, reader); with watch=true, a JSON line per change
      parameters: [{$ref: "#/components/parameters/watch"}, {$ref: "#/components/parameters/resourceVersion"}, {$ref: "#/components/parameters/timeoutSeconds"}, {$ref: "#/components/parameters/labelSelector"}, {$ref: "#/components/parameters/fieldSelector"}, {$ref: "#/components/parameters/includeObject"}]
      responses: {"200": {description: "list, or with watch=true one WatchEvent per line ({type: ADDED|MODIFIED|DELETED|ERROR, object}; ERROR carries a Status, 410 Expired when resourceVersion is too old)", content: {application/json: {schema: {$ref: "#/components/schemas/ServingDeploymentList"}}}}}
  /apis/ampd.dev/v1alpha1/namespaces/{namespace}/servingdeployments:
    parameters: [{$ref: "#/components/parameters/namespace"}]
    get:
      summary: List deployments in a namespace (roles admin, reader); with watch=true, a JSON line per change
      parameters: [{$ref: "#/components/parameters/watch"}, {$ref: "#/components/parameters/resourceVersion"}, {$ref: "#/components/parameters/timeoutSeconds"}, {$ref: "#/components/parameters/labelSelector"}, {$ref: "#/components/parameters/fieldSelector"}, {$ref: "#/components/parameters/includeObject"}]
      responses: {"200": {description: "list, or with watch=true one WatchEvent per line ({type: ADDED|MODIFIED|DELETED|ERROR, object}; ERROR carries a Status, 410 Expired when resourceVersion is too old)", content: {application/json: {schema: {$ref: "#/components/schemas/ServingDeploymentList"}}}}}
    post:
      summary: Create a deployment (role admin); 409 AlreadyExists when it exists
      parameters: [{$ref: "#/components/parameters/dryRun"}, {$ref: "#/components/parameters/fieldManager"}, {$ref: "#/components/parameters/fieldValidation"}]
      requestBody: {$ref: "#/components/requestBodies/Manifest"}
      responses:
        "201": {description: created, content: {application/json: {schema: {$ref: "#/components/schemas/ServingDeployment"}}}}
        "409": {$ref: "#/components/responses/Error"}
        "422": {$ref: "#/components/responses/Error"}
  /apis/ampd.dev/v1alpha1/namespaces/{namespace}/servingdeployments/{name}:
    parameters: [{$ref: "#/components/parameters/namespace"}, {$ref: "#/components/parameters/name"}]
    get:
      summary: Get a deployment (roles admin, reader)
      responses:
        "200": {description: the deployment, content: {application/json: {schema: {$ref: "#/components/schemas/ServingDeployment"}}}}
        "404": {$ref: "#/components/responses/Error"}
    put:
      summary: Apply (create or update) a deployment (role admin). With metadata.resourceVersion the update is conditional (409 Conflict when stale).
      parameters: [{$ref: "#/components/parameters/dryRun"}, {$ref: "#/components/parameters/fieldManager"}, {$ref: "#/components/parameters/fieldValidation"}]
      requestBody: {$ref: "#/components/requestBodies/Manifest"}
      responses:
        "200": {description: updated, content: {application/json: {schema: {$ref: "#/components/schemas/ServingDeployment"}}}}
        "201": {description: created, content: {application/json: {schema: {$ref: "#/components/schemas/ServingDeployment"}}}}
        "400": {$ref: "#/components/responses/Error"}
        "409": {$ref: "#/components/responses/Error"}
        "422": {$ref: "#/components/responses/Error"}
    patch:
      summary: "Patch a deployment (role admin): a JSON merge patch (RFC 7386) or JSON patch (RFC 6902) applied to the stored object and admitted as a whole, or server-side apply (application/apply-patch+yaml, fieldManager required: the body is the whole intended object, created if missing; managers are recorded in metadata.managedFields, field ownership is not tracked, so applies never conflict and force changes nothing). Strategic merge patch is 415."
      parameters:
        - {$ref: "#/components/parameters/dryRun"}
        - {$ref: "#/components/parameters/fieldManager"}
        - {$ref: "#/components/parameters/fieldValidation"}
        - {name: force, in: query, schema: {type: boolean}, description: "server-side apply only"}
      requestBody:
        required: true
        content:
          application/merge-patch+json: {schema: {type: object}}
          application/json-patch+json: {schema: {type: array, items: {type: object}}}
          application/apply-patch+yaml: {schema: {$ref: "#/components/schemas/ServingDeployment"}}
      responses:
        "200": {description: patched, content: {application/json: {schema: {$ref: "#/components/schemas/ServingDeployment"}}}}
        "400": {$ref: "#/components/responses/Error"}
        "404": {$ref: "#/components/responses/Error"}
        "415": {$ref: "#/components/responses/Error"}
        "422": {$ref: "#/components/responses/Error"}
    delete:
      summary: "Delete a deployment (role admin). It stays, with metadata.deletionTimestamp set, until its instances are torn down. A DeleteOptions body may carry preconditions (uid, resourceVersion: 409 when they do not hold), dryRun [All] and propagationPolicy Background or Foreground (both wait for the instances); Orphan, orphanDependents and gracePeriodSeconds are refused by name."
      parameters: [{$ref: "#/components/parameters/dryRun"}]
      responses:
        "202": {description: marked for deletion, content: {application/json: {schema: {$ref: "#/components/schemas/ServingDeployment"}}}}
        "404": {$ref: "#/components/responses/Error"}
  /apis/ampd.dev/v1alpha1/namespaces/{namespace}/servingdeployments/{name}/status:
    parameters: [{$ref: "#/components/parameters/namespace"}, {$ref: "#/components/parameters/name"}]
    get:
      summary: Get a deployment with its status (roles admin, reader)
      responses: {"200": {description: the deployment, content: {application/json: {schema: {$ref: "#/components/schemas/ServingDeployment"}}}}}
  /apis/ampd.dev/v1alpha1/namespaces/{namespace}/servingdeployments/{name}/scale:
    parameters: [{$ref: "#/components/parameters/namespace"}, {$ref: "#/components/parameters/name"}]
    get:
      summary: Get the scale subresource, an autoscaling/v1 Scale (roles admin, reader)
      responses: {"200": {description: scale, content: {application/json: {schema: {$ref: "#/components/schemas/Scale"}}}}}
    put:
      summary: "Set prefill and/or decode replica counts (role admin): spec.replicas is the decode pool (kubectl scale), spec.prefill and spec.decode name each pool. Fixed pools change spec replicas; autoscaled pools take a count within their bounds. Each change is recorded as a ScaledPool decision naming the user."
      parameters: [{$ref: "#/components/parameters/dryRun"}, {$ref: "#/components/parameters/fieldManager"}]
      requestBody: {required: true, content: {application/json: {schema: {$ref: "#/components/schemas/Scale"}}}}
      responses:
        "200": {description: scale, content: {application/json: {schema: {$ref: "#/components/schemas/Scale"}}}}
        "409": {$ref: "#/components/responses/Error"}
        "422": {$ref: "#/components/responses/Error"}
    patch:
      summary: "A merge or JSON patch of the Scale (role admin), as kubectl scale and kubectl patch --subresource=scale send; of spec.replicas and spec.decode (one pool), the one the patch changes decides"
      parameters: [{$ref: "#/components/parameters/dryRun"}, {$ref: "#/components/parameters/fieldManager"}]
      requestBody:
        required: true
        content:
          application/merge-patch+json: {schema: {type: object}}
          application/json-patch+json: {schema: {type: array, items: {type: object}}}
      responses:
        "200": {description: scale, content: {application/json: {schema: {$ref: "#/components/schemas/Scale"}}}}
        "415": {$ref: "#/components/responses/Error"}
        "422": {$ref: "#/components/responses/Error"}
  /apis/ampd.dev/v1alpha1/namespaces/{namespace}/servingdeployments/{name}/profile:
    parameters: [{$ref: "#/components/parameters/namespace"}, {$ref: "#/components/parameters/name"}]
    get:
      summary: The deployment's calibrated cost-model profiles as YAML (hardware `<profile>@<namespace>.<name>` with its time scales, and the model), for `ampd plan --profiles` (roles admin, reader)
      responses:
        "200": {description: profiles, content: {application/yaml: {schema: {type: string}}}}
        "400": {$ref: "#/components/responses/Error"}
        "404": {$ref: "#/components/responses/Error"}
  /apis/ampd.dev/v1alpha1/namespaces/{namespace}/servingdeployments/{name}/workload:
    parameters: [{$ref: "#/components/parameters/namespace"}, {$ref: "#/components/parameters/name"}]
    get:
      summary: The gateways' workload reports of the last 60 s and their combination, as the planner reads them (roles admin, reader)
      responses:
        "200": {description: reports, content: {application/json: {schema: {$ref: "#/components/schemas/WorkloadStatus"}}}}
        "404": {$ref: "#/components/responses/Error"}
    put:
      summary: A gateway reports what it observed over its window (role admin). Kept in memory per gateway (source); reports older than 60 s are ignored.
      requestBody: {required: true, content: {application/json: {schema: {$ref: "#/components/schemas/WorkloadReport"}}}}
      responses:
        "200": {description: reports now held, content: {application/json: {schema: {$ref: "#/components/schemas/WorkloadStatus"}}}}
        "404": {$ref: "#/components/responses/Error"}
        "422": {$ref: "#/components/responses/Error"}
  /apis/ampd.dev/v1alpha1/nodes:
    get:
      summary: List nodes (roles admin, reader, node)
      responses: {"200": {description: list, content: {application/json: {schema: {$ref: "#/components/schemas/NodeList"}}}}}
    post:
      summary: Register or re-register a node (roles admin, node — the bootstrap token)
      requestBody: {required: true, content: {application/json: {schema: {$ref: "#/components/schemas/NodeRegistration"}}}}
      responses:
        "201": {description: registered, content: {application/json: {schema: {$ref: "#/components/schemas/Node"}}}}
        "422": {$ref: "#/components/responses/Error"}
  /apis/ampd.dev/v1alpha1/nodes/{name}:
    parameters: [{$ref: "#/components/parameters/name"}]
    get:
      summary: Get a node (roles admin, reader, node)
      responses: {"200": {description: node, content: {application/json: {schema: {$ref: "#/components/schemas/Node"}}}}, "404": {$ref: "#/components/responses/Error"}}
    delete:
      summary: Remove a node (role admin); its instances are re-placed
      responses: {"200": {description: deleted}, "404": {$ref: "#/components/responses/Error"}}
  /apis/ampd.dev/v1alpha1/nodes/{name}/heartbeat:
    parameters: [{$ref: "#/components/parameters/name"}]
    put:
      summary: Heartbeat with load and instance reports (roles admin, node); answers the node's assignments
      requestBody: {required: true, content: {application/json: {schema: {$ref: "#/components/schemas/Heartbeat"}}}}
      responses:
        "200": {description: assignments, content: {application/json: {schema: {$ref: "#/components/schemas/NodeAssignments"}}}}
        "404": {$ref: "#/components/responses/Error"}
  /apis/ampd.dev/v1alpha1/nodes/{name}/assignments:
    parameters:
      - {$ref: "#/components/parameters/name"}
      - {name: after, in: query, schema: {type: integer}, description: "return once version > after (long-poll)"}
      - {name: timeoutSeconds, in: query, schema: {type: integer, maximum: 60}, description: "long-poll at most this long; 0 answers at once"}
    get:
      summary: The instances a node must run (roles admin, reader, node)
      responses: {"200": {description: assignments, content: {application/json: {schema: {$ref: "#/components/schemas/NodeAssignments"}}}}}
  /apis/ampd.dev/v1alpha1/certificatesigningrequests:
    post:
      summary: "Sign a CSR with the controller's CA: role node (node token, for a registered node; names from its registration) or gateway (admin token). Short-lived: --agent-cert-hours"
      requestBody: {required: true, content: {application/json: {schema: {$ref: "#/components/schemas/CertificateSigningRequest"}}}}
      responses:
        "201": {description: signed, content: {application/json: {schema: {$ref: "#/components/schemas/SignedCertificate"}}}}
        "403": {$ref: "#/components/responses/Error"}
        "404": {$ref: "#/components/responses/Error"}
        "422": {$ref: "#/components/responses/Error"}
  /apis/ampd.dev/v1alpha1/revokedcertificates:
    get:
      summary: Serials of revoked certificates (a deleted node's); KV pool endpoints refuse them (roles admin, reader, node)
      responses: {"200": {description: revocation list, content: {application/json: {schema: {type: object, properties: {serials: {type: array, items: {type: string}}}}}}}}
  /apis/ampd.dev/v1alpha1/decisions:
    get:
      summary: Controller decisions, oldest first (roles admin, reader)
      parameters:
        - {name: deployment, in: query, schema: {type: string}, description: "name (namespace default) or namespace/name"}
        - {name: since, in: query, schema: {type: integer}, description: "only records with seq > since"}
        - {name: limit, in: query, schema: {type: integer, maximum: 5000}}
        - {name: waitSeconds, in: query, schema: {type: integer, maximum: 60}, description: "long-poll for new records"}
      responses: {"200": {description: decisions, content: {application/json: {schema: {$ref: "#/components/schemas/DecisionList"}}}}}
components:
  securitySchemes:
    bearer: {type: http, scheme: bearer}
  parameters:
    namespace: {name: namespace, in: path, required: true, schema: {type: string}}
    name: {name: name, in: path, required: true, schema: {type: string}}
    watch: {name: watch, in: query, description: "true: stream changes (ADDED, MODIFIED, DELETED) as JSON lines instead of listing", schema: {type: boolean}}
    resourceVersion: {name: resourceVersion, in: query, description: "with watch: the changes after this version (absent or 0: the current objects first, as ADDED)", schema: {type: string}}
    timeoutSeconds: {name: timeoutSeconds, in: query, description: "with watch: end the stream after this many seconds", schema: {type: integer, minimum: 1}}
    labelSelector: {name: labelSelector, in: query, description: "k=v, k!=v, k in (a,b), k notin (a,b), k, !k; joined by commas. On a watch, an object that stops matching is DELETED, one that comes to match ADDED", schema: {type: string}}
    fieldSelector: {name: fieldSelector, in: query, description: "metadata.name or metadata.namespace with =, == or != (others refused)", schema: {type: string}}
    includeObject: {name: includeObject, in: query, description: "with Accept as=Table: what each row carries (None, Metadata (default), Object)", schema: {enum: [None, Metadata, Object]}}
    dryRun: {name: dryRun, in: query, description: "All: everything but the write; the answer is the object as it would be", schema: {enum: [All]}}
    fieldManager: {name: fieldManager, in: query, description: "recorded in metadata.managedFields (default: the user); required for server-side apply", schema: {type: string, maxLength: 128}}
    fieldValidation: {name: fieldValidation, in: query, description: "unknown fields: Strict (default, refused by name), Warn (dropped, a Warning header each), Ignore (dropped)", schema: {enum: [Strict, Warn, Ignore]}}
  requestBodies:
    Manifest:
      required: true
      content:
        application/json: {schema: {$ref: "#/components/schemas/ServingDeployment"}}
        application/yaml: {schema: {$ref: "#/components/schemas/ServingDeployment"}}
  responses:
    Error:
      description: Kubernetes-style Status
      content: {application/json: {schema: {$ref: "#/components/schemas/Status"}}}
  schemas:
    CertificateSigningRequest:
      type: object
      required: [name, role, csrPEM]
      properties:
        name: {type: string}
        role: {enum: [node, gateway]}
        csrPEM: {type: string, description: PEM PKCS#10 request; the key never leaves the requester}
        dnsNames: {type: array, items: {type: string}}
        ipAddresses: {type: array, items: {type: string}}
    SignedCertificate:
      type: object
      properties:
        certificatePEM: {type: string}
        caPEM: {type: string}
        serial: {type: string}
        notValidAfter: {type: string, format: date-time}
    Status:
      type: object
      properties:
        kind: {const: Status}
        status: {const: Failure}
        reason: {enum: [BadRequest, Unauthorized, Forbidden, NotFound, AlreadyExists, Conflict, Invalid, MethodNotAllowed, ServiceUnavailable, InternalError]}
        code: {type: integer}
        message: {type: string}
        details:
          type: object
          properties:
            name: {type: string}
            kind: {type: string}
            causes: {type: array, items: {type: object, properties: {field: {type: string}, message: {type: string}}}}
    ObjectMeta:
      type: object
      required: [name]
      properties:
        name: {type: string}
        namespace: {type: string}
        labels: {type: object, additionalProperties: {type: string}}
        annotations: {type: object, additionalProperties: {type: string}}
        uid: {type: string, readOnly: true}
        generation: {type: integer, readOnly: true}
        resourceVersion: {type: string}
        creationTimestamp: {type: string, readOnly: true}
        deletionTimestamp: {type: string, readOnly: true}
        finalizers: {type: array, items: {type: string}, readOnly: true}
        managedFields:
          type: array
          readOnly: true
          description: who wrote the object and how (managers, not per-field ownership)
          items: {type: object, properties: {manager: {type: string}, operation: {enum: [Apply, Update]}, apiVersion: {type: string}, time: {type: string}, subresource: {type: string}, fieldsType: {const: FieldsV1}, fieldsV1: {type: object}}}
    Pool:
      type: object
      additionalProperties: false
      properties:
        replicas: {type: integer, minimum: 0, maximum: 1024}
        autoscale: {type: object, additionalProperties: false, required: [min, max], properties: {min: {type: integer}, max: {type: integer}}}
        parallelism: {type: object, additionalProperties: false, required: [tensor], properties: {tensor: {enum: [1, 2, 4, 8]}}}
        resources: {type: object, additionalProperties: false, required: [accelerator], properties: {accelerator: {type: string}, count: {type: integer}}}
    ServingDeployment:
      type: object
      required: [apiVersion, kind, metadata, spec]
      additionalProperties: false
      properties:
        apiVersion: {const: ampd.dev/v1alpha1}
        kind: {const: ServingDeployment}
        metadata: {$ref: "#/components/schemas/ObjectMeta"}
        spec:
          type: object
          additionalProperties: false
          required: [model, slo, decode]
          properties:
            model:
              type: object
              additionalProperties: false
              required: [name, source]
              properties:
                name: {type: string}
                source: {type: object, additionalProperties: false, properties: {path: {type: string}, pip: {type: string}, file: {type: string}}}
                format: {const: gguf}
            slo:
              type: object
              additionalProperties: false
              required: [ttftMs, tpotMs]
              properties:
                ttftMs: {type: number, exclusiveMinimum: 0, maximum: 600000}
                tpotMs: {type: number, exclusiveMinimum: 0, maximum: 60000}
                attainmentTarget: {type: number, exclusiveMinimum: 0, maximum: 1}
            prefill: {$ref: "#/components/schemas/Pool"}
            decode: {$ref: "#/components/schemas/Pool"}
            routing:
              type: object
              additionalProperties: false
              required: [policy]
              properties:
                policy: {enum: [ampd, ampd-paper, conditional-pd, static-pd, colocated]}
                alpha: {type: number}
                beta: {type: number}
                reorderWindow: {type: integer, minimum: 1, maximum: 6}
                conditionalThresholdTokens: {type: integer}
                onPrefillUnavailable: {enum: [aggregate, fail]}
                maxRoundsInFlight: {type: integer, minimum: 1, maximum: 100000}
            planner:
              type: object
              additionalProperties: false
              required: [mode]
              properties:
                mode: {enum: [auto, suggest, "off"]}
                intervalSeconds: {type: integer, minimum: 5, maximum: 3600}
            kvPool:
              type: object
              additionalProperties: false
              properties:
                blockTokens: {type: integer}
                capacityPerAgent: {type: [string, integer]}
                tls: {type: object, additionalProperties: false, required: [mode], properties: {mode: {enum: [mutual, disabled]}, allowInsecure: {type: boolean}}}
                tenantIsolation: {type: boolean}
                encryption: {enum: [aes-256-gcm, none]}
                onTransferFailure: {enum: [recompute, fail]}
                leaseSeconds: {type: integer, minimum: 1, maximum: 3600, description: seconds pushed KV stays reserved for its import}
        status:
          type: object
          readOnly: true
          properties:
            observedGeneration: {type: integer}
            conditions:
              type: array
              items:
                type: object
                properties:
                  type: {enum: [Ready, Progressing, Degraded]}
                  status: {enum: ["True", "False", Unknown]}
                  reason: {type: string}
                  message: {type: string}
                  lastTransitionTime: {type: string}
                  observedGeneration: {type: integer}
            pools:
              type: object
              properties:
                prefill: {$ref: "#/components/schemas/PoolStatus"}
                decode: {$ref: "#/components/schemas/PoolStatus"}
            assignments: {type: array, items: {$ref: "#/components/schemas/InstanceAssignment"}}
            scaleOverride: {type: object, properties: {prefill: {type: integer}, decode: {type: integer}}}
            planner:
              type: object
              description: The planner's last run (planner.mode auto or suggest).
              properties:
                mode: {enum: [auto, suggest, "off"]}
                lastUpdateTime: {type: string}
                outcome: {enum: [changed, kept, pending, infeasible, waiting]}
                plan: {type: string, description: "P<tp,replicas> D<tp,replicas>"}
                predictedSessionAttainment: {type: number}
                predictedRoundAttainment: {type: number}
                observedRoundAttainment: {type: number}
                runningPredictedRoundAttainment: {type: number, description: the running plan's prediction, which the observed attainment is compared with}
                reason: {type: string}
                workload: {$ref: "#/components/schemas/WorkloadSummary"}
                calibration:
                  type: object
                  description: The cost model in force, calibrated online from the engines' timed steps.
                  properties:
                    profile: {type: string}
                    prefill: {$ref: "#/components/schemas/CalibrationPhase"}
                    decode: {$ref: "#/components/schemas/CalibrationPhase"}
                    coreSharing: {type: number, description: kernel threads per core the running plan implies}
                    kvWork:
                      type: object
                      description: what a KV export or import holds an engine for
                      properties: {overheadSeconds: {type: number}, secondsPerToken: {type: number}, samples: {type: integer}, inForce: {type: boolean}}
                sloShortfall: {type: string, description: set when no plan within the bounds meets the SLO; names the bottleneck and the tightest SLO met}
                mismatch: {type: string, description: set while observed attainment stays more than 10 points below the prediction; names the component}
    CalibrationPhase:
      type: object
      properties:
        scale: {type: number, description: observed ÷ profile time}
        samples: {type: integer}
        inForce: {type: boolean}
        profileError: {type: number, description: relative error of recent steps' total time under the profile}
        calibratedError: {type: number, description: the same under the calibration in force when each step arrived}
    WorkloadReport:
      type: object
      additionalProperties: false
      required: [source, windowSeconds, sessions, rounds, meanInitialPrefillTokens, meanIncrementalPrefillTokens, prefillCV, meanDecodeTokens, meanThinkSeconds, localShare]
      properties:
        source: {type: string, description: the reporting gateway (a DNS label)}
        windowSeconds: {type: number}
        sessions: {type: integer, description: new sessions in the window}
        rounds: {type: integer, description: rounds completed in the window}
        meanInitialPrefillTokens: {type: number}
        meanIncrementalPrefillTokens: {type: number}
        prefillCV: {type: number}
        meanDecodeTokens: {type: number}
        meanThinkSeconds: {type: number}
        localShare: {type: number, minimum: 0, maximum: 1}
        roundAttainment: {type: number, minimum: 0, maximum: 1}
        ttftP50Seconds: {type: number}
        ttftP95Seconds: {type: number}
        tpotP50Seconds: {type: number}
        tpotP95Seconds: {type: number}
        ttftAttainment: {type: number, description: share of rounds within the TTFT SLO alone}
        tpotAttainment: {type: number, description: share of rounds within the TPOT SLO alone}
    WorkloadSummary:
      type: object
      properties:
        sources: {type: array, items: {type: string}}
        sessionRate: {type: number}
        roundRate: {type: number}
        meanRounds: {type: number}
        meanInitialPrefillTokens: {type: number}
        meanIncrementalPrefillTokens: {type: number}
        prefillCV: {type: number}
        meanDecodeTokens: {type: number}
        meanThinkSeconds: {type: number}
        localShare: {type: number}
        roundAttainment: {type: number}
        ttftP95Seconds: {type: number}
        tpotP95Seconds: {type: number}
        ttftAttainment: {type: number}
        tpotAttainment: {type: number}
    WorkloadStatus:
      type: object
      properties:
        reports: {type: array, items: {$ref: "#/components/schemas/WorkloadReport"}}
        summary: {$ref: "#/components/schemas/WorkloadSummary"}
    PoolStatus:
      type: object
      properties: {desired: {type: integer}, placed: {type: integer}, ready: {type: integer}}
    InstanceAssignment:
      type: object
      properties:
        instance: {type: string}
        role: {enum: [prefill, decode]}
        node: {type: string}
        accelerators: {type: integer}
    ServingDeploymentList:
      type: object
      properties:
        kind: {const: ServingDeploymentList}
        metadata: {type: object, properties: {resourceVersion: {type: string}}}
        items: {type: array, items: {$ref: "#/components/schemas/ServingDeployment"}}
    Scale:
      type: object
      required: [metadata, spec]
      properties:
        apiVersion: {const: autoscaling/v1}
        kind: {const: Scale}
        metadata: {$ref: "#/components/schemas/ObjectMeta"}
        spec: {type: object, properties: {replicas: {type: integer, description: the decode pool}, prefill: {type: integer}, decode: {type: integer}}}
        status: {type: object, readOnly: true, properties: {replicas: {type: integer, description: ready decode instances}, prefill: {$ref: "#/components/schemas/PoolStatus"}, decode: {$ref: "#/components/schemas/PoolStatus"}}}
    NodeCapacity:
      type: object
      required: [accelerator, count, memoryBytes]
      properties: {accelerator: {type: string}, count: {type: integer}, memoryBytes: {type: integer},
                   cores: {type: integer, description: "CPU cores of the host; engine slots beyond them share cores"}}
    NodeRegistration:
      type: object
      required: [name, capacity]
      properties:
        name: {type: string}
        capacity: {$ref: "#/components/schemas/NodeCapacity"}
        addresses: {type: array, items: {type: string}}
        endpoints: {type: object, description: "ports of the agent's instance API and KV pool endpoint (mutual TLS)", properties: {api: {type: integer}, kv: {type: integer}}}
    InstanceReport:
      type: object
      properties:
        instance: {type: string}
        deployment: {type: string}
        phase: {enum: [Starting, Running, Draining, Failed]}
        message: {type: string, description: why an instance failed or what it waits for}
        role: {enum: [prefill, decode]}
    Heartbeat:
      type: object
      required: [load, instances]
      properties:
        load:
          type: object
          properties: {queueLength: {type: integer}, runningSequences: {type: integer}, kvBlocksUsed: {type: integer}, kvBlocksFree: {type: integer}, tokensPerSecond: {type: number}}
        instances: {type: array, items: {$ref: "#/components/schemas/InstanceReport"}}
        pools: {type: array, items: {$ref: "#/components/schemas/KVPoolReport"}}
        timings:
          type: array
          description: Engine steps each instance timed since the last heartbeat, for calibration (at most 256 per instance; not stored).
          items:
            type: object
            required: [instance, deployment, role, tensor, coreSharing, steps]
            properties:
              instance: {type: string}
              deployment: {type: string}
              role: {enum: [prefill, decode]}
              tensor: {type: integer, minimum: 1, maximum: 64}
              coreSharing: {type: number, minimum: 1, description: kernel threads of the node's running instances per core}
              steps:
                type: array
                maxItems: 256
                items:
                  type: object
                  required: [decodeSequences, decodeContext, prefill, seconds]
                  properties:
                    decodeSequences: {type: integer, minimum: 0}
                    decodeContext: {type: integer, minimum: 0}
                    prefill: {type: array, items: {type: object, properties: {history: {type: integer, minimum: 0}, new: {type: integer, minimum: 1}}}}
                    seconds: {type: number, exclusiveMinimum: 0}
              kvWork:
                type: array
                maxItems: 256
                description: KV exports and imports the engine ran (they hold it meanwhile)
                items:
                  type: object
                  required: [tokens, seconds, export]
                  properties: {tokens: {type: integer, minimum: 0}, seconds: {type: number, minimum: 0}, export: {type: boolean}}
    KVPoolReport:
      type: object
      description: a deployment's KV pool as the agent runs it
      properties:
        deployment: {type: string}
        capacityBytes: {type: integer}
        usedBytes: {type: integer}
        blocks: {type: integer}
        encryption: {enum: [aes-256-gcm, none]}
        tenantIsolation: {type: boolean}
        leaseSeconds: {type: integer}
        blockTokens: {type: integer}
    Node:
      type: object
      properties:
        metadata: {$ref: "#/components/schemas/ObjectMeta"}
        spec: {type: object, properties: {capacity: {$ref: "#/components/schemas/NodeCapacity"}, addresses: {type: array, items: {type: string}}, unschedulable: {type: boolean}}}
        status: {type: object, properties: {phase: {enum: [Ready, NotReady, Unknown]}, lastHeartbeatTime: {type: string}, load: {type: object}, instances: {type: array, items: {$ref: "#/components/schemas/InstanceReport"}}, pools: {type: array, items: {$ref: "#/components/schemas/KVPoolReport"}}}}
    NodeList:
      type: object
      properties: {items: {type: array, items: {$ref: "#/components/schemas/Node"}}}
    NodeAssignments:
      type: object
      properties:
        node: {type: string}
        version: {type: integer}
        instances:
          type: array
          items:
            type: object
            properties: {instance: {type: string}, deployment: {type: string}, role: {enum: [prefill, decode]}, accelerators: {type: integer}, tensor: {type: integer}, model: {type: object}, kvPool: {type: object, description: the deployment's spec.kvPool with defaults}}
    Decision:
      type: object
      properties:
        seq: {type: integer}
        ts: {type: string}
        deployment: {type: string}
        event: {type: string, examples: [ScaledPool, PlacedInstance, ReplacedInstance, RemovedInstance, EvictedInstance, InstanceUnschedulable, Finalized]}
        reason: {type: string}
        actor: {type: string}
        message: {type: string}
        fields: {type: object}
    DecisionList:
      type: object
      properties:
        items: {type: array, items: {$ref: "#/components/schemas/Decision"}}
        lastSeq: {type: integer}
"""#
}
