import NIOCore
import Testing

@testable import RedisClient

@Suite("Cluster hash slots")
struct ClusterHashSlotTests {
    @Test func crc16MatchesTheXModemCheckValue() {
        #expect(ClusterHashSlot.crc16(Array("123456789".utf8)) == 0x31C3)
    }

    @Test func knownKeysMapToTheSlotsRedisGivesThem() {
        // From CLUSTER KEYSLOT on a real server.
        #expect(ClusterHashSlot.slot(of: "foo") == 12182)
        #expect(ClusterHashSlot.slot(of: "bar") == 5061)
        #expect(ClusterHashSlot.slot(of: "") == 0)
    }

    @Test func aHashTagHashesOnlyTheTag() {
        #expect(ClusterHashSlot.slot(of: "{user1000}.following") == ClusterHashSlot.slot(of: "{user1000}.followers"))
        #expect(ClusterHashSlot.slot(of: "{user1000}.following") == ClusterHashSlot.slot(of: "user1000"))
    }

    @Test func anEmptyTagHashesTheWholeKey() {
        #expect(ClusterHashSlot.slot(of: "foo{}{bar}") == Int(ClusterHashSlot.crc16(Array("foo{}{bar}".utf8))) % 16384)
        #expect(ClusterHashSlot.slot(of: "foo{bar") == Int(ClusterHashSlot.crc16(Array("foo{bar".utf8))) % 16384)
    }

    @Test func theTagEndsAtTheFirstClosingBrace() {
        #expect(ClusterHashSlot.slot(of: "foo{{bar}}zap") == ClusterHashSlot.slot(of: "{bar"))
        #expect(ClusterHashSlot.slot(of: "foo{bar}{zap}") == ClusterHashSlot.slot(of: "bar"))
    }
}

@Suite("Cluster redirections")
struct ClusterRedirectTests {
    @Test func movedAndAskAreParsed() throws {
        let moved = try #require(ClusterRedirect(errorText: "MOVED 3999 127.0.0.1:6381"))
        #expect(moved == ClusterRedirect(kind: .moved, slot: 3999, address: ClusterNodeAddress(host: "127.0.0.1", port: 6381)))
        let ask = try #require(ClusterRedirect(errorText: "ASK 12182 10.0.0.5:7000"))
        #expect(ask.kind == .ask && ask.slot == 12182 && ask.address.host == "10.0.0.5" && ask.address.port == 7000)
        let ipv6 = try #require(ClusterRedirect(errorText: "MOVED 1 ::1:7001"))
        #expect(ipv6.address.host == "::1" && ipv6.address.port == 7001)
    }

    @Test func otherErrorsAndMalformedRedirectionsAreNotRedirections() {
        for text in ["ERR unknown command", "MOVED 3999", "MOVED x 127.0.0.1:1", "MOVED 16384 h:1", "ASK 1 h:0", "ASK 1 :7000", "TRYAGAIN"] {
            #expect(ClusterRedirect(errorText: text) == nil, "\(text)")
        }
    }

    @Test func aServerErrorKeepsItsTextForRedirections() {
        let error = RedisError.server("MOVED 3999 127.0.0.1:6381")
        #expect(error.serverCode == "MOVED" && error.serverText == "MOVED 3999 127.0.0.1:6381")
    }
}

@Suite("Cluster slot map")
struct ClusterSlotMapTests {
    let a = ClusterNodeAddress(host: "127.0.0.1", port: 7000)
    let b = ClusterNodeAddress(host: "127.0.0.1", port: 7001)
    let c = ClusterNodeAddress(host: "127.0.0.1", port: 7002)

    @Test func slotsRouteToTheirPrimaryAndMovedPatchesOneSlot() {
        var map = ClusterSlotMap([
            (.init(primary: a), [0...5460]), (.init(primary: b), [5461...10922]), (.init(primary: c), [10923...16383]),
        ])
        #expect(map.coversAllSlots && map.primaries == [a, b, c])
        #expect(map.primary(forSlot: 0) == a && map.primary(forSlot: 5461) == b && map.primary(forSlot: 16383) == c)
        #expect(map.primary(forSlot: 16384) == nil && map.primary(forSlot: -1) == nil)
        map.move(slot: 100, to: c)
        #expect(map.primary(forSlot: 100) == c && map.primary(forSlot: 99) == a && map.primary(forSlot: 101) == a)
        let d = ClusterNodeAddress(host: "127.0.0.1", port: 7003)
        map.move(slot: 200, to: d)
        #expect(map.primary(forSlot: 200) == d && map.primaries.contains(d))
    }

    @Test func aMapWithAGapDoesNotCoverEverySlot() {
        let map = ClusterSlotMap([(.init(primary: a), [0...100])])
        #expect(!map.coversAllSlots && map.primary(forSlot: 101) == nil)
        #expect(ClusterSlotMap().primaries.isEmpty)
    }

    private func bulk(_ text: String) -> RESPValue { .bulkString(ByteBuffer(string: text)) }

