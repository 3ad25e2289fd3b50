import NIOCore
import RedisTestSupport
import Testing

@testable import RedisClient

/// What happens when nobody reads a connection's push messages fast enough, against a real server.
@Suite("Push message overflow")
struct PushOverflowTests {
    @Test func invalidationsBeyondTheBufferCloseTheConnectionInsteadOfBeingDropped() async throws {
        try await withRedisServer { server in
            var configuration = server.configuration()
            configuration.pushBufferCapacity = 4
            let tracked = try await RedisConnection.connect(configuration: configuration)
            _ = try await tracked.send("CLIENT", "TRACKING", "ON", "BCAST", "PREFIX", "p:")
            try await server.withConnection { writer in
                // Four invalidations fit in the unread buffer.
                for i in 0..<4 { _ = try await writer.send("SET", "p:\(i)", "v") }
                _ = try await tracked.send("PING")
                #expect(!tracked.isClosed)
                // The fifth does not: the connection closes rather than drop one silently.
                _ = try await writer.send("SET", "p:4", "v")
                let deadline = ContinuousClock.now + .seconds(5)
                while !tracked.isClosed, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(5)) }
            }
            #expect(tracked.isClosed)
            var received = 0
            for await push in tracked.pushMessages where push.array?.first?.string == "invalidate" { received += 1 }
            #expect(received == 4, "the buffered messages are delivered, then the stream ends")
            await tracked.close()
        }
    }
}
