import NIOCore
import RedisClient

extension RedisCache {
    /// `SET key value NX PX ms`: atomic across every client of the server.
    @discardableResult
    public func setIfAbsent<Value: Codable & Sendable>(_ key: String, to value: Value, ttl: Duration?) async throws -> Bool {
        try checkUsable(key)
        let expiration = try expiration(for: ttl, key: key)
        let bytes = try encode(value, key: key)
        let reply = try await run(.set(keyspace.key(key), value: bytes, expiration: expiration, condition: .ifNotExists), key: key)
        // `SET … NX` answers null when the key exists and nothing was stored.
        guard !reply.isNull else { return false }
        recordSets(1, bytes: bytes.count)
        return true
    }

    /// `SET key value KEEPTTL`.
    public func setKeepingTTL<Value: Codable & Sendable>(_ key: String, to value: Value) async throws {
        try checkUsable(key)
        let bytes = try encode(value, key: key)
        _ = try await run(.set(keyspace.key(key), value: bytes, expiration: .keepTTL), key: key)
        recordSets(1, bytes: bytes.count)
    }

    /// `PTTL key`, in whole milliseconds.
    public func ttl(_ key: String) async throws -> Duration? {
        try checkUsable(key)
        let reply = try await run(RedisCommand("PTTL", keyspace.key(key), isIdempotent: true), key: key)
        guard let milliseconds = reply.int else { throw Self.unexpected(reply, key: key) }
        return Self.ttl(fromPTTL: milliseconds)
    }

    /// `GET` and `PTTL` in one pipeline (one round trip).
    public func getWithTTL<Value: Codable & Sendable>(_ key: String, as type: Value.Type) async throws -> (value: Value, ttl: Duration)? {
        try checkUsable(key)
        let redisKey = keyspace.key(key)
        let replies = try await runPipeline([.get(redisKey), RedisCommand("PTTL", redisKey, isIdempotent: true)], key: key)
        guard replies.count == 2, let milliseconds = replies[1].int else {
            throw Self.unexpected(replies.last ?? .null, key: key)
        }
        guard replies[0].isNull || replies[0].buffer != nil else { throw Self.unexpected(replies[0], key: key) }
        // The key may expire between the two commands: then PTTL says it is gone, and so is the value.
        guard let ttl = Self.ttl(fromPTTL: milliseconds) else {
            recordHitsAndMisses(hits: 0, misses: 1)
            return nil
        }
        guard let value = try decodeRead(replies[0].buffer, as: type, key: key) else { return nil }
        return (value, ttl)
    }

    /// `SET key bytes PX ms`, the bytes as they are.
    public func setBytes(_ key: String, to bytes: [UInt8], ttl: Duration?) async throws {
        try checkUsable(key)
        let expiration = try expiration(for: ttl, key: key)
        _ = try await run(.set(keyspace.key(key), value: bytes, expiration: expiration), key: key)
        recordSets(1, bytes: bytes.count)
    }

    /// `GET key`, the stored bytes as they are.
    public func getBytes(_ key: String) async throws -> [UInt8]? {
        try checkUsable(key)
        let reply = try await run(.get(keyspace.key(key)), key: key)
        guard let buffer = reply.buffer else {
            guard reply.isNull else { throw Self.unexpected(reply, key: key) }
            recordHitsAndMisses(hits: 0, misses: 1)
            return nil
        }
        recordHitsAndMisses(hits: 1, misses: 0)
        return Array(buffer.readableBytesView)
    }

    /// The TTL a `PTTL` reply means: `-2` absent, `-1` no expiry.
    static func ttl(fromPTTL milliseconds: Int) -> Duration? {
        switch milliseconds {
        case -1: return .noExpiry
        case ..<0: return nil
        default: return .milliseconds(milliseconds)
        }
    }
}
