// swift-tools-version:6.1
// The Vapor adapter: swift-cache-layer as Vapor's `app.cache`. A package of its own, so the library does not depend
// on Vapor. Run from this folder: swift test, or swift run VaporExample.
import Foundation
import PackageDescription

/// SwiftPM names a path dependency after its folder, which is whatever the checkout is called.
let rootPackage = URL(fileURLWithPath: #filePath)
    .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().lastPathComponent

let swiftSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("MemberImportVisibility"),
]

// The folder is not called "Vapor": SwiftPM names a root package after its folder, and a package named "vapor"
// would hide the vapor dependency.
let package = Package(
    name: "cachelayer-vapor",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "CacheLayerVapor", targets: ["CacheLayerVapor"]),
    ],
    dependencies: [
        .package(path: "../.."),
        .package(url: "https://github.com/vapor/vapor.git", from: "4.122.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
    ],
    targets: [
        .target(
            name: "CacheLayerVapor",
            dependencies: [
                .product(name: "CacheLayer", package: rootPackage),
                .product(name: "Vapor", package: "vapor"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        // A minimal service: `swift run VaporExample serve`, then GET /users/1 (slow the first time) and /stats.
        .executableTarget(
            name: "VaporExample",
            dependencies: [
                "CacheLayerVapor",
                .product(name: "CacheLayer", package: rootPackage),
                .product(name: "Vapor", package: "vapor"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "CacheLayerVaporTests",
            dependencies: [
                "CacheLayerVapor",
                .product(name: "CacheLayer", package: rootPackage),
                .product(name: "RedisTestSupport", package: rootPackage),
                .product(name: "Vapor", package: "vapor"),
                .product(name: "VaporTesting", package: "vapor"),
            ],
            swiftSettings: swiftSettings
        ),
    ]
)
