// swift-tools-version:6.1
import PackageDescription

/// Settings shared by every target of ours: Swift 6 language mode (strict concurrency).
let strict: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
]

/// The engine's numeric kernels run 10–100× slower unoptimized: compile the
/// engine module optimized in every configuration, for AVX2/FMA/F16C on x86.
#if arch(x86_64)
let kernelFlags: [SwiftSetting] = [.unsafeFlags(["-O", "-target-cpu", "haswell"])]
#else
let kernelFlags: [SwiftSetting] = [.unsafeFlags(["-O"])]
#endif

let package = Package(
    name: "ampd",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "ampd", targets: ["ampd"]),
    ],
    dependencies: [
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1"),
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.37.0"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
        .package(url: "https://github.com/apple/swift-certificates.git", from: "1.21.1"),
        .package(url: "https://github.com/apple/swift-crypto.git", "3.12.3"..<"5.0.0"),
        .package(url: "https://github.com/apple/swift-asn1.git", from: "1.7.4"),
        .package(url: "https://github.com/jpsim/Yams.git", from: "6.2.2"),
        .package(url: "https://github.com/groue/GRDB.swift.git", from: "7.10.0"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
    ],
    targets: [
        // Pure: manifest types, strict decoding, validation, REST payloads. No I/O.
        .target(
            name: "AMPDAPI",
            dependencies: [.product(name: "Yams", package: "Yams")],
            swiftSettings: strict),
        // Pure: desired instances, placement onto nodes, status conditions. No I/O.
        .target(
            name: "AMPDScheduler",
            dependencies: ["AMPDAPI"],
            swiftSettings: strict),
        // JSON log handler and Prometheus registry shared by every process.
        .target(
            name: "AMPDObservability",
            dependencies: [
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ],
            swiftSettings: strict),
        // Certificate authority: keys, self-signed roots, leaf issuance, PEM files.
        .target(
            name: "AMPDPKI",
            dependencies: [
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
            ],
            swiftSettings: strict),
        // Several addresses of one service, and which failed requests may move to the next.
        .target(
            name: "AMPDFailover",
            dependencies: [
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            swiftSettings: strict),
        // A client of etcd's v3 API through its JSON gateway (KV, transactions, leases).
        .target(
            name: "AMPDEtcd",
            dependencies: [
                "AMPDFailover",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOFoundationCompat", package: "swift-nio"),
            ],
            swiftSettings: strict),
        // The controller's durable store behind `ObjectStore`: one SQLite file (embedded
        // default) or etcd (several machines).
        .target(
            name: "AMPDStore",
            dependencies: ["AMPDAPI", "AMPDEtcd", .product(name: "GRDB", package: "GRDB.swift")],
            swiftSettings: strict),
        // The controller: REST API, auth, node registry, reconciler loop, decisions.
        .target(
            name: "AMPDController",
            dependencies: [
                "AMPDAPI", "AMPDScheduler", "AMPDObservability", "AMPDPKI", "AMPDStore", "AMPDAutoscaling", "AMPDPolicy",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTLS", package: "hummingbird"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict),
        // Typed HTTPS client of the controller's API (CLI, agents, tests, benchmarks).
        .target(
            name: "AMPDClient",
            dependencies: [
                "AMPDAPI", "AMPDFailover",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOFoundationCompat", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Yams", package: "Yams"),
            ],
            swiftSettings: strict),
        // The native inference engine: GGUF, kernels, tokenizer, llama forward,
        // paged KV cache with export/import, sampling, continuous batching.
        // No dependency on the control plane.
        .target(
            name: "AMPDEngine",
            swiftSettings: strict + kernelFlags),
        // Pure policy: cost model and profiles, per-prefill routing (ampd,
        // ampd-paper, baselines), Algorithm 2 reordering, the round engine the
        // gateway and the simulator both drive, the planner. No I/O.
        .target(
            name: "AMPDPolicy",
            dependencies: ["AMPDAPI", .product(name: "Yams", package: "Yams")],
            swiftSettings: strict + [.unsafeFlags(["-O"])]),
        // Pure: a live deployment + observed workload → the planner's inputs, and its
        // decision → replica counts (the controller's planner loop runs it).
        .target(
            name: "AMPDAutoscaling",
            dependencies: ["AMPDAPI", "AMPDPolicy"],
            swiftSettings: strict),
        // Discrete-event cluster simulator over the same policy code.
        .target(
            name: "AMPDSim",
            dependencies: ["AMPDPolicy"],
            swiftSettings: strict + [.unsafeFlags(["-O"])]),
        // The KV pool: binary protocol, tenant-isolated encrypted block store,
        // mutual-TLS endpoint and client (SwiftNIO + NIOSSL).
        .target(
            name: "AMPDKVPool",
            dependencies: [
                "AMPDPKI",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict),
        // The node agent: enrollment (CSR), KV pool endpoint, heartbeats, renewal.
        .target(
            name: "AMPDAgent",
            dependencies: [
                "AMPDAPI", "AMPDClient", "AMPDKVPool", "AMPDPKI", "AMPDEngine", "AMPDObservability",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTLS", package: "hummingbird"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict),
        // The gateway: OpenAI API, sessions, rounds across prefill and decode instances
        // (the round engine executed against agents through the typed instance contract).
        .target(
            name: "AMPDGateway",
            dependencies: [
                "AMPDAPI", "AMPDClient", "AMPDEngine", "AMPDPolicy", "AMPDAutoscaling", "AMPDPKI", "AMPDObservability",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict),
        // The one executable: subcommands only.
        .executableTarget(
            name: "ampd",
            dependencies: [
                "AMPDAPI", "AMPDController", "AMPDClient", "AMPDObservability", "AMPDEngine", "AMPDPolicy", "AMPDSim", "AMPDAgent", "AMPDGateway",
                "AMPDKVPool", "AMPDPKI", "AMPDStore",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "Yams", package: "Yams"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOFoundationCompat", package: "swift-nio"),
            ],
            swiftSettings: strict),

        .testTarget(name: "AMPDAPITests", dependencies: ["AMPDAPI"], swiftSettings: strict),
        .testTarget(name: "AMPDSchedulerTests", dependencies: ["AMPDScheduler"], swiftSettings: strict),
        // What several test targets share: real helper processes (etcd).
        .target(name: "AMPDTestSupport", dependencies: ["AMPDEtcd"], path: "Tests/Support", swiftSettings: strict),
        .testTarget(name: "AMPDStoreTests", dependencies: ["AMPDStore", "AMPDEtcd", "AMPDTestSupport"], swiftSettings: strict),
        .testTarget(
            name: "AMPDEngineTests",
            dependencies: ["AMPDEngine", "ampd", "AMPDTestSupport"],
            resources: [.copy("Resources")],
            swiftSettings: strict),
        .testTarget(name: "AMPDPolicyTests", dependencies: ["AMPDPolicy", "AMPDSim"], swiftSettings: strict),
        .testTarget(name: "AMPDAutoscalingTests", dependencies: ["AMPDAutoscaling", "AMPDAPI", "AMPDPolicy"], swiftSettings: strict),
        .testTarget(name: "AMPDKVPoolTests", dependencies: ["AMPDKVPool", "AMPDPKI"], swiftSettings: strict),
        .testTarget(name: "AMPDPKITests", dependencies: ["AMPDPKI", .product(name: "SwiftASN1", package: "swift-asn1"),
                                                    .product(name: "X509", package: "swift-certificates")], swiftSettings: strict),
        .testTarget(name: "AMPDGatewayTests", dependencies: ["AMPDGateway", "AMPDAPI"], swiftSettings: strict),
        .testTarget(
            name: "AMPDControllerTests",
            dependencies: ["AMPDController", "AMPDClient", "AMPDObservability", "AMPDKVPool", "AMPDPKI", "ampd", "AMPDTestSupport", "AMPDEtcd",
                           .product(name: "AsyncHTTPClient", package: "async-http-client")],
            swiftSettings: strict),
    ],
    swiftLanguageModes: [.v6]
)
