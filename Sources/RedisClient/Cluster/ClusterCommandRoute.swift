import NIOCore

/// Where a command goes in a cluster, decided from its name and keys.
package enum ClusterCommandRoute: Sendable {
    /// Every key is in this slot.
    case slot(Int)
    /// No key: any primary will do (`PING`, `INFO`, `EVAL` with no keys, …).
    case anyPrimary
    /// Runs on every primary; the first reply is returned (`FLUSHDB`, `FLUSHALL`, `SCRIPT LOAD`/`FLUSH`).
    case allPrimaries
    /// A multi-key command whose keys live in more than one slot: split per slot and merge the replies.
    case split(ClusterMultiKeyCommand)

    /// Decides the route of an encoded command, or throws a ``RedisError`` for commands a cluster cannot run.
    package init(_ command: RedisCommand) throws {
        // The common single-key commands are routed from the encoded bytes without making a String of the name.
        if let slot = command.singleKeySlot() {
            self = .slot(slot)
            return
        }
        guard let (_, name, _) = command.nameAndFirstArgument() else {
            throw RedisError(code: .invalidConfiguration, message: "the command is not a RESP array of bulk strings")
        }
        guard let arguments = command.decodedArguments() else {
            throw RedisError(code: .invalidConfiguration, message: "the command is not a RESP array of bulk strings")
        }
        switch name {
        case "SELECT", "SWAPDB", "MOVE":
            throw RedisError(
                code: .invalidConfiguration,
                message: "\(name) is not available in Redis Cluster mode, which has only database 0; use key prefixes (a namespace) instead of databases"
            )
        case "SCAN", "KEYS", "RANDOMKEY":
            throw RedisError(
                code: .invalidConfiguration,
                message: "\(name) sees only one node's keys in a Redis Cluster; use RedisClusterClient.scan(match:count:_:), which iterates every primary"
            )
        case "MULTI", "EXEC", "DISCARD", "WATCH", "UNWATCH", "SUBSCRIBE", "PSUBSCRIBE", "SSUBSCRIBE", "MONITOR":
            throw RedisError(
                code: .invalidConfiguration,
                message: "\(name) needs one connection of its own and cannot be routed by the cluster client; use a RedisConnection to the node serving the keys"
            )
        case "PING", "ECHO", "INFO", "TIME", "CLUSTER", "CLIENT", "CONFIG", "COMMAND", "HELLO", "AUTH", "READONLY",
            "READWRITE", "PUBLISH", "LASTSAVE", "DBSIZE", "SLOWLOG", "LATENCY", "ACL", "ROLE", "LOLWUT":
            self = .anyPrimary
        case "FLUSHDB", "FLUSHALL":
            self = .allPrimaries
        case "SCRIPT", "FUNCTION":
            let sub = arguments.count > 1 ? String(buffer: arguments[1]).uppercased() : ""
            self = sub == "LOAD" || sub == "FLUSH" || sub == "KILL" ? .allPrimaries : .anyPrimary
        case "EVAL", "EVALSHA", "EVAL_RO", "EVALSHA_RO", "FCALL", "FCALL_RO":
            guard arguments.count >= 3, let count = Int(String(buffer: arguments[2])), count >= 0,
                arguments.count >= 3 + count
            else { self = .anyPrimary; return }  // malformed: the server will say why
            self = try Self.sameSlot(arguments[3..<(3 + count)], name: name)
        case "MGET", "DEL", "UNLINK", "EXISTS", "TOUCH":
            let keys = arguments[1...]
            guard !keys.isEmpty else { self = .anyPrimary; return }
            if let slot = Self.commonSlot(keys) {
                self = .slot(slot)
            } else {
                self = .split(ClusterMultiKeyCommand(name: name, keys: Array(keys), values: nil))
            }
        case "MSET":
            let rest = Array(arguments[1...])
            guard !rest.isEmpty, rest.count % 2 == 0 else { self = .anyPrimary; return }
            let keys = stride(from: 0, to: rest.count, by: 2).map { rest[$0] }
            if let slot = Self.commonSlot(keys[...]) {
                self = .slot(slot)
            } else {
                let values = stride(from: 1, to: rest.count, by: 2).map { rest[$0] }
                self = .split(ClusterMultiKeyCommand(name: name, keys: keys, values: values))
            }
        default:
            // Most commands name their key first; a multi-key command across slots gets CROSSSLOT from the server.
            self = arguments.count > 1 ? .slot(ClusterHashSlot.slot(of: arguments[1].readableBytesView)) : .anyPrimary
        }
    }

    private static func commonSlot(_ keys: ArraySlice<ByteBuffer>) -> Int? {
        guard let first = keys.first else { return nil }
        let slot = ClusterHashSlot.slot(of: first.readableBytesView)
        for key in keys.dropFirst() where ClusterHashSlot.slot(of: key.readableBytesView) != slot { return nil }
        return slot
    }

    private static func sameSlot(_ keys: ArraySlice<ByteBuffer>, name: String) throws -> ClusterCommandRoute {
        guard !keys.isEmpty else { return .anyPrimary }
        guard let slot = commonSlot(keys) else {
            throw RedisError(
                code: .invalidConfiguration,
                message: "\(name) names keys in different hash slots, which a Redis Cluster cannot run in one script; "
                    + "put them under one {hash tag} or split the script"
            )
        }
        return .slot(slot)
    }
}

