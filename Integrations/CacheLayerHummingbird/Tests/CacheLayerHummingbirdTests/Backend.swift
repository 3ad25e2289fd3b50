import CacheLayer
import Foundation
import RedisTestSupport

/// A cache the driver tests run against: memory, or Redis on a redis-server started for this test process.
enum Backend: String, CaseIterable, Sendable, CustomStringConvertible {
    case memory
    case redis

    var description: String { rawValue }

    /// A fresh, empty cache (on Redis, in a namespace of its own).
    func makeCache() async throws -> any Cache {
        switch self {
        case .memory:
            return try MemoryCache(configuration: .development)
        case .redis:
            let server = try await RedisServer.shared()
            var configuration = CacheConfiguration()
            configuration.backend = .redis
            configuration.name = "hummingbird-test"
            configuration.redisAddress = "\(server.host):\(server.port)"
            configuration.namespace = "hb-\(UUID().uuidString)"
            configuration.enableFallback = false
            configuration.poolSize = 4
            configuration.maxIdleConnections = 4
            configuration.connectTimeout = .seconds(10)
            configuration.readTimeout = .seconds(10)
            configuration.writeTimeout = .seconds(10)
            return try await CacheLayer.makeCache(configuration)
        }
    }
}
