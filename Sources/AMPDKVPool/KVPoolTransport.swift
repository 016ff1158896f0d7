import AMPDPKI
import Logging
import NIOCore
import NIOPosix
import NIOSSL

/// Splits the byte stream into KV pool frames; an impossible length is a
/// protocol error that closes the connection.
struct KVFrameDecoder: ByteToMessageDecoder {
    typealias InboundOut = ByteBuffer

    mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        guard let header = buffer.getBytes(at: buffer.readerIndex, length: min(4, buffer.readableBytes)) else { return .needMoreData }
        guard header.count == 4 else { return .needMoreData }
        var length = 0
        for b in header { length = length << 8 | Int(b) }
        guard length >= 5 else { throw KVPoolProtocolError(offset: 0, reason: "frame length \(length) is shorter than its 5-byte header") }
        guard length <= KVPoolCodec.maxFrameBytes else {
            throw KVPoolProtocolError(offset: 0, reason: "frame length \(length) exceeds the limit of \(KVPoolCodec.maxFrameBytes)")
        }
        guard buffer.readableBytes >= length + 4, let frame = buffer.readSlice(length: length + 4) else { return .needMoreData }
        context.fireChannelRead(Self.wrapInboundOut(frame))
        return .continue
    }
}

/// TLS settings of KV pool endpoints: both sides present a certificate from
/// the cluster CA and verify the other's chain (and validity period).
public enum KVPoolTLS {
    public static func server(certificatePEM: String, privateKeyPEM: String, caPEM: String) throws -> NIOSSLContext {
        var c = TLSConfiguration.makeServerConfiguration(
            certificateChain: try NIOSSLCertificate.fromPEMBytes(Array(certificatePEM.utf8)).map { .certificate($0) },
            privateKey: .privateKey(try NIOSSLPrivateKey(bytes: Array(privateKeyPEM.utf8), format: .pem)))
        c.trustRoots = .certificates(try NIOSSLCertificate.fromPEMBytes(Array(caPEM.utf8)))
        c.certificateVerification = .noHostnameVerification
        c.minimumTLSVersion = .tlsv12
        return try NIOSSLContext(configuration: c)
    }

    /// A client context; without a certificate it connects anonymously (and is refused).
    public static func client(certificatePEM: String?, privateKeyPEM: String?, caPEM: String) throws -> NIOSSLContext {
        var c = TLSConfiguration.makeClientConfiguration()
        if let certificatePEM, let privateKeyPEM {
            c.certificateChain = try NIOSSLCertificate.fromPEMBytes(Array(certificatePEM.utf8)).map { .certificate($0) }
            c.privateKey = .privateKey(try NIOSSLPrivateKey(bytes: Array(privateKeyPEM.utf8), format: .pem))
        }
        c.trustRoots = .certificates(try NIOSSLCertificate.fromPEMBytes(Array(caPEM.utf8)))
        c.certificateVerification = .noHostnameVerification
        c.minimumTLSVersion = .tlsv12
        return try NIOSSLContext(configuration: c)
    }
}

/// A KV pool endpoint: accepts mutual-TLS connections and answers frames from
/// the pool each names (`KVPools`). A malformed frame or a failed handshake
/// closes that connection with a logged reason; the server goes on.
public final class KVPoolServer: Sendable {
    public let pools: KVPools
    public let port: Int
    let channel: NIOAsyncChannel<NIOAsyncChannel<ByteBuffer, ByteBuffer>, Never>
    let logger: Logger
    let checkPeer: (@Sendable ([UInt8]) async -> String?)?
    /// Operations peers may send; others are answered `forbidden`.
    let remoteOperations: Set<KVPoolOpcode>

    /// Every operation (tools, benchmarks, tests).
    public static let allOperations: Set<KVPoolOpcode> = [.put, .get, .probe, .delete, .release, .lease]
    /// What an agent's endpoint serves peers: pushes into its pools (put, with a probe for the
    /// blocks already there, and a lease on them). Blocks are read, released and dropped only
    /// by the agent that holds them, for its own instances: no peer reads another's KV.
    public static let pushOnly: Set<KVPoolOpcode> = [.put, .probe, .lease]

