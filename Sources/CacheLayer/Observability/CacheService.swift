import Logging
import Metrics
import ServiceLifecycle

/// Runs a cache's background work inside an application's `ServiceGroup` and closes the cache on shutdown.
///
/// ```swift
/// let cache = try await makeCache(configuration)
/// let app = Application(router: router, services: [CacheService(cache: cache)])   // Hummingbird
/// try await app.runService()
/// ```
///
/// While it runs: the cache's background work (``Cache/run()``: the memory cache's sweeper, the Redis connection
/// pool, the fallback cache's probe of an unreachable backend) and a ``CacheMetricsReporter`` (unless
/// `metricsInterval` is `nil`). On graceful shutdown or cancellation it stops them, reports the metrics a last time and
/// calls ``Cache/close()``.
public struct CacheService: Service {
    /// The cache this service runs and closes.
    public let cache: any Cache
    private let reporter: CacheMetricsReporter?

    /// Creates the service of `cache`.
    ///
    /// - Parameters:
    ///   - cache: The cache to run and, on shutdown, to close.
    ///   - metricsInterval: How often metrics are reported; `nil` reports none.
    ///   - metricsFactory: Where metrics go; by default the one bootstrapped with `MetricsSystem.bootstrap`.
    public init(
        cache: any Cache,
        metricsInterval: Duration? = .seconds(10),
        metricsFactory: any MetricsFactory = MetricsSystem.factory
    ) {
        self.cache = cache
        self.reporter = metricsInterval.map { CacheMetricsReporter(cache: cache, interval: $0, factory: metricsFactory) }
    }

    /// Runs until graceful shutdown or cancellation, then closes the cache.
    ///
    /// - Throws: The error of the cache's ``Cache/run()`` when it failed (the cache is closed first), or of `close()`.
    public func run() async throws {
        let logger = cache.patterns.logger
        var failure: (any Error)?
        do {
            try await withThrowingTaskGroup(of: Void.self) { group in
                if let reporter {
                    group.addTask { try await reporter.run() }
                }
                group.addTask { [cache] in
                    do {
                        // Also stops a conformance's run() that ignores graceful shutdown.
                        try await cancelWhenGracefulShutdown { try await cache.run() }
                    } catch is CancellationError {
                        // Stopped by shutdown.
                    } catch {
                        logger.error("Cache background work failed", metadata: ["error": "\(keylessDescription(of: error))"])
                        throw error
                    }
                }
                // Keeps the service running until shutdown even when there is no other work.
                group.addTask { try await gracefulShutdown() }
                try await group.waitForAll()
            }
        } catch is CancellationError {
            // Cancelled rather than shut down gracefully: close all the same.
        } catch {
            failure = error
        }
        logger.debug("Closing cache")
        try await cache.close()
        if let failure { throw failure }
    }
}
