/// String enums of the manifest decode with an error that lists every allowed value.
public protocol ManifestEnum: RawRepresentable, CaseIterable, Codable where RawValue == String {}

extension ManifestEnum {
    public init(from decoder: any Decoder) throws {
        let c = try decoder.singleValueContainer()
        let s = try c.decode(String.self)
        guard let v = Self(rawValue: s) else {
            throw DecodingError.dataCorruptedError(in: c, debugDescription: "must be one of \(Self.allowedList); got \"\(s)\"")
        }
        self = v
    }

    public static var allowedList: String { allCases.map(\.rawValue).joined(separator: ", ") }
}

extension RoutingPolicy: ManifestEnum {}
extension PrefillUnavailableAction: ManifestEnum {}
extension PlannerMode: ManifestEnum {}
extension TLSMode: ManifestEnum {}
extension KVEncryption: ManifestEnum {}
extension TransferFailureAction: ManifestEnum {}
extension InstanceRole: ManifestEnum {}