/// A multi-key command (`MGET`, `DEL`, `UNLINK`, `EXISTS`, `TOUCH`, `MSET`) to split per slot.
package struct ClusterMultiKeyCommand: Sendable {
    package var name: String
    package var keys: [ByteBuffer]
    /// `MSET`'s values, one per key.
    package var values: [ByteBuffer]?

    /// One command per slot, with the positions of its keys in ``keys``.
    package func perSlot() -> [(command: RedisCommand, positions: [Int])] {
        var bySlot: [Int: [Int]] = [:]
        var order: [Int] = []
        for (position, key) in keys.enumerated() {
            let slot = ClusterHashSlot.slot(of: key.readableBytesView)
            if bySlot[slot] == nil { order.append(slot) }
            bySlot[slot, default: []].append(position)
        }
        let idempotent = name == "MGET" || name == "EXISTS" || name == "TOUCH"
        return order.map { slot in
            let positions = bySlot[slot]!
            var arguments = [ByteBuffer(string: name)]
            for position in positions {
                arguments.append(keys[position])
                if let values { arguments.append(values[position]) }
            }
            return (RedisCommand(arguments, isIdempotent: idempotent), positions)
        }
    }

    /// Puts the per-slot replies back together: `MGET` in key order, counts summed, `MSET` as `OK`.
    package func merge(_ replies: [(reply: RESPValue, positions: [Int])]) throws -> RESPValue {
        switch name {
        case "MGET":
            var values = [RESPValue](repeating: .null, count: keys.count)
            for (reply, positions) in replies {
                guard let elements = reply.array, elements.count == positions.count else {
                    throw RedisError.unexpectedReply(reply, expected: "an array of \(positions.count) values")
                }
                for (position, element) in zip(positions, elements) { values[position] = element }
            }
            return .array(values)
        case "MSET":
            return .simpleString(ByteBuffer(string: "OK"))
        default:
            var total: Int64 = 0
            for (reply, _) in replies {
                guard case .integer(let count) = reply.withoutAttributes else {
                    throw RedisError.unexpectedReply(reply, expected: "an integer")
                }
                total += count
            }
            return .integer(total)
        }
    }
}

extension RedisCommand {
    /// The names of the single-key commands routed by ``singleKeySlot()``, upper-cased and packed into a `UInt64`
    /// each (first byte lowest), sorted.
    private static let singleKeyNames: [UInt64] = [
        "GET", "SET", "PTTL", "PEXPIRE", "EXPIRE", "TTL", "SETEX", "PSETEX", "INCR", "INCRBY", "DECR", "SADD", "SREM",
        "SMEMBERS", "HGET", "HSET", "PERSIST", "GETDEL", "GETEX", "TYPE",
    ].map { name in name.utf8.reversed().reduce(UInt64(0)) { $0 << 8 | UInt64($1) } }.sorted()

