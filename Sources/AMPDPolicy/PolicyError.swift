/// Errors of the policy core, each naming what is wrong.
public enum PolicyError: Error, Equatable, CustomStringConvertible {
    case unknownProfile(String)
    case invalidProfile(String)
    case invalidInput(String)
    case infeasible(String)

    public var description: String {
        switch self {
        case .unknownProfile(let s): "unknown profile: \(s)"
        case .invalidProfile(let s): "invalid profile YAML: \(s)"
        case .invalidInput(let s): "invalid input: \(s)"
        case .infeasible(let s): "no feasible plan: \(s)"
        }
    }
}
