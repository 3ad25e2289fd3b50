import CacheLayer
import Hummingbird
import Synchronization

/// The operations every measured store offers, so each runs the same loop.
protocol BenchStore: Sendable {
    func get(_ key: String) async throws -> String?
    func set(_ key: String, _ value: String) async throws
}

/// swift-cache-layer's memory cache: sharded, TTL, byte limit, eviction, stats.
struct MemoryCacheStore: BenchStore {
    let cache: MemoryCache

    init() throws {
        var configuration = CacheConfiguration()
        configuration.maxMemorySize = 1 << 30
        configuration.defaultTTL = .seconds(3600)
        cache = try MemoryCache(configuration: configuration)
    }

    func get(_ key: String) async throws -> String? { try await cache.get(key, as: String.self) }
    func set(_ key: String, _ value: String) async throws { try await cache.set(key, to: value) }
}

/// The floor: one dictionary behind one lock, no TTL, no limit, no stats.
final class LockedDictionaryStore: BenchStore {
    private let storage = Mutex<[String: any Sendable]>([:])

    func get(_ key: String) async throws -> String? { storage.withLock { $0[key] } as? String }
    func set(_ key: String, _ value: String) async throws { storage.withLock { $0[key] = value } }
}

/// A dictionary in an actor: every call is an actor hop.
actor ActorDictionaryStore: BenchStore {
    private var storage: [String: any Sendable] = [:]

    func get(_ key: String) async throws -> String? { storage[key] as? String }
    func set(_ key: String, _ value: String) async throws { storage[key] = value }
}

/// Hummingbird's in-memory persist driver (an actor with lazy expiry): the peer a Hummingbird app uses today.
struct HummingbirdPersistStore: BenchStore {
    let driver = MemoryPersistDriver()

    func get(_ key: String) async throws -> String? { try await driver.get(key: key, as: String.self) }
    func set(_ key: String, _ value: String) async throws { try await driver.set(key: key, value: value, expires: .seconds(3600)) }
}
