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
/// While it runs: a ``CacheMetricsReporter`` (unless `metricsInterval` is `nil`) and the work the backend
/// registered with ``CachePatternsState/registerBackgroundWork(_:_:)`` (sweeper, health probe). On graceful
/// shutdown or cancellation it stops them, reports the metrics a last time and calls ``Cache/close()``.
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
    /// - Throws: The error of a background job that failed (the cache is closed first), or of `close()`.
    public func run() async throws {
        let logger = cache.patterns.logger
        var failure: (any Error)?
        do {
            try await withThrowingTaskGroup(of: Void.self) { group in
                if let reporter {
                    group.addTask { try await reporter.run() }
                }
                for work in cache.patterns.backgroundWork {
                    group.addTask {
                        do {
                            try await cancelWhenGracefulShutdown(work.run)
                        } catch is CancellationError {
                            // Stopped by shutdown.
                        } catch {
                            logger.error("Cache background work failed", metadata: ["work": "\(work.name)", "error": "\(keylessDescription(of: error))"])
                            throw error
                        }
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
