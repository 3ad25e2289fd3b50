import CommonSupport
import Foundation
import Logging
import Synchronization

/// The per-cache state behind the patterns of ``Cache`` (``Cache/getOrSet(_:as:ttl:options:factory:)``, batches,
/// warming, write-through): what a user sets and reads through ``Cache/patterns``.
///
/// ```swift
/// cache.patterns.defaultOptions = .failSafe(gracePeriod: .seconds(3600))   // for getOrSet calls that pass none
/// print(cache.patterns.counters.staleValuesServed)
/// ```
///
/// The single-flight table, the latency-sampling hook, the logger and the recording of events are internal to the
/// library.
///
/// A ``Cache`` conformance of your own creates one when it is created and returns it every time (see ``Cache``):
///
/// ```swift
/// struct MyCache: Cache {
///     let patterns = CachePatternsState(name: "sessions", backend: "my-store")
///     // …
/// }
/// ```
///
/// Counters only grow. Everything is safe to use from any task.
public final class CachePatternsState: Sendable {
    /// The cache's name, for logs and metrics labels.
    public let name: String
    /// The backend's name (`memory`, `redis`, `fallback`, …), for logs and metrics labels.
    public let backend: String
    /// The time to live `getOrSet` uses for envelopes (fail-safe, early refresh) when called with `ttl: nil`;
    /// backends pass their configuration's default TTL. `nil` means values never expire.
    package let defaultTTL: Duration?
    /// Logs of the patterns, with `cache` and `backend` metadata.
    package let logger: Logger
    /// The single-flight table shared by every `getOrSet` of this cache.
    package let flights = SingleFlight<String>()
    /// The longest a `getOrSet` load (one flight of ``flights``) may run when the call sets no
    /// ``GetOrSetOptions/hardTimeout``: its callers then get ``CacheError/Code/timeout`` and the next caller for the
    /// key starts a new load, so a factory that hangs cannot hold its key for ever. `nil`: no bound. The built-in
    /// caches take it from ``CacheConfiguration/flightTimeout``.
    package let flightTimeout: Duration?
    /// Latency sampling for the `get`/`set` timers of ``CacheMetricsReporter``, fed by the built-in backends.
    package let latency = CacheLatencySampler()

    private let wallClock: @Sendable () -> Date
    private let options: Locked<GetOrSetOptions>
    /// Whether ``defaultOptions`` differs from `.default`, read without the lock on every `getOrSet`.
    private let hasCustomOptions: Atomic<Bool>

    private let factoryCalls = Atomic<UInt64>(0)
    private let factoryErrors = Atomic<UInt64>(0)
    private let staleValuesServed = Atomic<UInt64>(0)
    private let timeouts = Atomic<UInt64>(0)
    private let backgroundRefreshes = Atomic<UInt64>(0)
    private let backgroundRefreshFailures = Atomic<UInt64>(0)
    private let cacheWriteFailures = Atomic<UInt64>(0)
    private let fallbackEvents = Atomic<UInt64>(0)

    /// Creates the state of one cache instance.
    ///
    /// - Parameters:
    ///   - name: The cache's name, e.g. the configuration's `name`.
    ///   - backend: The backend's name, e.g. `"memory"`.
    ///   - defaultTTL: The cache's default time to live, used by `getOrSet` calls with `ttl: nil`; `nil` for never.
    ///   - defaultOptions: Options for `getOrSet` calls that pass none.
    ///   - logger: Where patterns log; `cache` and `backend` metadata are added.
    ///   - flightTimeout: The longest a `getOrSet` load may run when the call sets no hard timeout; its callers then
    ///     get ``CacheError/Code/timeout`` and the next caller starts a new load. `nil`: no bound.
    ///   - wallClock: The current time, recorded in envelopes (fail-safe, early refresh). Envelopes may be read by
    ///     other processes (Redis), so this must be wall-clock time. Tests inject their own.
    public init(
        name: String = "default",
        backend: String,
        defaultTTL: Duration? = .seconds(3600),
        defaultOptions: GetOrSetOptions = .default,
        logger: Logger = Logger(label: "CacheLayer"),
        flightTimeout: Duration? = CacheConfiguration.defaultFlightTimeout,
        wallClock: @escaping @Sendable () -> Date = { Date() }
    ) {
        self.name = name
        self.flightTimeout = flightTimeout
        self.backend = backend
        self.defaultTTL = defaultTTL
        var logger = logger
        logger[metadataKey: "cache"] = "\(name)"
        logger[metadataKey: "backend"] = "\(backend)"
        self.logger = logger
        self.wallClock = wallClock
        self.options = Locked(defaultOptions)
        self.hasCustomOptions = Atomic(defaultOptions != .default)
    }

    /// Options for `getOrSet` calls that pass `options: nil` (or none).
    public var defaultOptions: GetOrSetOptions {
        get {
            // Most caches never change the default: skip the lock (contended on a hot getOrSet path).
            guard hasCustomOptions.load(ordering: .acquiring) else { return .default }
            return options.withLock { $0 }
        }
        set {
            options.withLock { $0 = newValue }
            hasCustomOptions.store(true, ordering: .releasing)
        }
    }

