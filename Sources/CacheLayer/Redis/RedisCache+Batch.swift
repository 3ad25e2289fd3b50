import NIOCore
import RedisClient

extension RedisCache {
    /// The values under `keys` with one `MGET`.
    public func getMany<Value: Codable & Sendable>(_ keys: [String], as type: Value.Type) async throws -> [String: Value] {
        try checkOpen(nil)
        let keys = distinct(keys)
        guard !keys.isEmpty else { return [:] }
        for key in keys { try checkUsable(key) }
        let command = RedisCommand.build(count: keys.count + 1, isIdempotent: true, capacity: 16 + keys.count * 32) { buffer in
            "MGET".writeRESPBulk(into: &buffer)
            for key in keys { keyspace.key(key).writeRESPBulk(into: &buffer) }
        }
        let reply = try await run(command, key: nil)
        guard let elements = reply.array, elements.count == keys.count else { throw Self.unexpected(reply, key: nil) }
        var values: [String: Value] = [:]
        values.reserveCapacity(keys.count)
        for (key, element) in zip(keys, elements) {
            if let buffer = element.buffer, let value = try decode(buffer, as: type, key: key) {
                values[key] = value
            }
        }
        recordHitsAndMisses(hits: values.count, misses: keys.count - values.count)
        return values
    }

    /// Stores every entry with one pipeline of `SET … PX` (one round trip, not atomic).
    public func setMany<Value: Codable & Sendable>(_ entries: [String: Value], ttl: Duration?) async throws {
        try checkOpen(nil)
        guard !entries.isEmpty else { return }
        var commands: [RedisCommand] = []
        commands.reserveCapacity(entries.count)
        var bytes = 0
        for (key, value) in entries {
            try checkUsable(key)
            let command = try setCommand(key, value, ttl: ttl)
            commands.append(command.command)
            bytes += command.bytes
        }
        _ = try await runPipeline(commands, key: nil)
        recordSets(entries.count, bytes: bytes)
    }

    /// Removes every key with one `UNLINK`.
    public func deleteMany(_ keys: [String]) async throws {
        try checkOpen(nil)
        let keys = distinct(keys)
        guard !keys.isEmpty else { return }
        for key in keys { try checkUsable(key) }
        let command = RedisCommand.build(count: keys.count + 1, isIdempotent: false, capacity: 16 + keys.count * 32) { buffer in
            "UNLINK".writeRESPBulk(into: &buffer)
            for key in keys { keyspace.key(key).writeRESPBulk(into: &buffer) }
        }
        _ = try await run(command, key: nil)
        recordDeletes(keys.count)
    }
}
