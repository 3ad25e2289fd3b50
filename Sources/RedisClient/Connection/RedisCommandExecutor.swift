import NIOCore

/// Something that runs Redis commands: a ``RedisConnection`` or a ``RedisConnectionPool``.
/// The typed helpers (`get`, `set`, `mget`, …) are defined once here for both.
public protocol RedisCommandExecutor: Sendable {
    /// Runs one command and returns its reply; an error reply is thrown as a ``RedisError`` with code
    /// ``RedisError/Code/serverError``.
    func execute(_ command: RedisCommand) async throws -> RESPValue

    /// Iterates every key matching `pattern` with `SCAN` (on a cluster: on every primary), calling `body` with each
    /// non-empty batch. Keys added or removed meanwhile may be missed or seen twice, as with `SCAN` itself.
    func scan(match pattern: String?, count: Int?, _ body: ([ByteBuffer]) async throws -> Void) async throws
}

extension RedisCommandExecutor {
    /// Sends any command given as homogeneous arguments, the name first: `send(["CONFIG", "GET", "maxmemory"])`.
    @discardableResult
    public func send(_ arguments: [some RESPBulkConvertible]) async throws -> RESPValue {
        try await self.execute(RedisCommand(arguments))
    }

    /// Sends any command given as binary-safe byte buffers, the name first.
    @discardableResult
    public func send(command: [ByteBuffer]) async throws -> RESPValue {
        try await self.execute(RedisCommand(command))
    }

    /// Sends any command: `send("EXPIRE", key, 10)`.
    @discardableResult
    public func send(_ name: String, _ arguments: any RESPBulkConvertible...) async throws -> RESPValue {
        var buffer = ByteBuffer()
        buffer.writeRESPHeader(UInt8(ascii: "*"), arguments.count + 1)
        name.writeRESPBulk(into: &buffer)
        for argument in arguments { argument.writeRESPBulk(into: &buffer) }
        return try await self.execute(RedisCommand(encoded: buffer, isIdempotent: false))
    }

    /// `GET key`: the value, or `nil` when the key does not exist.
    public func get(_ key: some RESPBulkConvertible) async throws -> ByteBuffer? {
        let reply = try await self.execute(.get(key))
        if reply.isNull { return nil }
        guard let buffer = reply.buffer else { throw RedisError.unexpectedReply(reply, expected: "a bulk string") }
        return buffer
    }

    /// `GET key` decoded as UTF-8 text.
    public func getString(_ key: some RESPBulkConvertible) async throws -> String? {
        try await self.get(key).map { String(buffer: $0) }
    }

    /// `SET key value [PX ms | KEEPTTL] [NX | XX]`. Returns `false` when an `NX`/`XX` condition kept it from being set.
    @discardableResult
    public func set(
        _ key: some RESPBulkConvertible,
        value: some RESPBulkConvertible,
        expiration: RedisSetExpiration = .none,
        condition: RedisSetCondition = .always
    ) async throws -> Bool {
        let reply = try await self.execute(.set(key, value: value, expiration: expiration, condition: condition))
        return !reply.isNull
    }

    /// `SET key value … GET`: sets and returns the previous value (`nil` if none). With `NX`/`XX` the value may
    /// be left unchanged; the previous value is returned either way.
    public func setReturningOldValue(
        _ key: some RESPBulkConvertible,
        value: some RESPBulkConvertible,
        expiration: RedisSetExpiration = .none,
        condition: RedisSetCondition = .always
    ) async throws -> ByteBuffer? {
        let reply = try await self.execute(
            .set(key, value: value, expiration: expiration, condition: condition, returnOldValue: true)
        )
        return reply.isNull ? nil : reply.buffer
    }

    /// `MGET key…`: one entry per key, `nil` for missing keys.
    public func mget(_ keys: [some RESPBulkConvertible]) async throws -> [ByteBuffer?] {
        guard !keys.isEmpty else { return [] }
        let command = RedisCommand.build(count: keys.count + 1, isIdempotent: true) { buffer in
            "MGET".writeRESPBulk(into: &buffer)
            for key in keys { key.writeRESPBulk(into: &buffer) }
        }
        let reply = try await self.execute(command)
        guard let elements = reply.array else { throw RedisError.unexpectedReply(reply, expected: "an array") }
        return elements.map { $0.isNull ? nil : $0.buffer }
    }

    /// `MSET key value …`: sets all pairs atomically.
    public func mset<Key: RESPBulkConvertible, Value: RESPBulkConvertible>(_ pairs: [(key: Key, value: Value)]) async throws {
        guard !pairs.isEmpty else { return }
        let command = RedisCommand.build(count: pairs.count * 2 + 1, isIdempotent: false) { buffer in
            "MSET".writeRESPBulk(into: &buffer)
            for pair in pairs {
                pair.key.writeRESPBulk(into: &buffer)
                pair.value.writeRESPBulk(into: &buffer)
            }
        }
        _ = try await self.execute(command)
    }

    private func keysCommand(_ name: String, _ keys: [some RESPBulkConvertible], idempotent: Bool) -> RedisCommand {
        RedisCommand.build(count: keys.count + 1, isIdempotent: idempotent) { buffer in
            name.writeRESPBulk(into: &buffer)
            for key in keys { key.writeRESPBulk(into: &buffer) }
        }
    }

