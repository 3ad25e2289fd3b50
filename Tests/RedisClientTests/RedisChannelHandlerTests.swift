import NIOCore
import NIOEmbedded
import Testing

@testable import RedisClient

/// Feeds bytes straight into the channel handler through an `EmbeddedChannel`: no server involved.
@Suite("RedisChannelHandler with EmbeddedChannel")
struct RedisChannelHandlerTests {
    /// Sends one command (or a batch of `batch` commands) on a fresh embedded channel, then feeds the
    /// `inbound` chunks; returns the replies and whether the channel was closed. Everything runs
    /// synchronously inside the continuation body, on one thread, as `EmbeddedChannel` requires.
    func exchange(_ inbound: [String], batch: Int? = nil) async -> (Result<[RESPValue], any Error>, closed: Bool) {
        let closed = ClosedFlag()
        if let batch {
            let result: Result<[RESPValue], any Error> = await asyncResult {
                try await withCheckedThrowingContinuation { continuation in
                    self.drive(inbound, closed: closed) { handler, command in
                        var bytes = ByteBuffer()
                        for _ in 0..<batch { bytes.writeImmutableBuffer(command) }
                        handler.send(bytes, id: 1, timeout: nil, batchSize: batch, promise: .batch(continuation))
                    }
                }
            }
            return (result, closed.value)
        }
        let result: Result<RESPValue, any Error> = await asyncResult {
            try await withCheckedThrowingContinuation { continuation in
                self.drive(inbound, closed: closed) { handler, command in
                    handler.send(command, id: 1, timeout: nil, batchSize: nil, promise: .single(continuation))
                }
            }
        }
        return (result.map { [$0] }, closed.value)
    }

    private func drive(_ inbound: [String], closed: ClosedFlag, send: (RedisChannelHandler, ByteBuffer) -> Void) {
        let channel = EmbeddedChannel()
        let (_, push) = AsyncStream<RESPValue>.makeStream()
        let handler = RedisChannelHandler(
            eventLoop: channel.eventLoop,
            maxBulkLength: 1024,
            maxNestingDepth: 8,
            pushContinuation: push
        )
        try! channel.pipeline.syncOperations.addHandler(handler)
        try! channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        send(handler, RedisCommand(["GET", "k"]).encoded)
        precondition((try? channel.readOutbound(as: ByteBuffer.self)) != nil, "the command was written")
        for chunk in inbound {
            if !channel.isActive { break }
            _ = try? channel.writeInbound(ByteBuffer(string: chunk))
        }
        closed.value = !channel.isActive
        // Anything still pending fails when the channel goes away.
        _ = try? channel.finish()
    }

    final class ClosedFlag: @unchecked Sendable {
        // Safe: only touched on the test's thread inside the synchronous continuation body, then read after it.
        var value = false
    }

    @Test("a reply split across reads is matched to its command")
    func splitReply() async throws {
        let (result, closed) = await exchange(["$5\r\nhe", "llo", "\r", "\n"])
        #expect(try result.get() == [.bulkString(ByteBuffer(string: "hello"))])
        #expect(!closed)
    }

    @Test("a batch gets all its replies, delivered in one read")
    func batchInOneRead() async throws {
        let (result, _) = await exchange(["+OK\r\n:1\r\n$-1\r\n"], batch: 3)
        #expect(try result.get() == [.simpleString(ByteBuffer(string: "OK")), .integer(1), .null])
    }

    @Test("malformed reply bytes are a protocol error that closes the connection", arguments: [
        "?garbage\r\n", "$2000\r\n", String(repeating: "*1\r\n", count: 20) + ":1\r\n", ":notanumber\r\n", "$3\r\nabcde",
    ])
    func malformedReply(bytes: String) async {
        let (result, closed) = await exchange([bytes])
        guard case .failure(let error as RedisError) = result else {
            Issue.record("expected a protocol error, got \(result)")
            return
        }
        #expect(error.code == .protocolError)
        #expect(closed)
    }

    @Test("a reply nobody asked for closes the connection")
    func unsolicitedReply() async {
        let (result, closed) = await exchange(["+OK\r\n+EXTRA\r\n"])
        #expect((try? result.get()) == [.simpleString(ByteBuffer(string: "OK"))])
        #expect(closed)
    }

    @Test("push messages in between do not take a command's reply")
    func pushIsNotAReply() async throws {
        let (result, closed) = await exchange([">2\r\n+invalidate\r\n*0\r\n", ":7\r\n"])
        #expect(try result.get() == [.integer(7)])
        #expect(!closed)
    }

    @Test("a push that does not fit in the reader's buffer closes the connection instead of being dropped")
    func pushOverflowClosesTheConnection() async throws {
        let channel = EmbeddedChannel()
        let (pushes, continuation) = AsyncStream<RESPValue>.makeStream(bufferingPolicy: .bufferingNewest(2))
        let handler = RedisChannelHandler(eventLoop: channel.eventLoop, maxBulkLength: 1024, maxNestingDepth: 8, pushContinuation: continuation)
        try channel.pipeline.syncOperations.addHandler(handler)
        try await channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).get()
        for key in ["a", "b"] {
            _ = try? channel.writeInbound(ByteBuffer(string: ">2\r\n+invalidate\r\n*1\r\n+\(key)\r\n"))
        }
        #expect(channel.isActive, "two pushes fit")
        _ = try? channel.writeInbound(ByteBuffer(string: ">2\r\n+invalidate\r\n*1\r\n+c\r\n"))
        #expect(!channel.isActive, "the third push overflowed the buffer")
        _ = try? channel.finish()
        var received: [RESPValue] = []
        for await push in pushes { received.append(push) }
        // The stream ends, so its reader learns that something was lost.
        #expect(received.count == 2)
    }
}


func asyncResult<T>(_ body: () async throws -> T) async -> Result<T, any Error> {
    do { return .success(try await body()) } catch { return .failure(error) }
}