    /// The hash slot of a command that is one of the common single-key commands (`GET`, `SET`, `PTTL`, …, in any
    /// case) with a key; `nil` for any other command. Reads only the name and the key from the encoded bytes: no
    /// allocation, no String.
    package func singleKeySlot() -> Int? {
        let view = self.encoded.readableBytesView
        var index = view.startIndex
        let end = view.endIndex
        // "*<count>\r\n$<length>\r\n<name>\r\n$<length>\r\n<key>\r\n…"
        func length(after marker: UInt8) -> Int? {
            guard index < end, view[index] == marker else { return nil }
            index += 1
            var value = 0
            var digits = 0
            while index < end, view[index] != UInt8(ascii: "\r") {
                let digit = view[index] &- UInt8(ascii: "0")
                guard digit < 10, digits < 10 else { return nil }
                value = value * 10 + Int(digit)
                digits += 1
                index += 1
            }
            guard digits > 0, index + 1 < end, view[index + 1] == UInt8(ascii: "\n") else { return nil }
            index += 2
            return value
        }
        guard let count = length(after: UInt8(ascii: "*")), count >= 2,
            let nameLength = length(after: UInt8(ascii: "$")), (3...8).contains(nameLength), index + nameLength + 2 <= end
        else { return nil }
        var packed: UInt64 = 0
        for offset in (0..<nameLength).reversed() {
            var byte = view[index + offset]
            if byte >= UInt8(ascii: "a") && byte <= UInt8(ascii: "z") { byte -= 0x20 }
            packed = packed << 8 | UInt64(byte)
        }
        guard Self.singleKeyNames.contains(packed) else { return nil }
        index += nameLength + 2
        guard let keyLength = length(after: UInt8(ascii: "$")), index + keyLength <= end else { return nil }
        return ClusterHashSlot.slot(of: view[index..<(index + keyLength)])
    }

    /// The argument count, the upper-cased name and the first argument after it (`nil` when there is none), read
    /// without decoding the rest; `nil` if the command is not an array of bulk strings.
    package func nameAndFirstArgument() -> (count: Int, name: String, first: ByteBuffer?)? {
        var buffer = self.encoded
        guard buffer.readInteger(as: UInt8.self) == UInt8(ascii: "*"), let count = Self.readLength(&buffer), count >= 1
        else { return nil }
        guard let name = Self.readBulk(&buffer) else { return nil }
        let upper = String(decoding: name.readableBytesView.lazy.map { $0 >= 0x61 && $0 <= 0x7A ? $0 - 0x20 : $0 }, as: UTF8.self)
        guard count >= 2 else { return (count, upper, nil) }
        guard let first = Self.readBulk(&buffer) else { return nil }
        return (count, upper, first)
    }

    private static func readBulk(_ buffer: inout ByteBuffer) -> ByteBuffer? {
        guard buffer.readInteger(as: UInt8.self) == UInt8(ascii: "$"), let length = readLength(&buffer), length >= 0,
            let argument = buffer.readSlice(length: length), buffer.readInteger(as: UInt16.self) == 0x0D0A
        else { return nil }
        return argument
    }

    /// The command's arguments (name first) as slices of its encoded bytes; `nil` if it is not an array of bulk strings.
    package func decodedArguments() -> [ByteBuffer]? {
        var buffer = self.encoded
        guard buffer.readInteger(as: UInt8.self) == UInt8(ascii: "*"), let count = Self.readLength(&buffer), count >= 0
        else { return nil }
        var arguments: [ByteBuffer] = []
        arguments.reserveCapacity(count)
        for _ in 0..<count {
            guard let argument = Self.readBulk(&buffer) else { return nil }
            arguments.append(argument)
        }
        return arguments
    }

    /// Reads a decimal length up to `\r\n`.
    private static func readLength(_ buffer: inout ByteBuffer) -> Int? {
        var value = 0
        var digits = 0
        var negative = false
        while let byte = buffer.readInteger(as: UInt8.self) {
            switch byte {
            case UInt8(ascii: "-") where digits == 0: negative = true
            case UInt8(ascii: "0")...UInt8(ascii: "9"):
                value = value &* 10 &+ Int(byte - UInt8(ascii: "0"))
                digits += 1
                if digits > 18 { return nil }
            case UInt8(ascii: "\r"):
                guard digits > 0, buffer.readInteger(as: UInt8.self) == UInt8(ascii: "\n") else { return nil }
                return negative ? -value : value
            default: return nil
            }
        }
        return nil
    }
}
