import CommonSupport
import RedisClient
@testable import CacheLayer
import Synchronization
import Testing

/// A backend the pattern tests run against.
///
/// `make` must build a fresh, empty cache whose ``Cache/patterns`` reads the wall clock from the given
/// ``TestClock`` (and, where the backend can, whose TTLs use it too). Add MemoryCache, RedisCache and FallbackCache
/// here to run every pattern test on them.
struct CacheUnderTest: Sendable, CustomTestStringConvertible {
    let name: String
    /// Whether tags and prefix invalidation are implemented (not the protocol's `unsupported` default).
    let supportsInvalidation: Bool
    /// Whether TTLs follow the injected clock (so advancing it expires plain, non-envelope entries).
    let ttlFollowsClock: Bool
    /// Whether every call is a network round trip (Redis): tests that wait for concurrent callers to reach the
    /// cache give them longer.
    var isRemote = false
    /// Whether add-if-absent, keep-TTL writes and TTL reads are implemented (not the protocol's `unsupported` defaults).
    var supportsEntryOperations = true
    /// Whether the backend cannot be reached for the whole test (fallback caches serving from memory).
    var backendIsDown = false
    let make: @Sendable (TestClock) async throws -> any Cache

    var testDescription: String { name }

    static let all: [CacheUnderTest] = [
        CacheUnderTest(name: "DictionaryCache", supportsInvalidation: true, ttlFollowsClock: true, supportsEntryOperations: false) { DictionaryCache(clock: $0) },
        CacheUnderTest(name: "MemoryCache", supportsInvalidation: true, ttlFollowsClock: true) { clock in
            var configuration = CacheConfiguration.development
            configuration.name = "patterns-memory"
            return try MemoryCache(configuration: configuration, clock: TestCacheClock(clock: clock), shardCount: nil, startSweeper: false, wallClock: { clock.now })
        },
        CacheUnderTest(name: "BareCache (protocol defaults)", supportsInvalidation: false, ttlFollowsClock: true, supportsEntryOperations: false) { BareCache(clock: $0) },
        // Redis expires keys in real time; the patterns' envelopes (fail-safe, early refresh) still follow the clock.
        CacheUnderTest(name: "RedisCache", supportsInvalidation: true, ttlFollowsClock: false, isRemote: true) { clock in
            try await SharedRedisServer.makeCache(clock: clock)
        },
        // Every key routed to the primary of its hash slot; batches split per slot.
        CacheUnderTest(name: "RedisCache on a cluster", supportsInvalidation: true, ttlFollowsClock: false, isRemote: true) { clock in
            try await SharedRedisServer.makeClusterCache(clock: clock)
        },
        // L1 expires in real time like Redis; envelopes follow the clock.
        CacheUnderTest(name: "TwoLevelCache", supportsInvalidation: true, ttlFollowsClock: false, isRemote: true) { clock in
            try await SharedRedisServer.makeTwoLevelCache(clock: clock)
        },
        CacheUnderTest(name: "TwoLevelCache (pub/sub)", supportsInvalidation: true, ttlFollowsClock: false, isRemote: true) { clock in
            try await SharedRedisServer.makeTwoLevelCache(clock: clock, near: NearCacheConfiguration(maxMemorySize: 8 * 1024 * 1024, coherence: .pubSub))
        },
        // One tracking connection per primary of the shared cluster.
        CacheUnderTest(name: "TwoLevelCache on a cluster", supportsInvalidation: true, ttlFollowsClock: false, isRemote: true) { clock in
            try await SharedRedisServer.makeTwoLevelCache(clock: clock, onCluster: true)
        },
        CacheUnderTest(name: "FallbackCache over Redis", supportsInvalidation: true, ttlFollowsClock: false, isRemote: true) { clock in
            let redis = try await SharedRedisServer.makeCache(clock: clock)
            var configuration = CacheConfiguration.development
            configuration.name = "patterns-fallback"
            let memory = try MemoryCache(configuration: configuration, clock: TestCacheClock(clock: clock), shardCount: nil, startSweeper: false, wallClock: { clock.now })
            return try FallbackCache(
                primary: redis, local: memory, configuration: FallbackConfiguration(probeInterval: .milliseconds(50)),
                name: "patterns-fallback", logger: quietLogger, wallClock: { clock.now }, probe: { try await redis.ping() }
            )
        },
        // nearCache + enableFallback: L1 hits, L1 misses refreshing the fallback's copy.
        CacheUnderTest(name: "FallbackCache over a TwoLevelCache", supportsInvalidation: true, ttlFollowsClock: false, isRemote: true) { clock in
            let twoLevel = try await SharedRedisServer.makeTwoLevelCache(clock: clock)
            var configuration = CacheConfiguration.development
            configuration.name = "patterns-fallback-near"
            let memory = try MemoryCache(configuration: configuration, clock: TestCacheClock(clock: clock), shardCount: nil, startSweeper: false, wallClock: { clock.now })
            return try FallbackCache(
                primary: twoLevel, local: memory, configuration: FallbackConfiguration(probeInterval: .milliseconds(50)),
                name: "patterns-fallback-near", logger: quietLogger, wallClock: { clock.now }, probe: { try await twoLevel.redis.ping() }
            )
        },
        // Redis down for the whole test: the breaker opens on the first refused connection and memory serves.
        CacheUnderTest(name: "FallbackCache with Redis down", supportsInvalidation: true, ttlFollowsClock: true, backendIsDown: true) { clock in
            let redis = try RedisCache(
                configuration: try await StoppedRedisServer.configuration.value, codec: JSONCacheCodec(),
                logger: quietLogger, wallClock: { clock.now }
            )
            var configuration = CacheConfiguration.development
            configuration.name = "patterns-fallback-down"
            let memory = try MemoryCache(configuration: configuration, clock: TestCacheClock(clock: clock), shardCount: nil, startSweeper: false, wallClock: { clock.now })
            return try FallbackCache(
                primary: redis, local: memory, configuration: FallbackConfiguration(failureThreshold: 1, probeInterval: .milliseconds(200)),
                name: "patterns-fallback-down", logger: quietLogger, wallClock: { clock.now }, probe: { try await redis.ping() }
            )
        },
    ]
}

/// Counts calls from any task.
final class CallCounter: Sendable {
    private let count = Atomic<Int>(0)

    /// Counts one call and returns the new total.
    @discardableResult
    func increment() -> Int { count.add(1, ordering: .relaxed).newValue }

    var value: Int { count.load(ordering: .relaxed) }
}

/// A one-shot latch: `wait()` suspends until `open()`.
final class Gate: Sendable {
    private let state = Locked<(open: Bool, waiters: [CheckedContinuation<Void, Never>])>((false, []))

    func wait() async {
        await withCheckedContinuation { continuation in
            let resumeNow = state.withLock { state -> Bool in
                if state.open { return true }
                state.waiters.append(continuation)
                return false
            }
            if resumeNow { continuation.resume() }
        }
    }

    func open() {
        let waiters = state.withLock { state -> [CheckedContinuation<Void, Never>] in
            state.open = true
            defer { state.waiters = [] }
            return state.waiters
        }
        for waiter in waiters { waiter.resume() }
    }
}

/// Polls `condition` every millisecond until it holds or `timeout` passes.
func eventually(timeout: Duration = .seconds(5), _ condition: @Sendable () async throws -> Bool) async rethrows -> Bool {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if try await condition() { return true }
        try? await Task.sleep(for: .milliseconds(1))
    }
    return try await condition()
}

struct TestFailure: Error, Equatable {
    var message = "boom"
}
