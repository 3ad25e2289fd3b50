import CacheLayer
import Hummingbird
import Synchronization

/// The operations every measured store offers, so each runs the same loop.
public protocol BenchStore: Sendable {
    func get(_ key: String) async throws -> String?
    func set(_ key: String, _ value: String) async throws
}

/// swift-cache-layer's memory cache: sharded, TTL, byte limit, eviction, stats.
public struct MemoryCacheStore: BenchStore {
    public let cache: MemoryCache

    /// The cache the benchmarks compare: a one-hour default TTL and `maxMemorySize` bytes (1 GiB: nothing is evicted).
    public init(maxMemorySize: Int = 1 << 30) throws {
        var configuration = CacheConfiguration()
        configuration.maxMemorySize = maxMemorySize
        configuration.defaultTTL = .seconds(3600)
        cache = try MemoryCache(configuration: configuration)
    }

    @inlinable
    public func get(_ key: String) async throws -> String? { try await cache.get(key, as: String.self) }
    @inlinable
    public func set(_ key: String, _ value: String) async throws { try await cache.set(key, to: value) }
}

/// The floor: one dictionary behind one lock, no TTL, no limit, no stats.
public final class LockedDictionaryStore: BenchStore {
    @usableFromInline
    let storage = Mutex<[String: any Sendable]>([:])

    public init() {}

    @inlinable
    public func get(_ key: String) async throws -> String? { storage.withLock { $0[key] } as? String }
    @inlinable
    public func set(_ key: String, _ value: String) async throws { storage.withLock { $0[key] = value } }
}

/// A dictionary in an actor: every call is an actor hop.
public actor ActorDictionaryStore: BenchStore {
    @usableFromInline
    var storage: [String: any Sendable] = [:]

    public init() {}

    @inlinable
    public func get(_ key: String) async throws -> String? { storage[key] as? String }
    @inlinable
    public func set(_ key: String, _ value: String) async throws { storage[key] = value }
}

/// Hummingbird's in-memory persist driver (an actor with lazy expiry): the peer a Hummingbird app uses today.
public struct HummingbirdPersistStore: BenchStore {
    public let driver = MemoryPersistDriver()

    public init() {}

    @inlinable
    public func get(_ key: String) async throws -> String? { try await driver.get(key: key, as: String.self) }
    @inlinable
    public func set(_ key: String, _ value: String) async throws { try await driver.set(key: key, value: value, expires: .seconds(3600)) }
}
