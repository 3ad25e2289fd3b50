import CommonSupport
import NIOCore
import RedisClient
import RedisTestSupport
import Testing

@Suite("RedisConnection against a real redis-server")
struct RedisConnectionTests {
    @Test("every RESP3 reply type arrives typed (DEBUG PROTOCOL)")
    func everyReplyType() async throws {
        try await withRedisServer { server in
            try await server.withConnection { (connection: RedisConnection) async throws in
                #expect(connection.protocolVersion == 3)
                func debug(_ type: String) async throws -> RESPValue {
                    try await connection.send(["DEBUG", "PROTOCOL", type])
                }
                #expect(try await debug("string") == .bulkString(ByteBuffer(string: "Hello World")))
                #expect(try await debug("integer") == .integer(12345))
                #expect(try await debug("double") == .double(3.141))
                #expect(try await debug("bignum") == .bigNumber(ByteBuffer(string: "1234567999999999999999999999999999999")))
                #expect(try await debug("null") == .null)
                #expect(try await debug("array") == .array([.integer(0), .integer(1), .integer(2)]))
                #expect(try await debug("set") == .set([.integer(0), .integer(1), .integer(2)]))
                #expect(
                    try await debug("map")
                        == .map([(.integer(0), .boolean(false)), (.integer(1), .boolean(true)), (.integer(2), .boolean(false))])
                )
                #expect(try await debug("true") == .boolean(true))
                #expect(try await debug("false") == .boolean(false))
                #expect(
                    try await debug("verbatim")
                        == .verbatimString(format: "txt", ByteBuffer(string: "This is a verbatim\nstring"))
                )
                let attributed = try await debug("attrib")
                guard case .attribute(let attributes, let value) = attributed else {
                    Issue.record("expected an attribute, got \(attributed)")
                    return
                }
                #expect(attributes.first?.key == .bulkString(ByteBuffer(string: "key-popularity")))
                #expect(value == .bulkString(ByteBuffer(string: "Some real reply following the attribute")))
                // The push goes to pushMessages; the command gets the reply that follows it.
                #expect(try await debug("push") == .bulkString(ByteBuffer(string: "Some real reply following the push reply")))
                var pushes = connection.pushMessages.makeAsyncIterator()
                #expect(await pushes.next() == .push([.bulkString(ByteBuffer(string: "server-cpu-usage")), .integer(42)]))
                // Simple strings, errors.
                #expect(try await connection.send(["SET", "k", "v"]) == .simpleString(ByteBuffer(string: "OK")))
                let error = await expectRedisError { _ = try await connection.send(["NOSUCHCOMMAND"]) }
                #expect(error?.code == .serverError)
                #expect(error?.serverCode == "ERR")
            }
        }
    }

    @Test("RESP2: forced, and as fallback when the server refuses HELLO")
    func resp2() async throws {
        try await withRedisServer(.init(password: "pw", extraArguments: ["--rename-command", "HELLO", ""])) { server in
            try await server.withConnection(server.configuration(database: 1)) { (connection: RedisConnection) async throws in
                #expect(connection.protocolVersion == 2)
                #expect(try await connection.send(["DEBUG", "PROTOCOL", "map"]).array?.count == 6)
                try await connection.set("a", value: "1")
                #expect(try await connection.getString("a") == "1")
            }
            var wrong = server.configuration(password: "nope")
            wrong.protocolVersion = .resp2
            let error = await expectRedisError { _ = try await RedisConnection.connect(configuration: wrong) }
            #expect(error?.code == .authenticationFailed)
        }
    }

    @Test("typed helpers: GET/SET options, MGET/MSET, DEL/UNLINK/EXISTS, PEXPIRE/PTTL, SCAN, PING, INFO, PUBLISH, binary data")
    func typedHelpers() async throws {
        try await withRedisServer { server in
            try await server.withConnection { c in
                #expect(try await c.ping() == "PONG")
                #expect(try await c.get("missing") == nil)
                let binaryKey: [UInt8] = [0, 13, 10, 255, 0x24]
                let binaryValue: [UInt8] = Array(0...255)
                #expect(try await c.set(binaryKey, value: binaryValue))
                #expect(try await c.get(binaryKey).map { Array($0.readableBytesView) } == binaryValue)
                #expect(try await c.set("k", value: "v1", condition: .ifNotExists))
                #expect(try await c.set("k", value: "v2", condition: .ifNotExists) == false)
                #expect(try await c.set("absent", value: "x", condition: .ifExists) == false)
                #expect(try await c.set("k", value: "v3", expiration: .after(.seconds(100))))
                let ttl = try await c.pttl("k")
                #expect(ttl > 90_000 && ttl <= 100_000)
                #expect(try await c.set("k", value: "v4", expiration: .keepTTL))
                #expect(try await c.pttl("k") > 90_000)
                #expect(try await c.setReturningOldValue("k", value: "v5").map { String(buffer: $0) } == "v4")
                #expect(try await c.pttl("k") == -1)
                #expect(try await c.pttl("absent") == -2)
                #expect(try await c.pexpire("k", after: .milliseconds(50_000)))
                #expect(try await c.pexpire("absent", after: .seconds(1)) == false)
                try await c.mset([(key: "m1", value: "1"), (key: "m2", value: "2")])
                let values = try await c.mget(["m1", "nope", "m2"])
                #expect(values.map { $0.map { String(buffer: $0) } } == ["1", nil, "2"])
                #expect(try await c.exists(["m1", "m2", "nope"]) == 2)
                #expect(try await c.del(["m1", "nope"]) == 1)
                #expect(try await c.unlink(["m2"]) == 1)
                for i in 0..<30 { try await c.set("scan:\(i)", value: i) }
                var cursor = 0
                var seen = Set<String>()
                repeat {
                    let page = try await c.scan(cursor: cursor, match: "scan:*", count: 7)
                    cursor = page.cursor
                    for key in page.keys { seen.insert(String(buffer: key)) }
                } while cursor != 0
                #expect(seen.count == 30)
                // The whole iteration in one call, batch by batch, through the protocol as a pool or cluster would be.
                let executor: any RedisCommandExecutor = c
                var batches = 0
                var all = Set<String>()
                try await executor.scan(match: "scan:*", count: 7) { keys in
                    batches += 1
                    #expect(!keys.isEmpty)
                    for key in keys { all.insert(String(buffer: key)) }
                }
                #expect(all == seen)
                #expect(batches >= 2)
                #expect(try await c.info(section: "server").contains("redis_version"))
                #expect(try await c.publish("news", message: "hi") == 0)
                try await c.flushdb()
                #expect(try await c.exists(["k"]) == 0)
                try await c.send(["LPUSH", "list", "x"])
                let error = await expectRedisError { _ = try await c.get("list") }
                #expect(error?.serverCode == "WRONGTYPE")
                #expect(error?.message.contains("WRONGTYPE") == true)
                #expect(try await c.send(command: [ByteBuffer(string: "ECHO"), ByteBuffer(bytes: [0, 1])]).bytes == [0, 1])
                #expect(try await c.send("INCRBY", "counter", 5).int == 5)
            }
        }
    }

    @Test("executeToReply: the order of the callers' beforeSending is the order Redis runs their commands")
    func executeToReplyRunsInTheOrderOfBeforeSending() async throws {
        try await withRedisServer { server in
            try await server.withConnection { (connection: RedisConnection) async throws in
                let sent = Locked<[Int]>([])
                var counts = [Int: Int]()
                try await withThrowingTaskGroup(of: (Int, Int?).self) { group in
                    for caller in 0..<500 {
                        group.addTask {
                            let reply = try await connection.executeToReply(RedisCommand("INCR", "n"), timeout: .seconds(10)) {
                                sent.withLock { $0.append(caller) }
                            }
                            return (caller, reply.int)
                        }
                    }
                    for try await (caller, count) in group { counts[caller] = count }
                }
                let order = sent.withLock { $0 }
                #expect(order.count == 500)
                // INCR answers how many ran before it: the caller whose beforeSending ran n-th got n.
                let outOfOrder = order.enumerated().filter { counts[$0.element] != $0.offset + 1 }.count
                #expect(outOfOrder == 0)
                #expect(!connection.isClosed)
            }
        }
    }

    @Test("10k commands pipelined in one batch and 10k concurrent commands on one connection")
    func pipelining() async throws {
        try await withRedisServer { server in
            try await server.withConnection { (connection: RedisConnection) async throws in
                let commands = (0..<10_000).map { RedisCommand.set("key:\($0)", value: "value:\($0)") }
                let replies = try await connection.pipeline(commands)
                #expect(replies.count == 10_000)
                #expect(replies.allSatisfy { (try? $0.get()) == .simpleString(ByteBuffer(string: "OK")) })
                let mixed = try await connection.pipeline([.get("key:1"), RedisCommand("NOPE"), .get("key:2")])
                #expect((try? mixed[0].get())?.string == "value:1")
                #expect(throws: RedisError.self) { try mixed[1].get() }
                #expect((try? mixed[2].get())?.string == "value:2")
                try await withThrowingTaskGroup(of: Bool.self) { group in
                    for i in 0..<10_000 {
                        group.addTask { try await connection.getString("key:\(i)") == "value:\(i)" }
                    }
                    var matched = 0
                    for try await ok in group where ok { matched += 1 }
                    #expect(matched == 10_000)
                }
            }
        }
    }

    @Test("AUTH: right password works; wrong or missing password is an authentication error")
    func authentication() async throws {
        try await withRedisServer(.init(password: "s3cret")) { server in
            try await server.withConnection(server.configuration(password: "s3cret")) { (connection: RedisConnection) async throws in
                #expect(try await connection.ping() == "PONG")
            }
            let wrong = await expectRedisError {
                _ = try await RedisConnection.connect(configuration: server.configuration(password: "wrong"))
            }
            #expect(wrong?.code == .authenticationFailed)
            #expect(wrong?.serverCode == "WRONGPASS")
            var none = server.configuration()
            none.password = nil
            let missing = await expectRedisError { _ = try await RedisConnection.connect(configuration: none) }
            #expect(missing?.code == .authenticationFailed)
        }
    }

    @Test("ACL user: logs in with name and password; its rules apply")
    func aclUser() async throws {
        let users = [
            RedisServer.Options.User(name: "alice", password: "pa55"),
            RedisServer.Options.User(name: "reader", password: "r", rules: ["~*", "+@read", "+hello", "+ping"]),
        ]
        try await withRedisServer(.init(users: users)) { server in
            try await server.withConnection(server.configuration(password: "pa55", username: "alice")) { (connection: RedisConnection) async throws in
                #expect(try await connection.send(["ACL", "WHOAMI"]).string == "alice")
            }
            try await server.withConnection(server.configuration(password: "r", username: "reader")) { (connection: RedisConnection) async throws in
                #expect(try await connection.get("x") == nil)
                let error = await expectRedisError { _ = try await connection.set("x", value: "1") }
                #expect(error?.serverCode == "NOPERM")
            }
            let error = await expectRedisError {
                _ = try await RedisConnection.connect(configuration: server.configuration(password: "bad", username: "alice"))
            }
            #expect(error?.code == .authenticationFailed)
        }
    }

    @Test("SELECT: databases are isolated; an invalid database fails the connect")
    func selectIsolation() async throws {
        try await withRedisServer { server in
            try await server.withConnection(server.configuration(database: 3)) { db3 in
                try await db3.set("only-in-3", value: "yes")
                try await server.withConnection { db0 in
                    #expect(try await db0.get("only-in-3") == nil)
                    try await db0.select(database: 3)
                    #expect(try await db0.getString("only-in-3") == "yes")
                }
            }
            let error = await expectRedisError {
                _ = try await RedisConnection.connect(configuration: server.configuration(database: 99))
            }
            #expect(error?.code == .invalidConfiguration)
        }
    }

    @Test("TLS: connects with the throwaway CA, fails without it")
    func tls() async throws {
        try await withRedisServer(.init(tls: true)) { server in
            var configuration = server.configuration()
            configuration.tls = try .verifying(caCertificatePath: server.caCertificatePath)
            try await server.withConnection(configuration) { (connection: RedisConnection) async throws in
                try await connection.set("secure", value: "yes")
                #expect(try await connection.getString("secure") == "yes")
            }
            // By name, too: the certificate is for localhost.
            var byName = configuration
            byName.host = "localhost"
            try await server.withConnection(byName) { (c: RedisConnection) async throws in #expect(try await c.ping() == "PONG") }
            // System trust store: the throwaway CA is unknown.
            var untrusted = server.configuration()
            untrusted.tls = try .verifying()
            let error = await expectRedisError { _ = try await RedisConnection.connect(configuration: untrusted) }
            #expect(error?.code == .tls)
            // From a rediss:// URL with the CA given.
            let fromURL = try RedisConnectionConfiguration(url: server.url, tls: configuration.tls)
            try await server.withConnection(fromURL) { (c: RedisConnection) async throws in #expect(try await c.ping() == "PONG") }
        }
    }

    @Test("a paused server: the command fails within its timeout and every command in flight fails")
    func timeoutOnPausedServer() async throws {
        try await withRedisServer { server in
            try await server.withConnection(server.configuration(commandTimeout: .milliseconds(500))) { (connection: RedisConnection) async throws in
                try await connection.set("k", value: "v")
                try server.pause()
                defer { try? server.resume() }
                let start = ContinuousClock.now
                async let other = expectRedisError { _ = try await connection.execute(.get("k"), timeout: .seconds(30)) }
                try await Task.sleep(for: .milliseconds(20))
                let error = await expectRedisError { _ = try await connection.get("k") }
                let otherError = await other
                let elapsed = ContinuousClock.now - start
                #expect(error?.code == .timeout)
                #expect(otherError?.code == .connectionClosed)
                #expect(elapsed < .milliseconds(1500), "took \(elapsed)")
                // The connection is poisoned: later commands fail at once.
                try await eventually { connection.isClosed }
                #expect(connection.isClosed)
                let later = await expectRedisError { _ = try await connection.get("k") }
                #expect(later?.code == .connectionClosed)
            }
        }
    }

    @Test("a server killed mid-command fails the command promptly")
    func serverKilledMidCommand() async throws {
        try await withRedisServer { server in
            let connection = try await RedisConnection.connect(configuration: server.configuration())
            let start = ContinuousClock.now
            async let blocked = expectRedisError { _ = try await connection.send(["BLPOP", "nothing", "20"]) }
            try await Task.sleep(for: .milliseconds(200))
            await server.kill()
            let error = await blocked
            #expect(error?.code == .connectionClosed)
            #expect(ContinuousClock.now - start < .seconds(5))
            await connection.close()
        }
    }

    @Test("cancelling the waiting task fails it with `cancelled` and closes the connection")
    func cancellation() async throws {
        try await withRedisServer { server in
            let connection = try await RedisConnection.connect(configuration: server.configuration())
            let task = Task { try await connection.send(["BLPOP", "nothing", "20"]) }
            try await Task.sleep(for: .milliseconds(200))
            let start = ContinuousClock.now
            task.cancel()
            let result = await task.result
            #expect(ContinuousClock.now - start < .seconds(1))
            guard case .failure(let error as RedisError) = result else {
                Issue.record("expected a RedisError, got \(result)")
                return
            }
            #expect(error.code == .cancelled)
            try await eventually { connection.isClosed }
            #expect(connection.isClosed)
            await connection.close()
        }
    }

    @Test("push messages (client tracking invalidations) go to pushMessages, not to replies")
    func pushMessages() async throws {
        try await withRedisServer { server in
            try await server.withConnection { tracked in
                try await tracked.send(["CLIENT", "TRACKING", "on"])
                try await tracked.set("watched", value: "1")
                _ = try await tracked.get("watched")
                _ = try await server.withConnection { other in try await other.set("watched", value: "2") }
                #expect(try await tracked.getString("watched") == "2")
                var iterator = tracked.pushMessages.makeAsyncIterator()
                let push = await iterator.next()
                #expect(push?.array?.first?.string == "invalidate")
            }
        }
    }

    @Test("connecting to a closed port is a connectFailed error")
    func connectFailure() async throws {
        let server = try await RedisServer.start()
        let configuration = server.configuration()
        await server.stop()
        let error = await expectRedisError { _ = try await RedisConnection.connect(configuration: configuration) }
        #expect(error?.code == .connectFailed)
        #expect(error?.message.contains("\(configuration.port)") == true)
    }

    @Test("close fails nothing twice and leaves no client on the server")
    func closeLeavesNoClient() async throws {
        try await withRedisServer { server in
            let connections = try await withThrowingTaskGroup(of: RedisConnection.self) { group in
                for _ in 0..<5 { group.addTask { try await RedisConnection.connect(configuration: server.configuration()) } }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            #expect(try await server.connectedClients() == 5)
            for connection in connections {
                await connection.close()
                await connection.close()
            }
            try await eventually { try await server.connectedClients() == 0 }
            #expect(try await server.connectedClients() == 0)
        }
    }
}
