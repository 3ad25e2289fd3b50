import Logging
import NIOCore
import RedisClient
import ServiceLifecycle
import RedisTestSupport
import Testing

@Suite("RedisConnectionPool against a real redis-server")
struct RedisConnectionPoolTests {
    func pool(_ server: RedisServer, _ configuration: RedisConnectionPoolConfiguration = .init()) -> RedisConnectionPool {
        RedisConnectionPool(connectionConfiguration: server.configuration(), configuration: configuration)
    }

    @Test("commands, withConnection and pipeline through the pool; built from a URL")
    func basics() async throws {
        try await withRedisServer(.init(password: "pw")) { server in
            let pool = try RedisConnectionPool(url: "redis://:pw@\(server.host):\(server.port)/2")
            try await withRunningPool(pool) { pool in
                try await pool.set("k", value: "v")
                #expect(try await pool.getString("k") == "v")
                #expect(try await pool.withConnection { try await $0.send(["CLIENT", "INFO"]).string?.contains("db=2") } == true)
                let replies = try await pool.pipeline([.get("k"), RedisCommand("INCR", "n"), RedisCommand("INCR", "n")])
                #expect(try replies.map { try $0.get().string } == ["v", "1", "2"])
                try await withThrowingTaskGroup(of: Void.self) { group in
                    for i in 0..<200 { group.addTask { try await pool.set("p:\(i)", value: i) } }
                    try await group.waitForAll()
                }
                #expect(pool.statistics.leased == 0)
                #expect(pool.statistics.idle <= 16)
            }
        }
    }

    @Test("an exhausted pool queues callers and fails them with poolTimeout after the acquire timeout")
    func exhaustion() async throws {
        try await withRedisServer { server in
            let pool = pool(
                server,
                .init(maxConnections: 2, minIdleConnections: 2, acquireTimeout: .milliseconds(300), maintenanceInterval: .milliseconds(20))
            )
            try await withRunningPool(pool) { pool in
                // Both connections made before the clock matters (the machine may be busy with other tests).
                try await eventually { pool.statistics.idle == 2 }
                try await withThrowingTaskGroup(of: Void.self) { group in
                    for _ in 0..<2 {
                        group.addTask {
                            // Held well beyond the acquire timeout, so a late timer on a busy machine still fires first.
                            try await pool.withConnection { _ in try await Task.sleep(for: .seconds(3)) }
                        }
                    }
                    try await eventually { pool.statistics.leased == 2 }
                    let start = ContinuousClock.now
                    let error = await expectRedisError { _ = try await pool.ping() }
                    let waited = ContinuousClock.now - start
                    #expect(error?.code == .poolTimeout)
                    #expect(waited >= .milliseconds(250) && waited < .milliseconds(2500), "waited \(waited)")
                    try await group.waitForAll()
                }
                // Queued callers are served as connections come back.
                let queued = RedisConnectionPool(
                    connectionConfiguration: server.configuration(),
                    configuration: .init(maxConnections: 1, acquireTimeout: .seconds(5))
                )
                try await withRunningPool(queued) { queued in
                    try await withThrowingTaskGroup(of: Void.self) { group in
                        for i in 0..<20 {
                            group.addTask {
                                try await queued.withConnection { connection in
                                    try await Task.sleep(for: .milliseconds(5))
                                    try await connection.set("q:\(i)", value: i)
                                }
                            }
                        }
                        try await group.waitForAll()
                    }
                    #expect(try await queued.exists((0..<20).map { "q:\($0)" }) == 20)
                }
            }
        }
    }

    @Test("a waiting caller that is cancelled gets `cancelled` at once")
    func waiterCancellation() async throws {
        try await withRedisServer { server in
            let pool = pool(server, .init(maxConnections: 1, acquireTimeout: .seconds(10)))
            try await withRunningPool(pool) { pool in
                try await withThrowingTaskGroup(of: Void.self) { group in
                    group.addTask { try await pool.withConnection { _ in try await Task.sleep(for: .milliseconds(500)) } }
                    try await eventually { pool.statistics.leased == 1 }
                    let waiter = Task { try await pool.ping() }
                    try await eventually { pool.statistics.waiting == 1 }
                    let start = ContinuousClock.now
                    waiter.cancel()
                    let result = await waiter.result
                    #expect(ContinuousClock.now - start < .milliseconds(300))
                    guard case .failure(let error as RedisError) = result else {
                        Issue.record("expected cancelled, got \(result)")
                        return
                    }
                    #expect(error.code == .cancelled)
                    try await group.waitForAll()
                }
            }
        }
    }

