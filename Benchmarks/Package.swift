// swift-tools-version:6.1
// Benchmarks live in their own package so the main build stays light.
// Run from this folder: swift package --disable-sandbox benchmark
import Foundation
import PackageDescription

/// SwiftPM names a path dependency after its folder, which is whatever the checkout is called.
let rootPackage = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().lastPathComponent

let package = Package(
    name: "swift-cache-layer-benchmarks",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(path: ".."),
        .package(url: "https://github.com/ordo-one/benchmark.git", from: "1.38.0", traits: ["MallocInterposer"]),
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.0"),
    ],
    targets: [
        // The stores and the workload the benchmarks and `HitPathTargets` share.
        .target(
            name: "BenchmarkStores",
            dependencies: [
                .product(name: "CacheLayer", package: rootPackage),
                .product(name: "Hummingbird", package: "hummingbird"),
            ]
        ),
        .executableTarget(
            name: "MemoryCacheBenchmarks",
            dependencies: [
                "BenchmarkStores",
                .product(name: "Benchmark", package: "benchmark"),
            ],
            path: "Benchmarks/MemoryCacheBenchmarks",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
        // The four hit-path targets side by side: `swift run -c release HitPathTargets`.
        .executableTarget(
            name: "HitPathTargets",
            dependencies: ["BenchmarkStores", "CHeapStatistics", .product(name: "CacheLayer", package: rootPackage)]
        ),
        // The allocator's count of heap bytes in use (glibc's mallinfo2, which Swift's Glibc module does not export).
        .target(name: "CHeapStatistics"),
    ]
)