    private func node(_ port: Int, role: String, health: String = "online") -> RESPValue {
        .map([
            (bulk("id"), bulk("id\(port)")), (bulk("port"), .integer(Int64(port))), (bulk("ip"), bulk("127.0.0.1")),
            (bulk("endpoint"), bulk("127.0.0.1")), (bulk("role"), bulk(role)), (bulk("health"), bulk(health)),
        ])
    }

    @Test func clusterShardsRepliesAreParsedInRESP3AndRESP2() throws {
        let shard1 = RESPValue.map([
            (bulk("slots"), .array([.integer(0), .integer(100), .integer(200), .integer(300)])),
            (bulk("nodes"), .array([node(7000, role: "master"), node(7003, role: "replica")])),
        ])
        let shard2 = RESPValue.map([
            (bulk("slots"), .array([.integer(101), .integer(199)])),
            (bulk("nodes"), .array([node(7004, role: "replica", health: "failed"), node(7001, role: "master")])),
        ])
        for reply in [RESPValue.array([shard1, shard2]), .array([.array(shard1.array!), .array(shard2.array!)])] {
            let map = try ClusterSlotMap(shardsReply: reply, tls: false)
            #expect(map.primary(forSlot: 0) == a && map.primary(forSlot: 250) == a && map.primary(forSlot: 150) == b)
            #expect(map.primary(forSlot: 301) == nil)
            #expect(map.shard(forSlot: 0)?.replicas == [ClusterNodeAddress(host: "127.0.0.1", port: 7003)])
        }
    }

    @Test func clusterSlotsRepliesAreParsed() throws {
        let reply = RESPValue.array([
            .array([.integer(0), .integer(8191), .array([bulk("127.0.0.1"), .integer(7000), bulk("id0")]),
                    .array([bulk("127.0.0.1"), .integer(7003), bulk("id3")])]),
            .array([.integer(8192), .integer(16383), .array([bulk("127.0.0.1"), .integer(7001), bulk("id1")])]),
        ])
        let map = try ClusterSlotMap(slotsReply: reply)
        #expect(map.coversAllSlots && map.primary(forSlot: 8191) == a && map.primary(forSlot: 8192) == b)
        #expect(map.shard(forSlot: 1)?.replicas.map(\.port) == [7003])
    }

    @Test func malformedTopologyRepliesThrow() {
        #expect(throws: RedisError.self) { try ClusterSlotMap(shardsReply: .integer(1), tls: false) }
        #expect(throws: RedisError.self) { try ClusterSlotMap(slotsReply: .array([.array([.integer(5)])])) }
    }
}

@Suite("Cluster command routing")
struct ClusterCommandRouteTests {
    private func slot(_ command: RedisCommand) throws -> Int? {
        if case .slot(let slot) = try ClusterCommandRoute(command) { return slot }
        return nil
    }

    @Test func singleKeyCommandsRouteByTheirKey() throws {
        #expect(try slot(.get("foo")) == 12182)
        #expect(try slot(.set("{foo}.x", value: "v", expiration: .after(.seconds(1)))) == 12182)
        #expect(try slot(RedisCommand("PTTL", "bar")) == 5061)
    }

    @Test func keylessAndBroadcastCommands() throws {
        guard case .anyPrimary = try ClusterCommandRoute(RedisCommand(["PING"])) else { Issue.record("PING"); return }
        guard case .anyPrimary = try ClusterCommandRoute(RedisCommand("EVAL", "return 1", 0)) else { Issue.record("EVAL 0"); return }
        guard case .allPrimaries = try ClusterCommandRoute(RedisCommand("FLUSHDB", "ASYNC")) else { Issue.record("FLUSHDB"); return }
    }

    @Test func scriptsMustNameKeysOfOneSlot() throws {
        #expect(try slot(RedisCommand("EVAL", "return 1", 2, "{t}a", "{t}b", "arg")) == ClusterHashSlot.slot(of: "t"))
        let error = #expect(throws: RedisError.self) { try ClusterCommandRoute(RedisCommand("EVAL", "return 1", 2, "a", "b")) }
        #expect(error?.code == .invalidConfiguration)
    }

    @Test func selectScanAndTransactionsAreRefusedWithAClearError() {
        for command in [RedisCommand("SELECT", 1), RedisCommand("SCAN", 0), RedisCommand(["MULTI"]), RedisCommand(["KEYS", "*"])] {
            let error = #expect(throws: RedisError.self) { try ClusterCommandRoute(command) }
            #expect(error?.code == .invalidConfiguration)
        }
    }

