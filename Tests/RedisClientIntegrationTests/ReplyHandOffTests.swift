import RedisClient
import RedisTestSupport
import Testing

/// A reply handed from the event loop to its caller, read while another task closes the connection. Over TLS the
/// reply's buffer is NIOSSL's, written on the event loop; under ThreadSanitizer this reported a race in most runs
/// until debug builds marked the hand-off (``ContinuationHandOff``): the runtime's fast path for a continuation resumed
/// before it was awaited hides the edge from the sanitizer.
@Suite("Reply hand-off", .serialized)
struct ReplyHandOffTests {
    @Test func aReplyReadWhileItsTLSConnectionClosesIsIntact() async throws {
        try await withRedisServer(.init(tls: true)) { server in
            var configuration = RedisConnectionConfiguration(host: server.host, port: server.port)
            configuration.tls = try .verifying(caCertificatePath: server.caCertificatePath)
            let value = String(repeating: "v", count: 100)
            let setup = try await RedisConnection.connect(configuration: configuration)
            _ = try await setup.execute(RedisCommand(["SET", "k", value]))
            await setup.close()
            for _ in 0..<40 {
                let connection = try await RedisConnection.connect(configuration: configuration)
                let reply = try await connection.execute(RedisCommand(["GET", "k"]))
                let closing = Task { await connection.close() }
                #expect(reply.string == value)
                await closing.value
            }
        }
    }
}
