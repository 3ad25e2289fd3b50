@testable import CacheLayer
import Testing
import Logging

/// A memory cache on a manual clock without a background sweeper, so tests decide when time passes.
func makeTestMemoryCache(
    maxMemorySize: Int = 1 << 20,
    defaultTTL: Duration? = nil,
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

/// A small deterministic generator (SplitMix64) so random workloads replay identically.
struct SeededGenerator: RandomNumberGenerator {
    private var state: UInt64

    init(seed: UInt64) {
        state = seed
    }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

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