    /// A snapshot of the pattern counters.
    public var counters: CachePatternCounters {
        CachePatternCounters(
            factoryCalls: factoryCalls.load(ordering: .relaxed),
            factoryErrors: factoryErrors.load(ordering: .relaxed),
            staleValuesServed: staleValuesServed.load(ordering: .relaxed),
            timeouts: timeouts.load(ordering: .relaxed),
            backgroundRefreshes: backgroundRefreshes.load(ordering: .relaxed),
            backgroundRefreshFailures: backgroundRefreshFailures.load(ordering: .relaxed),
            cacheWriteFailures: cacheWriteFailures.load(ordering: .relaxed),
            fallbackEvents: fallbackEvents.load(ordering: .relaxed)
        )
    }

    /// Counts a switch to or a use of a fallback backend (e.g. from Redis to memory); exported as the
    /// `cache_fallback_events` metric.
    package func recordFallbackEvent() {
        fallbackEvents.add(1, ordering: .relaxed)
    }

    // MARK: Used by the patterns

    /// Milliseconds since 1970 on the wall clock.
    func nowMilliseconds() -> Int64 {
        Int64((wallClock().timeIntervalSince1970 * 1000).rounded(.down))
    }

    /// Runs a factory, counting the call and its failure.
    func callFactory<Value>(_ factory: @Sendable () async throws -> Value) async throws -> Value {
        factoryCalls.add(1, ordering: .relaxed)
        do {
            return try await factory()
        } catch {
            factoryErrors.add(1, ordering: .relaxed)
            throw error
        }
    }

    func recordStaleValueServed() { staleValuesServed.add(1, ordering: .relaxed) }
    func recordTimeout() { timeouts.add(1, ordering: .relaxed) }
    func recordBackgroundRefresh() { backgroundRefreshes.add(1, ordering: .relaxed) }
    func recordBackgroundRefreshFailure() { backgroundRefreshFailures.add(1, ordering: .relaxed) }

    /// Counts and logs a failed cache write whose caller carries on (write-through, a loaded value that could not
    /// be stored). The key is logged only at debug level.
    func recordCacheWriteFailure(_ operation: String, key: String?, error: any Error) {
        cacheWriteFailures.add(1, ordering: .relaxed)
        warning(
            "Cache write failed; the source is up to date, the cache may serve an older value until it expires",
            key: key, error: error, metadata: ["operation": "\(operation)"]
        )
    }

    /// Logs a warning about `error` without the key, and, at debug level, the key: keys may be personal data, so
    /// they never appear in records above debug.
    func warning(_ message: Logger.Message, key: String?, error: any Error, metadata: Logger.Metadata = [:]) {
        var metadata = metadata
        metadata["error"] = "\(keylessDescription(of: error))"
        logger.warning(message, metadata: metadata)
        if let key {
            logger.debug("The key of the previous warning", metadata: ["key": "\(key)", "error": "\(error)"])
        }
    }
}

/// Counters of the patterns of one cache (see ``CachePatternsState/counters``). They start at zero and only grow.
public struct CachePatternCounters: Sendable, Hashable, Codable {
    /// Calls of `getOrSet` factories and batch loaders.
    public var factoryCalls: UInt64
    /// Factory and loader calls that threw.
    public var factoryErrors: UInt64
    /// Times fail-safe returned a stale value because the factory failed or was too slow.
    public var staleValuesServed: UInt64
    /// Waits for a factory that ended at the hard or soft timeout.
    public var timeouts: UInt64
    /// Early refreshes started in the background.
    public var backgroundRefreshes: UInt64
    /// Early refreshes whose factory or store failed.
    public var backgroundRefreshFailures: UInt64
    /// Cache writes that failed while the caller carried on: write-through, storing a loaded value.
    public var cacheWriteFailures: UInt64
    /// Reads and writes a fallback cache served from memory because its backend was unreachable.
    public var fallbackEvents: UInt64

    /// Creates a snapshot.
    public init(
        factoryCalls: UInt64 = 0, factoryErrors: UInt64 = 0, staleValuesServed: UInt64 = 0, timeouts: UInt64 = 0,
        backgroundRefreshes: UInt64 = 0, backgroundRefreshFailures: UInt64 = 0, cacheWriteFailures: UInt64 = 0,
        fallbackEvents: UInt64 = 0
    ) {
        self.factoryCalls = factoryCalls
        self.factoryErrors = factoryErrors
        self.staleValuesServed = staleValuesServed
        self.timeouts = timeouts
        self.backgroundRefreshes = backgroundRefreshes
        self.backgroundRefreshFailures = backgroundRefreshFailures
        self.cacheWriteFailures = cacheWriteFailures
        self.fallbackEvents = fallbackEvents
    }
}

/// `error` described for a log record above debug level: a ``CacheError`` without its key (keys may be personal
/// data and appear only at debug level), anything else as it describes itself.
func keylessDescription(of error: any Error) -> String {
    guard let error = error as? CacheError else { return "\(error)" }
    var text = "CacheError.\(error.code): \(error.message)"
    if let underlying = error.underlying { text += " (underlying: \(keylessDescription(of: underlying)))" }
    return text
}
