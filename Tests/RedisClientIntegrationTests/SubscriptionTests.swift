import NIOCore
import RedisTestSupport
import Testing

@testable import RedisClient

/// `RedisSubscription` against a real server, in both protocol versions.
@Suite("Pub/sub subscriptions")
struct SubscriptionTests {
    static let protocols: [RedisConnectionConfiguration.ProtocolVersion] = [.resp3, .resp2]

    func configuration(_ server: RedisServer, _ version: RedisConnectionConfiguration.ProtocolVersion) -> RedisConnectionConfiguration {
        var configuration = server.configuration(commandTimeout: .seconds(5))
        configuration.protocolVersion = version
        return configuration
    }

    @Test(arguments: protocols)
    func publishedMessagesArriveInOrderOnSubscribedChannelsOnly(version: RedisConnectionConfiguration.ProtocolVersion) async throws {
        let server = try await RedisServer.shared()
        let subscription = try await RedisSubscription.connect(configuration: configuration(server, version))
        #expect(subscription.connection.protocolVersion == (version == .resp3 ? 3 : 2))
        try await subscription.subscribe(to: ["sub-a-\(version)", "sub-b-\(version)"])
        #expect(subscription.channels == ["sub-a-\(version)", "sub-b-\(version)"])
        try await subscription.ping()
        let receivers = try await server.withConnection { publisher in
            [
                try await publisher.publish("sub-a-\(version)", message: "one"),
                try await publisher.publish("other-\(version)", message: "ignored"),
                try await publisher.publish("sub-b-\(version)", message: "two"),
            ]
        }
        #expect(receivers == [1, 0, 1])
        var received: [String] = []
        for await message in subscription.messages {
            received.append("\(message.channel)=\(message.text)")
            if received.count == 2 { break }
        }
        #expect(received == ["sub-a-\(version)=one", "sub-b-\(version)=two"])
        await subscription.close()
    }

    @Test(arguments: protocols)
    func unsubscribedChannelsStopDelivering(version: RedisConnectionConfiguration.ProtocolVersion) async throws {
        let server = try await RedisServer.shared()
        let connection = try await RedisConnection.connect(configuration: configuration(server, version))
        let subscription = try await connection.subscribe(to: ["u-a-\(version)", "u-b-\(version)"])
        try await subscription.unsubscribe(from: ["u-a-\(version)"])
        #expect(subscription.channels == ["u-b-\(version)"])
        let receivers = try await server.withConnection { publisher in
            [
                try await publisher.publish("u-a-\(version)", message: "gone"),
                try await publisher.publish("u-b-\(version)", message: "kept"),
            ]
        }
        #expect(receivers == [0, 1])
        var iterator = subscription.messages.makeAsyncIterator()
        #expect(await iterator.next()?.text == "kept")
        await subscription.close()
        #expect(await iterator.next() == nil, "the stream ends once closed")
    }

    @Test(arguments: protocols)
    func aKilledSubscriberConnectionEndsTheStreamAndFailsLaterCalls(version: RedisConnectionConfiguration.ProtocolVersion) async throws {
        let server = try await RedisServer.shared()
        let subscription = try await RedisSubscription.connect(configuration: configuration(server, version))
        try await subscription.subscribe(to: ["k-\(version)"])
        try await server.withConnection { admin in
            _ = try await admin.send("CLIENT", "KILL", "TYPE", "pubsub")
        }
        for await _ in subscription.messages {}
        #expect(subscription.isClosed)
        await #expect(throws: RedisError.self) { try await subscription.subscribe(to: ["again"]) }
        await subscription.close()
    }

    @Test func subscribeThroughExecuteIsAClearErrorAndTheConnectionStaysUsable() async throws {
        let server = try await RedisServer.shared()
        try await server.withConnection { connection in
            let error = await #expect(throws: RedisError.self) { try await connection.send("SUBSCRIBE", "x") }
            #expect(error?.code == .unsupportedCommand)
            let pipelineError = await #expect(throws: RedisError.self) {
                try await connection.pipeline([RedisCommand("PING"), RedisCommand(["psubscribe", "x*"])])
            }
            #expect(pipelineError?.code == .unsupportedCommand)
            let pong = try await connection.send("PING").string
            #expect(pong == "PONG")
            // A connection belongs to one subscription at most.
            let subscription = try await connection.subscribe(to: ["once"])
            await #expect(throws: RedisError.self) { _ = try await connection.subscribe(to: ["twice"]) }
            _ = subscription
        }
    }

    @Test func messagesBeyondTheBufferEndTheStreamInsteadOfBeingDropped() async throws {
        let server = try await RedisServer.shared()
        var configuration = configuration(server, .resp3)
        configuration.pushBufferCapacity = 2
        let subscription = try await RedisSubscription.connect(configuration: configuration)
        try await subscription.subscribe(to: ["overflow"])
        try await server.withConnection { publisher in
            for i in 0..<5 { try await publisher.publish("overflow", message: "\(i)") }
        }
        var received: [String] = []
        for await message in subscription.messages { received.append(message.text) }
        #expect(received == ["0", "1"], "the buffered messages, then the end of the stream: never a silent gap")
        #expect(subscription.isClosed)
        await subscription.close()
    }

    @Test(arguments: protocols)
    func aChannelTheACLForbidsIsAServerErrorNotAHang(version: RedisConnectionConfiguration.ProtocolVersion) async throws {
        // May use channels starting with "allowed:" only.
        let user = RedisServer.Options.User(name: "limited", password: "pw", rules: ["~*", "resetchannels", "&allowed:*", "+@all"])
        try await withRedisServer(.init(users: [user])) { server in
            var configuration = configuration(server, version)
            configuration.username = "limited"
            configuration.password = "pw"
            configuration.commandTimeout = .seconds(30)
            let subscription = try await RedisSubscription.connect(configuration: configuration)
            let error = await #expect(throws: RedisError.self) { try await subscription.subscribe(to: ["secret"]) }
            #expect(error?.code == .serverError)
            #expect(error?.serverCode == "NOPERM")
            // The connection is still usable for channels it may use.
            try await subscription.subscribe(to: ["allowed:news"])
            #expect(subscription.channels == ["allowed:news"])
            try await subscription.ping()
            await subscription.close()
        }
    }

    @Test func anEmptyChannelListIsRefused() async throws {
        let server = try await RedisServer.shared()
        let subscription = try await RedisSubscription.connect(configuration: server.configuration())
        let error = await #expect(throws: RedisError.self) { try await subscription.subscribe(to: []) }
        #expect(error?.code == .invalidConfiguration)
        await subscription.close()
    }
}