    @Test("a server restart is healed without user action")
    func restartHeals() async throws {
        try await withRedisServer { server in
            let pool = pool(server, .init(maxConnections: 4, retryBaseDelay: .milliseconds(20)))
            try await withRunningPool(pool) { pool in
                try await withThrowingTaskGroup(of: Void.self) { group in
                    for i in 0..<8 { group.addTask { try await pool.set("before:\(i)", value: i) } }
                    try await group.waitForAll()
                }
                #expect(pool.statistics.idle > 0)
                try await server.restart(kill: true)
                // Reads are retried on fresh connections; writes find the dead idle connections dropped.
                #expect(try await pool.get("before:1") == nil)
                try await pool.set("after", value: "1")
                #expect(try await pool.getString("after") == "1")
                try await withThrowingTaskGroup(of: Void.self) { group in
                    for _ in 0..<8 { group.addTask { _ = try await pool.ping() } }
                    try await group.waitForAll()
                }
            }
        }
    }

    @Test("connections older than the max lifetime are replaced")
    func maxLifetime() async throws {
        try await withRedisServer { server in
            let pool = pool(server, .init(maxConnections: 1, maxConnectionLifetime: .seconds(1)))
            try await withRunningPool(pool) { pool in
                let first = try await pool.send(["CLIENT", "ID"]).int
                #expect(try await pool.send(["CLIENT", "ID"]).int == first)
                try await Task.sleep(for: .milliseconds(1100))
                let second = try await pool.send(["CLIENT", "ID"]).int
                #expect(second != first)
                // The replaced connection is closed (the new one may itself expire meanwhile on a busy machine).
                try await eventually { try await server.connectedClients() <= 1 }
                #expect(try await server.connectedClients() <= 1)
            }
        }
    }

    @Test("min idle connections are kept warm; shutting down leaves no connection or task behind")
    func warmAndNoLeaks() async throws {
        try await withRedisServer { server in
            let pool = pool(server, .init(maxConnections: 6, minIdleConnections: 3, maintenanceInterval: .milliseconds(50)))
            try await withRunningPool(pool) { pool in
                try await eventually { pool.statistics.idle == 3 }
                #expect(pool.statistics.idle == 3)
                #expect(try await server.connectedClients() == 3)
                try await withThrowingTaskGroup(of: Void.self) { group in
                    for _ in 0..<6 {
                        group.addTask { try await pool.withConnection { _ = try await $0.send(["DEBUG", "SLEEP", "0.05"]) } }
                    }
                    try await group.waitForAll()
                }
                #expect(try await server.connectedClients() == 6)
            }
            // withRunningPool returned: run() has finished.
            try await eventually { try await server.connectedClients() == 0 }
            #expect(try await server.connectedClients() == 0)
            let error = await expectRedisError { _ = try await pool.ping() }
            #expect(error?.code == .poolClosed)
        }
    }

    @Test("runs as a swift-service-lifecycle Service and closes everything on graceful shutdown")
    func serviceLifecycle() async throws {
        try await withRedisServer { server in
            let pool = pool(server)
            let group = ServiceGroup(services: [pool], logger: Logger(label: "test"))
            try await withThrowingTaskGroup(of: Void.self) { tasks in
                tasks.addTask { try await group.run() }
                try await pool.set("k", value: "v")
                #expect(try await server.connectedClients() == 1)
                await group.triggerGracefulShutdown()
                try await tasks.waitForAll()
            }
            try await eventually { try await server.connectedClients() == 0 }
            #expect(try await server.connectedClients() == 0)
        }
    }

    @Test("an unreachable server fails callers with connectFailed after the retries")
    func unreachable() async throws {
        let server = try await RedisServer.start()
        let configuration = server.configuration()
        await server.stop()
        let pool = RedisConnectionPool(
            connectionConfiguration: configuration,
            configuration: .init(maxRetries: 2, retryBaseDelay: .milliseconds(10))
        )
        try await withRunningPool(pool) { pool in
            let start = ContinuousClock.now
            let error = await expectRedisError { try await pool.set("k", value: "v") }
            #expect(error?.code == .connectFailed)
            #expect(ContinuousClock.now - start < .seconds(2))
        }
    }

    @Test("a timed-out connection is dropped; after the server resumes the pool works again")
    func timeoutThenRecovery() async throws {
        try await withRedisServer { server in
            var configuration = server.configuration(commandTimeout: .milliseconds(300))
            configuration.connectTimeout = .milliseconds(300)
            let pool = RedisConnectionPool(connectionConfiguration: configuration, configuration: .init(maxConnections: 2))
            try await withRunningPool(pool) { pool in
                try await pool.set("k", value: "v")
                try server.pause()
                let start = ContinuousClock.now
                let error = await expectRedisError { _ = try await pool.get("k") }
                #expect(ContinuousClock.now - start < .seconds(2), "a 300 ms command timeout, not a hang")
                try server.resume()
                #expect(error?.code == .timeout)
                #expect(try await pool.getString("k") == "v")
                try await pool.set("k", value: "w")
                #expect(try await pool.getString("k") == "w")
            }
        }
    }
}

/// Polls `condition` every 10 ms until it holds or `timeout` passes (tests share a busy machine).
func eventually(timeout: Duration = .seconds(10), _ condition: () async throws -> Bool) async throws {
    let deadline = ContinuousClock.now + timeout
    while try await !condition() {
        if ContinuousClock.now > deadline { return }
        try await Task.sleep(for: .milliseconds(10))
    }
}