    private func integer(_ command: RedisCommand) async throws -> Int {
        let reply = try await self.execute(command)
        guard case .integer(let value) = reply.withoutAttributes else {
            throw RedisError.unexpectedReply(reply, expected: "an integer")
        }
        return Int(value)
    }

    /// `DEL key…`: the number of keys removed.
    @discardableResult
    public func del(_ keys: [some RESPBulkConvertible]) async throws -> Int {
        guard !keys.isEmpty else { return 0 }
        return try await self.integer(self.keysCommand("DEL", keys, idempotent: false))
    }

    /// `UNLINK key…`: like `DEL`, reclaiming memory in the background; the number of keys removed.
    @discardableResult
    public func unlink(_ keys: [some RESPBulkConvertible]) async throws -> Int {
        guard !keys.isEmpty else { return 0 }
        return try await self.integer(self.keysCommand("UNLINK", keys, idempotent: false))
    }

    /// `EXISTS key…`: how many of the keys exist (a key named twice counts twice).
    public func exists(_ keys: [some RESPBulkConvertible]) async throws -> Int {
        guard !keys.isEmpty else { return 0 }
        return try await self.integer(self.keysCommand("EXISTS", keys, idempotent: true))
    }

    /// `PEXPIRE key ms`: `true` when the timeout was set (the key exists).
    @discardableResult
    public func pexpire(_ key: some RESPBulkConvertible, after duration: Duration) async throws -> Bool {
        let command = RedisCommand.build(count: 3, isIdempotent: false) { buffer in
            "PEXPIRE".writeRESPBulk(into: &buffer)
            key.writeRESPBulk(into: &buffer)
            Int(duration.milliseconds).writeRESPBulk(into: &buffer)
        }
        return try await self.integer(command) == 1
    }

    /// `PTTL key`: remaining time to live in milliseconds; -1 when the key has no expiry, -2 when it does not exist.
    public func pttl(_ key: some RESPBulkConvertible) async throws -> Int {
        try await self.integer(self.keysCommand("PTTL", [key], idempotent: true))
    }

    /// `SCAN cursor [MATCH pattern] [COUNT n]`: the next cursor (0 when the iteration is complete) and a batch of keys.
    public func scan(
        cursor: Int = 0,
        match pattern: String? = nil,
        count: Int? = nil
    ) async throws -> (cursor: Int, keys: [ByteBuffer]) {
        var arguments: [any RESPBulkConvertible] = [cursor]
        if let pattern { arguments += ["MATCH", pattern] }
        if let count { arguments += ["COUNT", count] }
        let command = RedisCommand.build(count: arguments.count + 1, isIdempotent: true) { buffer in
            "SCAN".writeRESPBulk(into: &buffer)
            for argument in arguments { argument.writeRESPBulk(into: &buffer) }
        }
        let reply = try await self.execute(command)
        guard let parts = reply.array, parts.count == 2, let next = parts[0].int, let keys = parts[1].array else {
            throw RedisError.unexpectedReply(reply, expected: "a [cursor, keys] array")
        }
        return (next, keys.compactMap(\.buffer))
    }

    /// Iterates every key matching `pattern` with `SCAN`, cursor after cursor, calling `body` with each non-empty
    /// batch.
    public func scan(match pattern: String? = nil, count: Int? = nil, _ body: ([ByteBuffer]) async throws -> Void) async throws {
        var cursor = 0
        repeat {
            let page = try await self.scan(cursor: cursor, match: pattern, count: count)
            if !page.keys.isEmpty { try await body(page.keys) }
            cursor = page.cursor
        } while cursor != 0
    }

    /// `PING`: returns the server's answer (`PONG`).
    @discardableResult
    public func ping() async throws -> String {
        let reply = try await self.execute(RedisCommand.build(count: 1, isIdempotent: true) { "PING".writeRESPBulk(into: &$0) })
        return reply.string ?? ""
    }

    /// `INFO [section]`: the server's report as text.
    public func info(section: String? = nil) async throws -> String {
        let command =
            section.map { RedisCommand(["INFO", $0], isIdempotent: true) } ?? RedisCommand(["INFO"], isIdempotent: true)
        let reply = try await self.execute(command)
        guard let text = reply.string else { throw RedisError.unexpectedReply(reply, expected: "a string") }
        return text
    }

    /// `FLUSHDB`: deletes every key of the current database.
    public func flushdb() async throws {
        _ = try await self.execute(RedisCommand(["FLUSHDB"]))
    }

    /// `PUBLISH channel message`: the number of subscribers that received it.
    @discardableResult
    public func publish(_ channel: some RESPBulkConvertible, message: some RESPBulkConvertible) async throws -> Int {
        let command = RedisCommand.build(count: 3, isIdempotent: false) { buffer in
            "PUBLISH".writeRESPBulk(into: &buffer)
            channel.writeRESPBulk(into: &buffer)
            message.writeRESPBulk(into: &buffer)
        }
        return try await self.integer(command)
    }
}
