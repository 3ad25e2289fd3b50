import CommonSupport
import RedisClient
import CacheLayer
import Synchronization
import Testing

/// A backend that replaces every pattern requirement, recording which ran.
private final class OverridingCache: Cache {
    let base = DictionaryCache()
    let calls = Locked<[String]>([])
    var patterns: CachePatternsState { base.patterns }

    private func record(_ name: String) { calls.withLock { $0.append(name) } }

    func get<Value: Codable & Sendable>(_ key: String, as type: Value.Type) async throws -> Value? { try await base.get(key, as: type) }
    func set<Value: Codable & Sendable>(_ key: String, to value: Value, ttl: Duration?) async throws { try await base.set(key, to: value, ttl: ttl) }
    func delete(_ key: String) async throws { try await base.delete(key) }
    func exists(_ key: String) async throws -> Bool { try await base.exists(key) }
    func clear() async throws { try await base.clear() }
    func stats() async -> CacheStats { await base.stats() }
    func close() async throws { try await base.close() }

    func getMany<Value: Codable & Sendable>(_ keys: [String], as type: Value.Type) async throws -> [String: Value] {
        record("getMany")
        return try await base.getMany(keys, as: type)
    }
    func setMany<Value: Codable & Sendable>(_ entries: [String: Value], ttl: Duration?) async throws {
        record("setMany")
        try await base.setMany(entries, ttl: ttl)
    }
    func deleteMany(_ keys: [String]) async throws {
        record("deleteMany")
        try await base.deleteMany(keys)
    }
    func set<Value: Codable & Sendable>(_ key: String, to value: Value, ttl: Duration?, tags: Set<String>) async throws {
        record("setTags")
        try await base.set(key, to: value, ttl: ttl, tags: tags)
    }
    func invalidate(tag: String) async throws { record("invalidateTag") }
    func invalidate(prefix: String) async throws { record("invalidatePrefix") }
    func getOrSet<Value: Codable & Sendable>(
        _ key: String, as type: Value.Type, ttl: Duration?, options: GetOrSetOptions?,
        factory: @escaping @Sendable () async throws -> Value
    ) async throws -> Value {
        record("getOrSet")
        return try await factory()
    }
}

@Suite("Protocol dispatch")
struct ProtocolDispatchTests {
    /// The convenience overloads (default arguments) must reach a backend's own implementation, through
    /// `any Cache` and generically, not the protocol's default.
    @Test func everyConvenienceReachesTheBackendsOverride() async throws {
        let concrete = OverridingCache()
        let cache: any Cache = concrete
        _ = try await cache.getOrSet("a") { 1 }
        _ = try await cache.getOrSet("a", ttl: .seconds(1)) { 1 }
        _ = try await cache.getOrSet("a", options: .default) { 1 }
        _ = try await cache.getOrSet("a", as: Int.self, ttl: .seconds(1), options: .failSafe(gracePeriod: .seconds(1))) { 1 }
        _ = try await concrete.getOrSet("a") { 1 }
        _ = try await cache.getMany(["a"], as: Int.self)
        let inferred: [String: Int] = try await cache.getMany(["a"])
        _ = inferred
        try await cache.setMany(["a": 1])
        try await cache.setMany(["a": 1], ttl: .seconds(1))
        try await cache.deleteMany(["a"])
        try await cache.set("a", to: 1, ttl: nil, tags: ["t"])
        try await cache.invalidate(tag: "t")
        try await cache.invalidate(prefix: "a")
        _ = try await cache.getOrSetMany(["b"], as: Int.self) { _ in ["b": 2] }
        #expect(concrete.calls.withLock { $0 } == [
            "getOrSet", "getOrSet", "getOrSet", "getOrSet", "getOrSet",
            "getMany", "getMany", "setMany", "setMany", "deleteMany", "setTags", "invalidateTag", "invalidatePrefix",
            "getMany", "setMany",
        ])
    }
}
