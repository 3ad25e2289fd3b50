import RedisClient
import RedisTestSupport
import Testing

/// Shutting a pool down while it is still trying to connect (an outage) must not wait for the retries.
@Suite("RedisConnectionPool shutdown during an outage (real redis-server)")
struct PoolShutdownTests {
    @Test("shutdown while a connect attempt hangs in its handshake (paused server) returns within a second")
    func shutdownDuringHangingHandshake() async throws {
        try await withRedisServer { server in
            var configuration = server.configuration()
            // TCP connects (the kernel accepts for a stopped process); HELLO then waits for its 3 s timeout.
            configuration.connectTimeout = .seconds(3)
            let pool = RedisConnectionPool(
                connectionConfiguration: configuration,
                configuration: .init(maxConnections: 2, acquireTimeout: .seconds(30), maxRetries: 3, retryBaseDelay: .milliseconds(10))
            )
            try server.pause()
            let run = Task { await pool.run() }
            let caller = Task { try await pool.ping() }
            try await eventually { pool.statistics.connecting > 0 && pool.statistics.waiting > 0 }
            try await Task.sleep(for: .milliseconds(200))  // the attempt is now waiting for HELLO's reply
            let start = ContinuousClock.now
            pool.shutdown()
            await run.value
            let elapsed = ContinuousClock.now - start
            try server.resume()
            #expect(elapsed < .seconds(1), "run() took \(elapsed) to return after shutdown()")
            let result = await caller.result
            guard case .failure(let error as RedisError) = result else {
                Issue.record("expected the waiting caller to fail, got \(result)")
                return
            }
            #expect(error.code == .poolClosed)
        }
    }

    @Test("shutdown between connect retries (refused connections, long back-off) returns within a second")
    func shutdownDuringRetryBackoff() async throws {
        let server = try await RedisServer.start()
        let configuration = server.configuration()
        await server.stop()  // connections are now refused
        let pool = RedisConnectionPool(
            connectionConfiguration: configuration,
            configuration: .init(maxRetries: 3, retryBaseDelay: .seconds(5), maxRetryDelay: .seconds(5))
        )
        let run = Task { await pool.run() }
        let caller = Task { try await pool.ping() }
        try await eventually { pool.statistics.connecting > 0 }
        try await Task.sleep(for: .milliseconds(200))  // the first attempt failed; the back-off sleep runs
        let start = ContinuousClock.now
        pool.shutdown()
        await run.value
        let elapsed = ContinuousClock.now - start
        #expect(elapsed < .seconds(1), "run() took \(elapsed) to return after shutdown()")
        _ = await caller.result
    }
}
