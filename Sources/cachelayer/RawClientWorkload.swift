import CacheLayer
import Foundation
import RedisClient

/// The bench workload on a bare `RedisConnectionPool`: the same keys, Zipf popularity, read ratio and pool size as
/// the cache bench, GET and SET of the exact bytes the cache stores (the key, the JSON value), without the
/// cache layer (codec, stats, errors). The difference to `bench --backend redis` is the cache layer's overhead.
struct RawClientWorkload: Sendable {
    var configuration: CacheConfiguration
    var keys: Int
    var valueSize: Int
    var readRatio: Double
    var zipf: Double
    var concurrency: Int
    var duration: Duration

    func run() async throws -> BenchResult {
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
        let value = try JSONCacheCodec().encode(String(repeating: "v", count: valueSize))
        let keyNames = (0..<keys).map { "key:\($0)" }
        try await withThrowingTaskGroup(of: Void.self) { group in
            let fillers = min(concurrency, 8)
            for worker in 0..<fillers {
                group.addTask {
                    for index in stride(from: worker, to: keyNames.count, by: fillers) {
                        try await pool.set(keyNames[index], value: value)
                    }
                }
            }
            try await group.waitForAll()
        }
        let sampler = ZipfGenerator(count: keys, exponent: zipf)
        let clock = ContinuousClock()
        let start = clock.now
        let deadline = start + duration
        var result = BenchResult()
        try await withThrowingTaskGroup(of: BenchResult.self) { group in
            for worker in 0..<concurrency {
                group.addTask {
                    var random = SeededGenerator(seed: 0x5EED + UInt64(worker))
                    var partial = BenchResult()
                    var operations = 0
                    while true {
                        if operations & 63 == 0 && clock.now >= deadline { break }
                        operations += 1
                        let key = keyNames[sampler.next(using: &random)]
                        let isRead = Double.random(in: 0..<1, using: &random) < readRatio
                        let began = clock.now
                        if isRead {
                            _ = try await pool.get(key)
                            partial.gets.record(clock.now - began)
                        } else {
                            try await pool.set(key, value: value)
                            partial.sets.record(clock.now - began)
                        }
                    }
                    return partial
                }
            }
            for try await partial in group {
                result.gets.merge(partial.gets)
                result.sets.merge(partial.sets)
            }
        }
        result.elapsed = clock.now - start
        pool.shutdown()
        await running.value
        return result
    }
}
