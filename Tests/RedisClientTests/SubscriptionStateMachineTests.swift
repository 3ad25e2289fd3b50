import NIOCore
import NIOEmbedded
import Testing

@testable import RedisClient

/// The subscriber-mode pieces without a server: the confirmation state machine, RESP2 routing in the channel
/// handler, and the refusal of `SUBSCRIBE` as an ordinary command.
@Suite("Subscriptions without a server")
struct SubscriptionStateMachineTests {
    typealias Machine = RedisSubscriptionStateMachine<String>

    static func push(_ parts: RESPValue...) -> RESPValue { .push(parts) }
    static func bulk(_ text: String) -> RESPValue { .bulkString(ByteBuffer(string: text)) }

    @Test func aSubscribeRequestIsDoneOnlyWhenEveryChannelIsConfirmed() {
        var machine = Machine()
        guard case .send = machine.request(.subscribe, channels: ["a", "b"], id: 1, waiter: "w1") else {
            Issue.record("an open machine sends")
            return
        }
        guard case .none = machine.received(Self.push(Self.bulk("subscribe"), Self.bulk("a"), .integer(1))) else {
            Issue.record("one of two confirmations does not finish the request")
            return
        }
        #expect(machine.channels == ["a"])
        guard case .resume(let waiters) = machine.received(Self.push(Self.bulk("subscribe"), Self.bulk("b"), .integer(2))) else {
            Issue.record("the second confirmation finishes it")
            return
        }
        #expect(waiters == ["w1"])
        #expect(machine.channels == ["a", "b"])
    }

    @Test func messagesBetweenConfirmationsAreDelivered() {
        var machine = Machine()
        _ = machine.request(.subscribe, channels: ["a"], id: 1, waiter: "w1")
        _ = machine.received(Self.push(Self.bulk("subscribe"), Self.bulk("a"), .integer(1)))
        _ = machine.request(.subscribe, channels: ["b"], id: 2, waiter: "w2")
        guard case .deliver(let message) = machine.received(Self.push(Self.bulk("message"), Self.bulk("a"), Self.bulk("hi"))) else {
            Issue.record("a message is delivered")
            return
        }
        #expect(message == RedisPubSubMessage(channel: "a", payload: ByteBuffer(string: "hi")))
        guard case .resume(let waiters) = machine.received(.array([Self.bulk("subscribe"), Self.bulk("b"), .integer(2)])) else {
            Issue.record("a RESP2 confirmation (an array) counts as well")
            return
        }
        #expect(waiters == ["w2"])
    }

    @Test func unsubscribeConfirmationsRemoveChannelsAndFinishTheRequest() {
        var machine = Machine()
        _ = machine.request(.subscribe, channels: ["a", "b"], id: 1, waiter: "s")
        _ = machine.received(Self.push(Self.bulk("subscribe"), Self.bulk("a"), .integer(1)))
        _ = machine.received(Self.push(Self.bulk("subscribe"), Self.bulk("b"), .integer(2)))
        _ = machine.request(.unsubscribe, channels: ["a"], id: 2, waiter: "u")
        guard case .resume(let waiters) = machine.received(Self.push(Self.bulk("unsubscribe"), Self.bulk("a"), .integer(1))) else {
            Issue.record("the unsubscribe is confirmed")
            return
        }
        #expect(waiters == ["u"])
        #expect(machine.channels == ["b"])
    }

    @Test func aRefusalFailsTheOldestWaitingRequest() {
        var machine = Machine()
        _ = machine.request(.subscribe, channels: ["a"], id: 1, waiter: "w1")
        _ = machine.request(.subscribe, channels: ["b"], id: 2, waiter: "w2")
        let refusal = RESPValue.push([
            .simpleString(ByteBuffer(string: RedisChannelHandler.subscribeErrorKind)),
            .simpleError(ByteBuffer(string: "NOPERM no permissions")),
        ])
        guard case .fail(let waiter, let error) = machine.received(refusal) else {
            Issue.record("the refusal fails a request")
            return
        }
        #expect(waiter == "w1")
        #expect(error.serverCode == "NOPERM")
        guard case .resume(let waiters) = machine.received(Self.push(Self.bulk("subscribe"), Self.bulk("b"), .integer(1))) else {
            Issue.record("the other request still completes")
            return
        }
        #expect(waiters == ["w2"])
    }

