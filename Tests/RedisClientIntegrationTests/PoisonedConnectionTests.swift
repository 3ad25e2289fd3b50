import RedisClient
import RedisTestSupport
import Testing

/// A connection poisoned by a timeout is never used again, even while its channel is still open (TLS waits for the
/// stalled server's close_notify for a while).
@Suite("Poisoned connections (real redis-server, TLS)")
struct PoisonedConnectionTests {
    static func tlsConfiguration(_ server: RedisServer) throws -> RedisConnectionConfiguration {
        var configuration = server.configuration(commandTimeout: .milliseconds(300))
        configuration.tls = try .verifying(caCertificatePath: server.caCertificatePath)
        return configuration
    }

    @Test("after a timeout on a TLS connection to a paused server, isClosed is true at once")
    func timedOutTLSConnectionIsClosedAtOnce() async throws {
        try await withRedisServer(.init(tls: true)) { server in
            let connection = try await RedisConnection.connect(configuration: Self.tlsConfiguration(server))
            try await connection.set("k", value: "v")
            try server.pause()
            let error = await expectRedisError { _ = try await connection.get("k") }
            let closed = connection.isClosed
            try server.resume()
            #expect(error?.code == .timeout)
            #expect(closed, "a poisoned connection must report itself closed, whatever its channel says")
            await connection.close()
        }
    }

    @Test("the pool never parks or leases a timed-out TLS connection")
    func poolDropsPoisonedTLSConnection() async throws {
        try await withRedisServer(.init(tls: true)) { server in
            let pool = RedisConnectionPool(
                connectionConfiguration: try Self.tlsConfiguration(server),
                configuration: .init(maxConnections: 2, acquireTimeout: .seconds(2), maintenanceInterval: .seconds(60))
            )
            try await withRunningPool(pool) { pool in
                try await pool.set("k", value: "v")
                #expect(pool.statistics.idle == 1)
                try server.pause()
                let error = await expectRedisError { _ = try await pool.get("k") }
                let statistics = pool.statistics
                try server.resume()
                #expect(error?.code == .timeout)
                #expect(statistics.idle == 0, "the poisoned connection was parked: \(statistics)")
                // The next command gets a fresh connection and works.
                #expect(try await pool.getString("k") == "v")
            }
        }
    }
}
