// swift-tools-version:6.1
// Benchmarks live in their own package so the main build stays light.
// Run from this folder: swift package --disable-sandbox benchmark
import PackageDescription

let package = Package(
    name: "swift-cache-layer-benchmarks",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(path: ".."),
        .package(url: "https://github.com/ordo-one/benchmark.git", from: "1.38.0", traits: ["MallocInterposer"]),
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.0"),
    ],
    targets: [
        .executableTarget(
            name: "MemoryCacheBenchmarks",
            dependencies: [
                .product(name: "CacheLayer", package: "swift-cache-layer"),
                .product(name: "Benchmark", package: "benchmark"),
                .product(name: "Hummingbird", package: "hummingbird"),
            ],
            path: "Benchmarks/MemoryCacheBenchmarks",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
        // Resident memory per entry: `swift run -c release MemoryFootprint`.
        .executableTarget(
            name: "MemoryFootprint",
            dependencies: [.product(name: "CacheLayer", package: "swift-cache-layer")]
        ),
    ]
)