    @Test func multiKeyCommandsAcrossSlotsAreSplitAndMergedInOrder() throws {
        let keys = ["a", "b", "{a}x", "c", "{b}y"]
        guard case .split(let multi) = try ClusterCommandRoute(RedisCommand(["MGET"] + keys)) else {
            Issue.record("MGET across slots should split")
            return
        }
        let parts = multi.perSlot()
        #expect(parts.map(\.positions) == [[0, 2], [1, 4], [3]])
        let arguments = parts.map { $0.command.decodedArguments()!.map { String(buffer: $0) } }
        #expect(arguments[0] == ["MGET", "a", "{a}x"] && parts.allSatisfy(\.command.isIdempotent))
        let replies = parts.map { part in
            (reply: RESPValue.array(part.positions.map { .bulkString(ByteBuffer(string: "v\($0)")) }), positions: part.positions)
        }
        let merged = try multi.merge(replies)
        #expect(merged.array?.map { $0.string } == ["v0", "v1", "v2", "v3", "v4"])

        guard case .split(let unlink) = try ClusterCommandRoute(RedisCommand(["UNLINK"] + keys)) else {
            Issue.record("UNLINK across slots should split")
            return
        }
        let counts = unlink.perSlot().map { (reply: RESPValue.integer(Int64($0.positions.count)), positions: $0.positions) }
        #expect(try unlink.merge(counts).int == 5)
        #expect(unlink.perSlot().allSatisfy { !$0.command.isIdempotent })
    }

    @Test func msetAcrossSlotsKeepsEachValueWithItsKey() throws {
        guard case .split(let multi) = try ClusterCommandRoute(RedisCommand(["MSET", "a", "1", "b", "2", "{a}z", "3"])) else {
            Issue.record("MSET across slots should split")
            return
        }
        let arguments = multi.perSlot().map { $0.command.decodedArguments()!.map { String(buffer: $0) } }
        #expect(arguments == [["MSET", "a", "1", "{a}z", "3"], ["MSET", "b", "2"]])
    }

    @Test func multiKeyCommandsInOneSlotAreNotSplit() throws {
        #expect(try slot(RedisCommand(["MGET", "{u}1", "{u}2"])) == ClusterHashSlot.slot(of: "u"))
    }

    @Test func encodedArgumentsAreDecodedBack() {
        let command = RedisCommand(["SET", "k", "", "PX", "10"])
        #expect(command.decodedArguments()?.map { String(buffer: $0) } == ["SET", "k", "", "PX", "10"])
    }
}

@Suite("Cluster configuration")
struct RedisClusterConfigurationTests {
    @Test func seedsAreParsedAndValidated() throws {
        let configuration = try RedisClusterConfiguration(
            seeds: ["127.0.0.1:7000", " 10.0.0.2:7001 "], connection: .init(host: "x", port: 1)
        )
        #expect(configuration.seeds.map(\.description) == ["127.0.0.1:7000", "10.0.0.2:7001"])
        #expect(throws: RedisError.self) { try RedisClusterConfiguration(seeds: ["nohost"], connection: .init(host: "x", port: 1)) }
        #expect(throws: RedisError.self) { try RedisClusterConfiguration(seeds: [], connection: .init(host: "x", port: 1)) }
        var database2 = RedisConnectionConfiguration(host: "x", port: 1)
        database2.database = 2
        let error = #expect(throws: RedisError.self) { try RedisClusterConfiguration(seeds: ["h:1"], connection: database2) }
        #expect(error?.code == .invalidConfiguration)
    }

    @Test func aSeedURLGivesCredentialsForEveryNode() throws {
        let configuration = try RedisClusterConfiguration(url: "redis://app:secret@10.0.0.1:7000")
        #expect(configuration.seeds == [ClusterNodeAddress(host: "10.0.0.1", port: 7000)])
        let node = configuration.connection(to: ClusterNodeAddress(host: "10.0.0.9", port: 7005))
        #expect(node.host == "10.0.0.9" && node.port == 7005 && node.username == "app" && node.password == "secret")
    }
}

@Suite("Cluster single-key fast path")
struct ClusterSingleKeyFastPathTests {
    @Test func commonSingleKeyCommandsAreRoutedFromTheirBytesInAnyCase() {
        #expect(RedisCommand.get("foo").singleKeySlot() == 12182)
        #expect(RedisCommand("get", "foo").singleKeySlot() == 12182)
        #expect(RedisCommand("Set", "{foo}.x", "v", "EX", "10").singleKeySlot() == 12182)
        #expect(RedisCommand("SMEMBERS", "bar").singleKeySlot() == 5061)
        #expect(RedisCommand("pttl", "").singleKeySlot() == ClusterHashSlot.slot(of: ""))
    }

    @Test func otherCommandsAndMalformedBytesTakeTheFullRoute() throws {
        // Not in the list (or a longer name sharing a prefix), keyless, or several keys.
        for command in [
            RedisCommand("GETX", "foo"), RedisCommand("GETRANGE", "foo", 0, 1), RedisCommand("MGET", "a", "b"),
            RedisCommand("GET"), RedisCommand("PING"), RedisCommand("SMEMBERSX", "a"),
        ] {
            #expect(command.singleKeySlot() == nil, "\(command)")
        }
        // The full route still gives the same slot as the fast path for these.
        if case .slot(let slot) = try ClusterCommandRoute(RedisCommand("GETRANGE", "foo", 0, 1)) {
            #expect(slot == 12182)
        } else {
            Issue.record("GETRANGE is routed by its key")
        }
    }
}
