/// Where the controller is and how to prove who we are. The controller writes it to
/// `<data-dir>/client.json` at start; the CLI and agents read it.
public struct ClientConfiguration: Codable, Sendable, Hashable {
    /// The controller's URL, or several replicas' URLs separated by commas (tried in turn).
    public var server: String
    /// PEM file of the controller's CA.
    public var certificateAuthority: String
    public var token: String

    public init(server: String, certificateAuthority: String, token: String) {
        self.server = server
        self.certificateAuthority = certificateAuthority
        self.token = token
    }

    /// The controller URLs, in the order to try them.
    public var servers: [String] {
        server.split(separator: ",").map { String($0).trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
    }
}
