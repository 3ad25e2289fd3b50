import CommonSupport
import RedisClient
import CacheLayer
import Synchronization

/// Wraps any cache and makes chosen writes fail, to test how patterns handle a failing cache.
///
/// Forwards every operation (batches and invalidation included) to `base`, and shares its ``Cache/patterns``
/// so counters land in one place.
final class FaultInjectingCache: Cache {
    let base: any Cache
    private let failingKeys = Locked<@Sendable (String) -> Bool>({ _ in false })

    init(base: any Cache) {
        self.base = base
    }

    /// Makes `set` (and `setMany` containing such a key) fail for keys matching `predicate`.
    func failSets(where predicate: @escaping @Sendable (String) -> Bool) {
        failingKeys.withLock { $0 = predicate }
    }

    var patterns: CachePatternsState { base.patterns }

    private func check(_ key: String) throws {
        if failingKeys.withLock({ $0 })(key) {
            throw CacheError.unavailable("injected failure", key: key)
        }
    }

    func get<Value: Codable & Sendable>(_ key: String, as type: Value.Type) async throws -> Value? {
        try await base.get(key, as: type)
    }

    func set<Value: Codable & Sendable>(_ key: String, to value: Value, ttl: Duration?) async throws {
        try check(key)
        try await base.set(key, to: value, ttl: ttl)
    }

    func set<Value: Codable & Sendable>(_ key: String, to value: Value, ttl: Duration?, tags: Set<String>) async throws {
        try check(key)
        try await base.set(key, to: value, ttl: ttl, tags: tags)
    }

    func setMany<Value: Codable & Sendable>(_ entries: [String: Value], ttl: Duration?) async throws {
        for key in entries.keys { try check(key) }
        try await base.setMany(entries, ttl: ttl)
    }

    func getMany<Value: Codable & Sendable>(_ keys: [String], as type: Value.Type) async throws -> [String: Value] {
        try await base.getMany(keys, as: type)
    }

    func deleteMany(_ keys: [String]) async throws { try await base.deleteMany(keys) }
    func delete(_ key: String) async throws { try await base.delete(key) }
    func exists(_ key: String) async throws -> Bool { try await base.exists(key) }
    func clear() async throws { try await base.clear() }
    func stats() async -> CacheStats { await base.stats() }
    func close() async throws { try await base.close() }
    func invalidate(tag: String) async throws { try await base.invalidate(tag: tag) }
    func invalidate(prefix: String) async throws { try await base.invalidate(prefix: prefix) }
}

/// A conformer that implements only the original requirements (plus `patterns`), so the protocol's default
/// implementations of batches, tags, prefix invalidation and `getOrSet` are what runs.
final class BareCache: Cache {
    private let base: DictionaryCache
    let patterns: CachePatternsState

    init(clock: TestClock) {
        base = DictionaryCache(clock: clock)
        patterns = CachePatternsState(name: "bare", backend: "bare", wallClock: { clock.now })
    }

    func get<Value: Codable & Sendable>(_ key: String, as type: Value.Type) async throws -> Value? {
        try await base.get(key, as: type)
    }

    func set<Value: Codable & Sendable>(_ key: String, to value: Value, ttl: Duration?) async throws {
        try await base.set(key, to: value, ttl: ttl)
    }

    func delete(_ key: String) async throws { try await base.delete(key) }
    func exists(_ key: String) async throws -> Bool { try await base.exists(key) }
    func clear() async throws { try await base.clear() }
    func stats() async -> CacheStats { await base.stats() }
    func close() async throws { try await base.close() }
}
