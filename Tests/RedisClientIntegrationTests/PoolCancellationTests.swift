import RedisClient
import RedisTestSupport
import Testing

/// A cancellation is honoured whenever it arrives: also before the caller has joined the pool's waiter queue.
@Suite("Pool lease cancellation (real redis-server)")
struct PoolCancellationTests {
    @Test("1,000 callers waiting for the only pooled connection, each cancelled at a random moment, all end at once")
    func cancelledLeasesNeverWaitForTheTimeout() async throws {
        try await withRedisServer { server in
            let pool = RedisConnectionPool(
                connectionConfiguration: server.configuration(),
                configuration: .init(maxConnections: 1, acquireTimeout: .seconds(20))
            )
            try await withRunningPool(pool) { pool in
                let holder = Task { try await pool.withConnection { _ in try await Task.sleep(for: .seconds(30)) } }
                try await eventually { pool.statistics.leased == 1 }
                let start = ContinuousClock.now
                let worst = await withTaskGroup(of: Duration.self) { group in
                    for i in 0..<1000 {
                        group.addTask {
                            let waiter = Task { _ = try await pool.ping() }
                            // Cancel at a different point of the lease each time.
                            for _ in 0..<(i % 4) { await Task.yield() }
                            let cancelledAt = ContinuousClock.now
                            waiter.cancel()
                            _ = await waiter.result
                            return ContinuousClock.now - cancelledAt
                        }
                    }
                    return await group.reduce(Duration.zero) { max($0, $1) }
                }
                holder.cancel()
                _ = await holder.result
                #expect(worst < .seconds(5), "a cancelled caller waited \(worst) (total \(ContinuousClock.now - start))")
                #expect(pool.statistics.waiting == 0)
            }
        }
    }
}
