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
        let seed = configuration.redisAddress.split(separator: ",").first.map(String.init) ?? ""
        guard let address = HostAndPort(seed) else { throw DemoError("invalid Redis address") }
        let connection = RedisConnectionConfiguration(
            host: address.host, port: address.port, username: configuration.redisUsername,
            password: configuration.redisPassword, database: configuration.redisDatabase,
            commandTimeout: configuration.readTimeout
        )
        let pool = RedisConnectionPoolConfiguration(maxConnections: configuration.poolSize, maxRetries: configuration.maxRetries)
        if configuration.redisCluster {
            // The same workload on a bare `RedisClusterClient` seeded with the configured address.
            let cluster = try RedisClusterClient(
                configuration: RedisClusterConfiguration(seeds: [configuration.redisAddress], connection: connection, pool: pool)
            )
            return try await measure(on: cluster, run: cluster.run, shutdown: cluster.shutdown)
        }
        let client = RedisConnectionPool(connectionConfiguration: connection, configuration: pool)
        return try await measure(on: client, run: client.run, shutdown: client.shutdown)
    }

    /// Runs the client, measures the workload on it, and shuts it down.
    private func measure(
        on client: some RedisCommandExecutor,
        run: @escaping @Sendable () async -> Void,
        shutdown: () -> Void
    ) async throws -> BenchResult {
        let running = Task { await run() }
        defer { shutdown() }
        let value = try JSONCacheCodec().encode(String(repeating: "v", count: workload.valueSize))
        let result = try await workload.run(
            get: { key, _ in _ = try await client.get(key) },
            set: { key, _ in try await client.set(key, value: value) }
        )
        shutdown()
        await running.value
        return result
    }
}
