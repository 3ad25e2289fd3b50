import NIOCore
import RedisClient

extension TwoLevelCache {
    /// The values under `keys`: L1 hits at once, the rest with one round trip to Redis (`MGET` and a `PTTL` per key,
    /// pipelined), which then fill L1.
    public func getMany<Value: Codable & Sendable>(_ keys: [String], as type: Value.Type) async throws -> [String: Value] {
        try checkOpen(nil)
        let keys = distinct(keys)
        var values: [String: Value] = [:]
        values.reserveCapacity(keys.count)
        var missing: [String] = []
        for key in keys {
            if let value = try nearValue(key, as: Value.self) {
                values[key] = value
            } else {
                try redis.checkUsable(key)
                missing.append(key)
            }
        }
        // L1 counted its own hits.
        guard !missing.isEmpty else { return values }
        let stamps = missing.map { near.stamp($0) }
        guard stamps.contains(where: { $0 != nil }) else {
            let far = try await redis.getMany(missing, as: type)
            values.merge(far) { near, _ in near }
            recordHits(far.count, misses: missing.count - far.count)
            return values
        }
        let keyspace = redis.keyspace
        var commands: [RedisCommand] = []
        commands.reserveCapacity(missing.count + 1)
        commands.append(RedisCommand.build(count: missing.count + 1, isIdempotent: true, capacity: 16 + missing.count * 32) { buffer in
            "MGET".writeRESPBulk(into: &buffer)
            for key in missing { keyspace.key(key).writeRESPBulk(into: &buffer) }
        })
        for key in missing { commands.append(RedisCommand("PTTL", keyspace.key(key), isIdempotent: true)) }
        let replies = try await redis.runPipeline(commands, key: nil)
        guard replies.count == missing.count + 1, let elements = replies[0].array, elements.count == missing.count else {
            throw RedisCache.unexpected(replies.first ?? .null, key: nil)
        }
        var farCount = 0
        // Keys read but not filled leave L1 (``NearCache/readReturned(_:)``).
        var unfilled: [String] = []
        for (index, key) in missing.enumerated() {
            guard let buffer = elements[index].buffer, let value = try redis.decode(buffer, as: type, key: key) else {
                unfilled.append(key)
                continue
            }
            values[key] = value
            farCount += 1
            if let stamp = stamps[index], !Self.holdsEnvelope(buffer) {
                fill(key, value, stamp: stamp, pttl: replies[index + 1].int)
            } else {
                unfilled.append(key)
            }
        }
        if !unfilled.isEmpty { near.readsReturned(unfilled) }
        redis.recordHitsAndMisses(hits: farCount, misses: missing.count - farCount)
        recordHits(farCount, misses: missing.count - farCount)
        return values
    }

    /// Stores every entry in Redis with one pipeline, then removes the keys from L1.
    public func setMany<Value: Codable & Sendable>(_ entries: [String: Value], ttl: Duration?) async throws {
        try checkOpen(nil)
        try await changing(.keys(Array(entries.keys))) {
            try await redis.setMany(entries, ttl: ttl)
            recordSets(entries.count)
        }
    }

    /// Removes every key from Redis with one `UNLINK`, then from L1.
    public func deleteMany(_ keys: [String]) async throws {
        try checkOpen(nil)
        let keys = distinct(keys)
        try await changing(.keys(keys)) {
            try await redis.deleteMany(keys)
            recordDeletes(keys.count)
        }
    }
}
