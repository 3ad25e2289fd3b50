import RedisClient
import RedisTestSupport
import Testing

/// Extreme durations saturate (or are refused by the server) instead of trapping.
@Suite("Extreme durations in the client (real redis-server)")
struct ExtremeDurationClientTests {
    @Test("a SET expiry of Duration.seconds(.max) or .min does not trap", arguments: [
        Duration.seconds(Int64.max), Duration.seconds(Int64.min), Duration.seconds(Int64.max / 1000 + 1),
    ])
    func hugeExpiryDoesNotTrap(duration: Duration) async throws {
        try await withRedisServer { server in
            try await server.withConnection { (connection: RedisConnection) async throws in
                // Saturated to the largest millisecond count: Redis refuses it as an invalid expire time, or stores it.
                do {
                    try await connection.set("k", value: "v", expiration: .after(duration))
                } catch let error as RedisError {
                    #expect(error.code == .serverError, "\(error)")
                }
                #expect(try await connection.ping() == "PONG")
            }
        }
    }

    @Test("command, connect and acquire timeouts of Duration.seconds(.max) mean no limit, not a trap")
    func hugeTimeoutsDoNotTrap() async throws {
        try await withRedisServer { server in
            var configuration = server.configuration(commandTimeout: .seconds(Int64.max))
            configuration.connectTimeout = .seconds(Int64.max)
            try await server.withConnection(configuration) { (connection: RedisConnection) async throws in
                #expect(try await connection.execute(.get("k"), timeout: .seconds(Int64.max)) == .null)
            }
            let pool = RedisConnectionPool(
                connectionConfiguration: configuration,
                configuration: .init(maxConnectionLifetime: .seconds(Int64.max), acquireTimeout: .seconds(Int64.max))
            )
            try await withRunningPool(pool) { (pool: RedisConnectionPool) async throws in
                #expect(try await pool.ping() == "PONG")
            }
        }
    }
}
