import CacheLayer
import Foundation
import RedisClient

/// The bench workload on a bare `RedisConnectionPool`: the same keys, Zipf popularity, read ratio and pool size as
/// the cache bench, GET and SET of the exact bytes the cache stores (the key, the JSON value), without the
/// cache layer (codec, stats, errors). The difference to `bench --backend redis` is the cache layer's overhead.
struct RawClientWorkload: Sendable {
    var configuration: CacheConfiguration
    var workload: Workload

    func run() async throws -> BenchResult {
        if configuration.redisCluster { return try await runOnCluster() }
        guard let address = HostAndPort(configuration.redisAddress) else { throw DemoError("invalid Redis address") }
        let pool = RedisConnectionPool(
            connectionConfiguration: RedisConnectionConfiguration(
                host: address.host, port: address.port, username: configuration.redisUsername,
                password: configuration.redisPassword, database: configuration.redisDatabase,
                commandTimeout: configuration.readTimeout
            ),
            configuration: RedisConnectionPoolConfiguration(maxConnections: configuration.poolSize, maxRetries: configuration.maxRetries)
        )
        let running = Task { await pool.run() }
        defer { pool.shutdown() }
        let value = try JSONCacheCodec().encode(String(repeating: "v", count: workload.valueSize))
        let result = try await workload.run(
            get: { key in _ = try await pool.get(key) },
            set: { key in try await pool.set(key, value: value) }
        )
        pool.shutdown()
        await running.value
        return result
    }

    /// The same workload on a bare `RedisClusterClient` seeded with the configured address.
    private func runOnCluster() async throws -> BenchResult {
        guard let address = configuration.redisAddress.split(separator: ",").first.flatMap({ HostAndPort(String($0)) }) else {
            throw DemoError("invalid Redis address")
        }
        let cluster = try RedisClusterClient(
            configuration: RedisClusterConfiguration(
                seeds: [configuration.redisAddress],
                connection: RedisConnectionConfiguration(
                    host: address.host, port: address.port, username: configuration.redisUsername,
                    password: configuration.redisPassword, commandTimeout: configuration.readTimeout
                ),
                pool: RedisConnectionPoolConfiguration(maxConnections: configuration.poolSize, maxRetries: configuration.maxRetries)
            )
        )
        let running = Task { await cluster.run() }
        defer { cluster.shutdown() }
        let value = try JSONCacheCodec().encode(String(repeating: "v", count: workload.valueSize))
        let result = try await workload.run(
            get: { key in _ = try await cluster.get(key) },
            set: { key in try await cluster.set(key, value: value) }
        )
        cluster.shutdown()
        await running.value
        return result
    }
}
