import CommonSupport
@testable import CacheLayer
import Testing
import Logging

/// A memory cache on a manual clock without a background sweeper, so tests decide when time passes.
func makeTestMemoryCache(
    maxMemorySize: Int = 1 << 20,
    defaultTTL: Duration = .noExpiry,
    strategy: EvictionStrategy = .lru,
    shardCount: Int? = 1,
    clock: ManualClock = ManualClock(),
    codec: any CacheCodec = JSONCacheCodec()
) throws -> MemoryCache {
    var configuration = CacheConfiguration.default
    configuration.name = "test"
    configuration.maxMemorySize = maxMemorySize
    configuration.defaultTTL = defaultTTL
    configuration.evictionStrategy = strategy
    return try MemoryCache(configuration: configuration, codec: codec, clock: clock, shardCount: shardCount, startSweeper: false)
}

/// The seeded generator the random workloads use, so they replay identically.
typealias SeededGenerator = SplitMix64

/// Asserts that `body` throws a ``CacheError`` with `code`.
func expectCacheError<T>(_ code: CacheError.Code, _ body: () async throws -> T) async {
    do {
        _ = try await body()
        Issue.record("expected CacheError.\(code), but nothing was thrown")
    } catch let error as CacheError {
        if error.code != code { Issue.record("expected CacheError.\(code), got \(error)") }
    } catch {
        Issue.record("expected CacheError.\(code), got \(error)")
    }
}
