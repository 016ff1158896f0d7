import AMPDPolicy

/// Finds the cost-model profiles of a live deployment: its model by name, its
/// accelerators by kind. Pure.
public enum ProfileMatch {
    /// The catalog model whose name is the longest prefix of the deployment's model name,
    /// compared without case or punctuation: `SmolLM2-135M-Instruct` → `SmolLM2-135M`,
    /// `Llama-3.1-70B-Instruct` → `Llama-3.1-70B`.
    public static func model(named name: String, in catalog: ProfileCatalog) throws(AutoscalingProblem) -> ModelProfile {
        let key = normalized(name)
        let hits = catalog.models.filter { !normalized($0.name).isEmpty && key.hasPrefix(normalized($0.name)) }
        guard let best = hits.max(by: { normalized($0.name).count < normalized($1.name).count }) else {
            throw .noProfile("no cost-model profile for model \"\(name)\" (known: \(catalog.models.map(\.name).joined(separator: ", "))); the planner cannot predict it")
        }
        return best
    }

    /// The hardware profile of an accelerator kind: `nvidia-h100` → `H100`, ...; `cpu` with
    /// `perInstance` cores per engine instance → `cpu-<N>core` (the profiles fitted to the
    /// native engine running that many threads).
    public static func hardware(kind: String, perInstance: Int = 1, in catalog: ProfileCatalog) throws(AutoscalingProblem) -> HardwareProfile {
        var key = normalized(kind)
        if key.hasPrefix("nvidia") { key.removeFirst("nvidia".count) }
        if key == "cpu" {
            guard let cpu = catalog.hardware.first(where: { normalized($0.name) == "cpu\(perInstance)core" }) else {
                throw .noProfile("no CPU profile for \(perInstance) cores per instance (known: \(catalog.hardware.filter { $0.name.hasPrefix("cpu") }.map(\.name).joined(separator: ", ")))")
            }
            return cpu
        }
        guard let h = catalog.hardware.first(where: { normalized($0.name) == key }) else {
            throw .noProfile("no hardware profile for accelerator \"\(kind)\" (known: \(catalog.hardware.map(\.name).joined(separator: ", ")))")
        }
        return h
    }

    static func normalized(_ s: String) -> String {
        String(s.lowercased().unicodeScalars.filter { ("a"..."z").contains($0) || ("0"..."9").contains($0) }.map(Character.init))
    }
}

/// Why the planner cannot run for a deployment; the message says what to change.
public enum AutoscalingProblem: Error, Sendable, Equatable, CustomStringConvertible {
    case noProfile(String)
    case unsupported(String)

    public var description: String {
        switch self {
        case .noProfile(let s), .unsupported(let s): s
        }
    }
}