    @Test func closingFailsEveryWaiterAndLaterRequests() {
        var machine = Machine()
        _ = machine.request(.subscribe, channels: ["a"], id: 1, waiter: "w1")
        _ = machine.request(.subscribe, channels: ["b"], id: 2, waiter: "w2")
        #expect(machine.cancel(id: 2) == "w2")
        #expect(machine.cancel(id: 2) == nil, "a waiter is handed out once")
        #expect(machine.close(error: .connectionClosed()) == ["w1"])
        #expect(machine.close(error: .connectionClosed()).isEmpty)
        guard case .fail(let waiter, let error) = machine.request(.subscribe, channels: ["c"], id: 3, waiter: "w3") else {
            Issue.record("a closed machine fails new requests")
            return
        }
        #expect(waiter == "w3")
        #expect(error.code == .connectionClosed)
        #expect(machine.channels.isEmpty)
    }

    @Test("SUBSCRIBE and friends are recognised in any case; other commands are not", arguments: [
        ("SUBSCRIBE", true), ("subscribe", true), ("PSubscribe", true), ("UNSUBSCRIBE", true), ("SUNSUBSCRIBE", true),
        ("MONITOR", true), ("GET", false), ("PUBLISH", false), ("SUBSCRIBERS", false), ("SUBSCRIB", false),
    ])
    func subscriberModeCommandsAreRecognised(name: String, recognised: Bool) {
        #expect((RedisCommand([name, "channel"]).subscriberModeName != nil) == recognised)
    }

    @Test func aResp2SubscriberConnectionRoutesMessagesToThePushStreamAndMatchesPing() async throws {
        let channel = EmbeddedChannel()
        let (pushes, continuation) = AsyncStream<RESPValue>.makeStream()
        let handler = RedisChannelHandler(eventLoop: channel.eventLoop, maxBulkLength: 1024, maxNestingDepth: 8, pushContinuation: continuation)
        try channel.pipeline.syncOperations.addHandler(handler)
        try await channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).get()
        // Before subscribing, an array that looks like a message is an ordinary (here unsolicited) reply.
        #expect(!RedisChannelHandler.isPubSubArray([Self.bulk("pong"), Self.bulk("")]))
        #expect(handler.sendUnanswered(RedisCommand(["SUBSCRIBE", "a"]).encoded) == nil)
        _ = try channel.readOutbound(as: ByteBuffer.self)
        _ = try channel.writeInbound(ByteBuffer(string: "*3\r\n$9\r\nsubscribe\r\n$1\r\na\r\n:1\r\n"))
        let ping: Result<RESPValue, any Error> = await asyncResult {
            try await withCheckedThrowingContinuation { reply in
                handler.send(RedisCommand(["PING"]).encoded, id: 1, timeout: nil, batchSize: nil, promise: .single(reply))
                _ = try? channel.writeInbound(ByteBuffer(string: "*3\r\n$7\r\nmessage\r\n$1\r\na\r\n$2\r\nhi\r\n"))
                _ = try? channel.writeInbound(ByteBuffer(string: "*2\r\n$4\r\npong\r\n$0\r\n\r\n"))
            }
        }
        #expect(try ping.get() == .array([Self.bulk("pong"), Self.bulk("")]))
        #expect(channel.isActive)
        _ = try? channel.finish()
        var received: [RESPValue] = []
        for await push in pushes { received.append(push) }
        #expect(received == [
            .push([Self.bulk("subscribe"), Self.bulk("a"), .integer(1)]),
            .push([Self.bulk("message"), Self.bulk("a"), Self.bulk("hi")]),
        ])
    }
}
