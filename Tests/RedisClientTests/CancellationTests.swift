import NIOCore
import NIOEmbedded
import RedisTestSupport
import Testing

@testable import RedisClient

/// A cancellation is honoured whenever it arrives: also before the request has reached the event loop (connection)
/// or the pool's waiter queue (lease).
@Suite("Cancellation at every point")
struct CancellationTests {
    @Test("a request cancelled before the event loop registers it fails with `cancelled`, writes nothing and keeps the connection")
    func cancelledBeforeRegistration() async throws {
        let channel = EmbeddedChannel()
        let (_, push) = AsyncStream<RESPValue>.makeStream()
        let handler = RedisChannelHandler(eventLoop: channel.eventLoop, maxBulkLength: 1024, maxNestingDepth: 8, pushContinuation: push)
        try channel.pipeline.syncOperations.addHandler(handler)
        try await channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).get()
        let result: Result<RESPValue, any Error> = await asyncResult {
            try await withCheckedThrowingContinuation { continuation in
                // The caller's cancellation handler ran first (the task was cancelled while handing the request over).
                let cancellation = RedisRequestCancellation()
                cancellation.cancel()
                handler.cancel(id: 1)
                handler.send(RedisCommand(["GET", "k"]).encoded, id: 1, timeout: nil, batchSize: nil, cancellation: cancellation, promise: .single(continuation))
            }
        }
        guard case .failure(let error as RedisError) = result else {
            Issue.record("expected `cancelled`, got \(result)")
            return
        }
        #expect(error.code == .cancelled)
        #expect(try channel.readOutbound(as: ByteBuffer.self) == nil, "nothing was written")
        #expect(channel.isActive, "nothing was sent, so the connection is still in step")
        _ = try? channel.finish()
    }

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
