// swift-tools-version:6.2
// The Hummingbird adapter: a PersistDriver over any cache of swift-cache-layer. A package of its own, so the
// library does not depend on Hummingbird. Run from this folder: swift test, or swift run HummingbirdExample.
import Foundation
import PackageDescription

/// SwiftPM names a path dependency after its folder, which is whatever the checkout is called.
let rootPackage = URL(fileURLWithPath: #filePath)
    .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().lastPathComponent

let swiftSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("MemberImportVisibility"),
]

// The folder is not called "Hummingbird": SwiftPM names a root package after its folder, and a package named
// "hummingbird" would hide the hummingbird dependency.
let package = Package(
    name: "cachelayer-hummingbird",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "CacheLayerHummingbird", targets: ["CacheLayerHummingbird"]),
    ],
    dependencies: [
        .package(path: "../.."),
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
    ],
    targets: [
        .target(
            name: "CacheLayerHummingbird",
            dependencies: [
                .product(name: "CacheLayer", package: rootPackage),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        // A minimal service: `swift run HummingbirdExample`, then GET /users/1 (slow the first time) and /stats.
        .executableTarget(
            name: "HummingbirdExample",
            dependencies: [
                "CacheLayerHummingbird",
                .product(name: "CacheLayer", package: rootPackage),
                .product(name: "Hummingbird", package: "hummingbird"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "CacheLayerHummingbirdTests",
            dependencies: [
                "CacheLayerHummingbird",
                .product(name: "CacheLayer", package: rootPackage),
                .product(name: "RedisTestSupport", package: rootPackage),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
            ],
            swiftSettings: swiftSettings
        ),
    ]
)