    /// `tls` is read for every new connection, so a renewed certificate takes
    /// effect without dropping open connections. `checkPeer` is asked about the peer
    /// certificate (DER) on its first frame, and its answer (a reason) refuses the connection
    /// (`PeerCertificatePolicy`: a revoked, CA or server-only certificate).
    /// Without `tls` the endpoint speaks the same frames over plain TCP: only the
    /// transport benchmark's reference does that (agents always pass one, and
    /// manifests cannot turn TLS off).
    public static func bind(host: String, port: Int, tls: (@Sendable () -> NIOSSLContext)?, pools: KVPools, logger: Logger,
                            checkPeer: (@Sendable ([UInt8]) async -> String?)? = nil, remoteOperations: Set<KVPoolOpcode> = allOperations,
                            group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton) async throws -> KVPoolServer {
        let channel = try await ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 256)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .bind(host: host, port: port) { child in
                child.eventLoop.makeCompletedFuture {
                    if let tls { try child.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: tls())) }
                    try child.pipeline.syncOperations.addHandler(ByteToMessageHandler(KVFrameDecoder()))
                    return try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: child)
                }
            }
        return KVPoolServer(pools: pools, port: channel.channel.localAddress?.port ?? port, channel: channel, logger: logger, checkPeer: checkPeer,
                            remoteOperations: remoteOperations)
    }

    /// An endpoint serving one pool, named "" (tests, tools).
    public static func bind(host: String, port: Int, tls: NIOSSLContext, store: KVPoolStore, logger: Logger,
                            group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton) async throws -> KVPoolServer {
        try await bind(host: host, port: port, tls: { tls }, pools: KVPools(store), logger: logger, group: group)
    }

    init(pools: KVPools, port: Int, channel: NIOAsyncChannel<NIOAsyncChannel<ByteBuffer, ByteBuffer>, Never>, logger: Logger,
         checkPeer: (@Sendable ([UInt8]) async -> String?)?, remoteOperations: Set<KVPoolOpcode>) {
        self.pools = pools
        self.remoteOperations = remoteOperations
        self.port = port
        self.channel = channel
        self.logger = logger
        self.checkPeer = checkPeer
    }

    public struct Refused: Error, CustomStringConvertible {
        public let reason: String
        public var description: String { reason }
    }

    /// Serves until the listening channel closes (`close()`) or the task is cancelled.
    public func run() async throws {
        try await withThrowingDiscardingTaskGroup { group in
            try await channel.executeThenClose { inbound in
                for try await connection in inbound {
                    group.addTask { await self.serve(connection) }
                }
            }
        }
    }

    public func close() async {
        try? await channel.channel.close()
    }

    func serve(_ connection: NIOAsyncChannel<ByteBuffer, ByteBuffer>) async {
        let peer = connection.channel.remoteAddress?.description ?? "unknown"
        do {
            try await connection.executeThenClose { inbound, outbound in
                var checked = false
                for try await var frame in inbound {
                    if !checked, let checkPeer {
                        checked = true
                        guard let cert = try await connection.channel.nioSSL_peerCertificate().get() else { throw Refused(reason: "no client certificate") }
                        if let why = await checkPeer(try cert.toDERBytes()) { throw Refused(reason: why) }
                    }
                    let bytes = frame.readBytes(length: frame.readableBytes) ?? []
                    let (id, pool, request) = try KVPoolCodec.decodeRequest(bytes[...])
                    let response = remoteOperations.contains(request.opcode)
                        ? await pools.handle(request, pool: pool)
                        : .error(.forbidden, "\(request.opcode) is not served to peers: an agent's pools are read only by that agent")
                    try await outbound.write(ByteBuffer(bytes: KVPoolCodec.encode(response, to: request.opcode, id: id)))
                }
            }
        } catch {
            logger.warning("kv_pool_connection_closed", metadata: ["peer": "\(peer)", "reason": "\(error)"])
        }
    }
}

/// One mutual-TLS connection to a KV pool endpoint; requests are answered in order, and
/// address the pool named when the connection was opened.
public struct KVPoolConnection {
    var iterator: NIOAsyncChannelInboundStream<ByteBuffer>.AsyncIterator
    let outbound: NIOAsyncChannelOutboundWriter<ByteBuffer>
    let pool: String
    var nextID: UInt32 = 1

    public enum Failure: Error, CustomStringConvertible {
        case closed
        case mismatched(expected: UInt32, got: UInt32)
        case refused(KVPoolStatus, String)
        public var description: String {
            switch self {
            case .closed: "the KV pool endpoint closed the connection"
            case .mismatched(let e, let g): "KV pool response for request \(g), expected \(e)"
            case .refused(let s, let m): "KV pool refused the request (\(s)): \(m)"
            }
        }
    }

    /// Opens a connection, runs `body`, closes it. Without `tls`: plain TCP (the transport
    /// benchmark's reference only).
    public static func with<R: Sendable>(host: String, port: Int, tls: NIOSSLContext?, pool: String = "",
                                         group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
                                         _ body: (inout KVPoolConnection) async throws -> R) async throws -> R {
        let channel = try await ClientBootstrap(group: group)
            .connectTimeout(.seconds(5))
            .connect(host: host, port: port) { ch in
                ch.eventLoop.makeCompletedFuture {
                    if let tls { try ch.pipeline.syncOperations.addHandler(try NIOSSLClientHandler(context: tls, serverHostname: nil)) }
                    try ch.pipeline.syncOperations.addHandler(ByteToMessageHandler(KVFrameDecoder()))
                    return try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: ch)
                }
            }
        return try await channel.executeThenClose { inbound, outbound in
            let it = inbound.makeAsyncIterator()
            var conn = KVPoolConnection(iterator: it, outbound: outbound, pool: pool)
            return try await body(&conn)
        }
    }

    /// Writes bytes as they are (protocol tests send malformed frames with it)
    /// and waits for one response frame; nil when the server closes instead.
    public mutating func sendRaw(_ bytes: [UInt8]) async throws -> [UInt8]? {
        try await outbound.write(ByteBuffer(bytes: bytes))
        guard var frame = try await iterator.next() else { return nil }
        return frame.readBytes(length: frame.readableBytes)
    }

    /// Sends a request and waits for its response; a refusal throws.
    public mutating func send(_ request: KVPoolRequest) async throws -> KVPoolResponse {
        let id = nextID
        nextID &+= 1
        try await outbound.write(ByteBuffer(bytes: KVPoolCodec.encode(request, pool: pool, id: id)))
        guard var frame = try await iterator.next() else { throw Failure.closed }
        let bytes = frame.readBytes(length: frame.readableBytes) ?? []
        let (got, _, response) = try KVPoolCodec.decodeResponse(bytes[...])
        guard got == id else { throw Failure.mismatched(expected: id, got: got) }
        if case .error(let status, let message) = response { throw Failure.refused(status, message) }
        return response
    }
}
