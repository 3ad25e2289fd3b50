// swift-tools-version:6.1
import PackageDescription

let swiftSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("MemberImportVisibility"),
]

let package = Package(
    name: "swift-cache-layer",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "CacheLayer", targets: ["CacheLayer"]),
        .library(name: "RedisClient", targets: ["RedisClient"]),
        .executable(name: "cachelayer", targets: ["cachelayer"]),
        // Starts real redis-server processes; for the integration packages' tests (Integrations/), not for users.
        .library(name: "RedisTestSupport", targets: ["RedisTestSupport"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.0"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.0"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.0"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-collections.git", from: "1.6.0"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift.git", from: "0.2.0"),
        // `swift package generate-documentation` (scripts/docs); no product depends on it.
        .package(url: "https://github.com/swiftlang/swift-docc-plugin", from: "1.5.0"),
    ],
    targets: [
        // Locks and small utilities shared by the client and the cache (no NIO, nothing about caching).
        .target(
            name: "CommonSupport",
            swiftSettings: swiftSettings
        ),
        // RESP protocol, connections and pool. Knows nothing about caching.
        .target(
            name: "RedisClient",
            dependencies: [
                "CommonSupport",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "DequeModule", package: "swift-collections"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        // The public cache API: memory, Redis and fallback caches, patterns, stats.
        .target(
            name: "CacheLayer",
            dependencies: [
                "CommonSupport",
                "RedisClient",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "DequeModule", package: "swift-collections"),
                .product(name: "HeapModule", package: "swift-collections"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        // Research tooling that users never link: trace replay, trace readers, synthetic workloads, Belady's
        // OPT and comparison-only policies (ARC). Used by the CLI and the tests.
        .target(
            name: "CacheSimulation",
            dependencies: [
                "CacheLayer",
                "CommonSupport",
                .product(name: "HeapModule", package: "swift-collections"),
            ],
            swiftSettings: swiftSettings
        ),
        // The command-line tool: demo, benchmarks, trace replay.
        .executableTarget(
            name: "cachelayer",
            dependencies: [
                "CacheLayer",
                "CacheSimulation",
                "CommonSupport",
                "RedisClient",
                "RedisTestSupport",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Histogram", package: "hdrhistogram-swift"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        // Starts, kills, pauses and restarts real redis-server processes for the integration tests and the
        // CLI's outage demo.
        .target(
            name: "RedisTestSupport",
            dependencies: ["CommonSupport", "RedisClient"],
            swiftSettings: swiftSettings
        ),
        // Unit tests: no servers, run in parallel.
        .testTarget(
            name: "RedisClientTests",
            dependencies: [
                "CommonSupport",
                "RedisClient",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "CacheLayerTests",
            dependencies: [
                "CacheLayer",
                "CacheSimulation",
                "CommonSupport",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "MetricsTestKit", package: "swift-metrics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        // Replay and simulation tests: no servers, CPU-bound (whole traces replayed), run on their own so that they
        // do not starve the unit tests' timers of the cooperative thread pool.
        .testTarget(
            name: "CacheSimulationTests",
            dependencies: [
                "CacheLayer",
                "CacheSimulation",
                "CommonSupport",
            ],
            swiftSettings: swiftSettings
        ),
        // Integration tests: start, kill, pause and restart real redis-server processes; run one at a time.
        .testTarget(
            name: "RedisClientIntegrationTests",
            dependencies: [
                "CommonSupport",
                "RedisClient",
                "RedisTestSupport",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "CacheLayerIntegrationTests",
            dependencies: [
                "CacheLayer",
                "CommonSupport",
                "RedisClient",
                "RedisTestSupport",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "MetricsTestKit", package: "swift-metrics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
    ]
)
