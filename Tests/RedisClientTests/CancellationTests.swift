import NIOCore
import NIOEmbedded
import Testing

@testable import RedisClient

/// A cancellation is honoured whenever it arrives: also before the request has reached the event loop. (The pool's
/// side is in RedisClientIntegrationTests/PoolCancellationTests.swift.)
@Suite("Cancellation before the request is registered")
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
}
