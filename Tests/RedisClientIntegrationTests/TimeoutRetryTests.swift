import RedisClient
import RedisTestSupport
import Testing

/// The pool retries idempotent commands after a *connection failure* only. A timeout is not retried: the server is
/// slow or stuck, so a retry would add load where there is too much already and make the caller wait a multiple of
/// its timeout (and for a non-idempotent command, the first attempt may still run).
@Suite("Timeouts are not retried (real redis-server)")
struct TimeoutRetryTests {
    @Test("an idempotent GET that times out on a paused server fails once, after one timeout, and is sent once")
    func timedOutReadIsNotRetried() async throws {
        try await withRedisServer { server in
            var configuration = server.configuration(commandTimeout: .milliseconds(300))
            configuration.connectTimeout = .seconds(5)
            let pool = RedisConnectionPool(
                connectionConfiguration: configuration,
                configuration: .init(maxConnections: 4, acquireTimeout: .seconds(5), maxRetries: 3, retryBaseDelay: .milliseconds(10))
            )
            try await withRunningPool(pool) { pool in
                _ = try await pool.send(["CONFIG", "RESETSTAT"])
                try server.pause()
                let start = ContinuousClock.now
                let error = await expectRedisError { _ = try await pool.get("k") }
                let elapsed = ContinuousClock.now - start
                try server.resume()
                #expect(error?.code == .timeout)
                #expect(elapsed < .milliseconds(900), "took \(elapsed): retried?")
                #expect(error?.isConnectionFailure == false)
                // What the paused server had queued has now run: the GET arrived once.
                try await eventually { try await Self.getCalls(pool) >= 1 }
                try await Task.sleep(for: .milliseconds(200))
                #expect(try await Self.getCalls(pool) == 1)
            }
        }
    }

    static func getCalls(_ pool: RedisConnectionPool) async throws -> Int {
        let text = try await pool.info(section: "commandstats")
        guard let line = text.split(whereSeparator: \.isNewline).first(where: { $0.hasPrefix("cmdstat_get:") }) else { return 0 }
        return Int(line.dropFirst("cmdstat_get:calls=".count).prefix { $0.isNumber }) ?? 0
    }
}
