import NIOCore
import RedisTestSupport
import Testing

@testable import RedisClient

/// Extreme durations saturate (or are refused by the server) instead of trapping; decoder limits are cache-sized
/// by default and configurable.
@Suite("Extreme input (real redis-server)")
struct ExtremeInputTests {
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

    @Test("decoder limits default to cache-sized values and are configurable")
    func decoderLimits() throws {
        let configuration = RedisConnectionConfiguration()
        #expect(configuration.maxBulkLength <= 64 * 1024 * 1024)
        #expect(configuration.maxAggregateCount <= 16 * 1024 * 1024)

        var strict = RESPDecoder(maxBulkLength: 1024, maxAggregateCount: 10)
        var tooMany = ByteBuffer(string: "*11\r\n")
        #expect(throws: RESPParsingError.self) { _ = try strict.decode(buffer: &tooMany) }
        var manyPairs = ByteBuffer(string: "%6\r\n")  // 12 elements
        #expect(throws: RESPParsingError.self) { _ = try strict.decode(buffer: &manyPairs) }
        var longBulkIsFine = ByteBuffer(string: "$1000\r\n")  // within the bulk limit: waits for the bytes
        #expect(try strict.decode(buffer: &longBulkIsFine) == nil)
        var tooLong = ByteBuffer(string: "$1025\r\n")
        #expect(throws: RESPParsingError.self) { _ = try strict.decode(buffer: &tooLong) }

        // A limit as large as Int.max does not overflow when doubled for maps.
        var unlimited = RESPDecoder(maxBulkLength: .max, maxAggregateCount: .max)
        var hugeMap = ByteBuffer(string: "%\(Int64.max)\r\n")
        _ = try? unlimited.decode(buffer: &hugeMap)
    }
}
