import AMPDKVPool
import AMPDPKI
import ArgumentParser
import Foundation
import Logging
import NIOSSL

/// `ampd kvpool-bench`: KV block transfer through a real KV pool endpoint on loopback, over
/// mutual TLS and, as the reference measured in the same run, over plain TCP with the same
/// frames and store; plus the probe-hit path (a prefix the pool already holds is leased, not
/// sent). Prints a table (`Benchmarks/kvpool.sh`).
struct KVPoolBenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kvpool-bench", abstract: "Measure KV pool block transfer over mutual TLS against plain TCP, and the probe-hit path.")

    @Option(help: "Seconds per measured case.")
    var seconds = 3.0

    @Option(help: "Bytes per block, in KiB (360: one 16-token block of SmolLM2-135M's KV).")
    var blockKib = 360

    @Option(help: "Blocks per request.")
    var blocksPerRequest = 16

    func run() async throws {
        guard seconds > 0, blockKib > 0, blocksPerRequest > 0 else { throw ValidationError("--seconds, --block-kib and --blocks-per-request must be positive") }
        let logger = Logger(label: "kvpool-bench")
        let ca = try CertificateAuthority.create(commonName: "bench-ca")
        let caPEM = try ca.certificatePEM
        let leaf = try ca.issue(commonName: "agent", dnsNames: ["localhost"], ipAddresses: ["127.0.0.1"], validity: 3600)
        let serverTLS = try KVPoolTLS.server(certificatePEM: leaf.certificatePEM, privateKeyPEM: leaf.privateKeyPEM, caPEM: caPEM)
        let (key, csr) = try CertificateAuthority.makeCSR(commonName: "gateway")
        let signed = try ca.sign(csrPEM: csr, commonName: "gateway", dnsNames: [], ipAddresses: [], validity: 3600)
        let clientTLS = try KVPoolTLS.client(certificatePEM: signed.certificatePEM, privateKeyPEM: key, caPEM: caPEM)

        let blockBytes = blockKib << 10
        print("KV pool transfer on loopback: \(blocksPerRequest) blocks of \(blockKib) KiB per request, \(seconds) s per case")
        print("transport  encryption    PUT MB/s   GET MB/s")
        var results: [String: (put: Double, get: Double)] = [:]
        for encrypt in [false, true] {
            for secure in [false, true] {
                let pools = KVPools()
                await pools.configure(["bench": KVPoolConfiguration(capacityBytes: 4 << 30, encrypt: encrypt)])
                let tls: (@Sendable () -> NIOSSLContext)? = secure ? { @Sendable in serverTLS } : nil
                let server = try await KVPoolServer.bind(host: "127.0.0.1", port: 0, tls: tls, pools: pools, logger: logger)
                let serving = Task { try await server.run() }
                let r = try await measure(port: server.port, tls: secure ? clientTLS : nil, blockBytes: blockBytes)
                await server.close()
                _ = await serving.result
                serving.cancel()
                let name = "\(secure ? "mTLS" : "TCP")/\(encrypt ? "aes" : "none")"
                results[name] = r
                print(pad(secure ? "mutual TLS" : "plain TCP", 11) + pad(encrypt ? "aes-256-gcm" : "none", 12)
                      + String(format: "%10.0f %10.0f", r.put, r.get))
            }
        }
        for e in ["none", "aes"] {
            if let t = results["TCP/\(e)"], let s = results["mTLS/\(e)"] {
                print(String(format: "mutual TLS ÷ plain TCP, encryption %@: PUT %.2f×, GET %.2f×", e == "aes" ? "aes-256-gcm" : "none", s.put / t.put, s.get / t.get))
            }
        }
        try await probeHit(serverTLS: serverTLS, clientTLS: clientTLS, blockBytes: blockBytes, logger: logger)
    }

    /// PUT then GET (and DELETE) batches of fresh blocks for `seconds`; MB/s of each.
    func measure(port: Int, tls: NIOSSLContext?, blockBytes: Int) async throws -> (put: Double, get: Double) {
        var rng = SystemRandomNumberGenerator()
        let payload = (0..<blockBytes).map { _ in UInt8.random(in: 0...255, using: &rng) }
        let seconds = self.seconds, n = blocksPerRequest
        return try await KVPoolConnection.with(host: "127.0.0.1", port: port, tls: tls, pool: "bench") { conn in
            var putTime = Duration.zero, getTime = Duration.zero, bytes = 0
            var next: UInt64 = 1
            let clock = ContinuousClock()
            let end = clock.now + .milliseconds(Int64(seconds * 1000))
            while clock.now < end {
                let blocks = (0..<n).map { i -> KVBlock in
                    defer { next += 1 }
                    return KVBlock(hash: next, parent: i == 0 ? 0 : next - 1, data: payload)
                }
                let hashes = blocks.map(\.hash)
                let t0 = clock.now
                _ = try await conn.send(.put(tenant: "t", leaseSeconds: 0, blocks: blocks))
                let t1 = clock.now
                guard case .blocks(let back) = try await conn.send(.get(tenant: "t", hashes: hashes)), back.count == n else {
                    throw ValidationError("the pool lost blocks")
                }
                let t2 = clock.now
                _ = try await conn.send(.delete(tenant: "t", hashes: hashes))
                putTime += t1 - t0
                getTime += t2 - t1
                bytes += n * blockBytes
            }
            func mbps(_ d: Duration) -> Double { Double(bytes) / 1e6 / (Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18) }
            return (mbps(putTime), mbps(getTime))
        }
    }

    /// A 64-block prefix already in the pool: leasing it (what a push does on a hit) against sending it.
    func probeHit(serverTLS: NIOSSLContext, clientTLS: NIOSSLContext, blockBytes: Int, logger: Logger) async throws {
        let pools = KVPools()
        await pools.configure(["bench": KVPoolConfiguration(capacityBytes: 4 << 30)])
        let server = try await KVPoolServer.bind(host: "127.0.0.1", port: 0, tls: { serverTLS }, pools: pools, logger: logger)
        let serving = Task { try await server.run() }
        defer { serving.cancel() }
        let count = 64
        let blocks = (0..<count).map { KVBlock(hash: UInt64($0 + 1), parent: UInt64($0), data: [UInt8](repeating: UInt8($0), count: blockBytes)) }
        let hashes = blocks.map(\.hash)
        let (lease, put) = try await KVPoolConnection.with(host: "127.0.0.1", port: server.port, tls: clientTLS, pool: "bench") { conn in
            let clock = ContinuousClock()
            var putTimes: [Duration] = [], leaseTimes: [Duration] = []
            for _ in 0..<5 {
                _ = try await conn.send(.delete(tenant: "t", hashes: hashes))
                let t0 = clock.now
                for batch in stride(from: 0, to: count, by: blocksPerRequest) {
                    _ = try await conn.send(.put(tenant: "t", leaseSeconds: 60, blocks: Array(blocks[batch..<min(count, batch + blocksPerRequest)])))
                }
                putTimes.append(clock.now - t0)
                let t1 = clock.now
                guard case .count(count) = try await conn.send(.lease(tenant: "t", leaseSeconds: 60, hashes: hashes)) else {
                    throw ValidationError("the probe missed blocks that are there")
                }
                leaseTimes.append(clock.now - t1)
            }
            return (leaseTimes.sorted()[2], putTimes.sorted()[2])
        }
        await server.close()
        func ms(_ d: Duration) -> Double { Double(d.components.seconds) * 1000 + Double(d.components.attoseconds) / 1e15 }
        print(String(format: "probe hit: %d blocks (%.1f MB) already in the pool — LEASE %.2f ms vs sending them %.1f ms (median of 5, mutual TLS, aes-256-gcm)",
                     count, Double(count * blockBytes) / 1e6, ms(lease), ms(put)))
    }

    func pad(_ s: String, _ n: Int) -> String { s.padding(toLength: n, withPad: " ", startingAt: 0) }
}
