import RedisClient
import RedisTestSupport
import Testing

/// A pool whose connections are all busy is not an outage: its lease timeout has a code of its own, and a lease that
/// times out because no connection could be made (the server does not answer) says so.
@Suite("RedisConnectionPool exhaustion vs outage (real redis-server)")
struct PoolExhaustionTests {
    @Test("500 tasks on a pool of 2 against a blocked server: the waiters fail with poolTimeout, the pool stays healthy")
    func exhaustedPoolFailsWaitersWithPoolTimeout() async throws {
        try await withRedisServer { server in
            let pool = RedisConnectionPool(
                connectionConfiguration: server.configuration(commandTimeout: .seconds(10)),
                configuration: .init(maxConnections: 2, minIdleConnections: 2, acquireTimeout: .milliseconds(200), maintenanceInterval: .milliseconds(20))
            )
            try await withRunningPool(pool) { pool in
                try await eventually { pool.statistics.idle == 2 }
                // The server is busy for a second: the two pooled connections stay leased meanwhile.
                async let blocked: Void = server.withConnection { _ = try await $0.send(["DEBUG", "SLEEP", "1"]) }
                try await Task.sleep(for: .milliseconds(100))
                let codes = await withTaskGroup(of: RedisError.Code?.self) { group in
                    for _ in 0..<500 {
                        group.addTask { await expectRedisError { _ = try await pool.ping() }?.code }
                    }
                    return await group.reduce(into: [RedisError.Code?]()) { $0.append($1) }
                }
                try await blocked
                let failures = codes.compactMap { $0 }
                #expect(failures.count >= 400, "\(failures.count) of 500 failed")
                #expect(failures.allSatisfy { $0 == .poolTimeout }, "\(Set(failures.map(\.description)))")
                #expect(try await pool.ping() == "PONG")
            }
        }
    }

    @Test("a lease that times out while the only connection attempt hangs (paused server) is a timeout, not poolTimeout")
    func leaseTimeoutDuringOutageIsNotPoolExhaustion() async throws {
        try await withRedisServer { server in
            var configuration = server.configuration()
            configuration.connectTimeout = .seconds(5)
            let pool = RedisConnectionPool(
                connectionConfiguration: configuration,
                configuration: .init(maxConnections: 2, acquireTimeout: .milliseconds(300), maxRetries: 0)
            )
            try await withRunningPool(pool) { pool in
                try server.pause()
                let error = await expectRedisError { _ = try await pool.ping() }
                try server.resume()
                #expect(error?.code == .timeout, "\(String(describing: error))")
            }
        }
    }
}
