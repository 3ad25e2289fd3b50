import CacheLayer
import Logging
import ServiceLifecycle
import Synchronization
import Vapor

extension Application.Caches.Provider {
    /// The cache `configuration` describes, as `app.cache` and `req.cache`.
    ///
    /// ```swift
    /// app.caches.use(.cacheLayer(.production(redisAddress: "redis:6379")))
    /// ```
    ///
    /// The cache is created with `makeCache` in the background (so Redis is checked); `asyncBoot()` waits for it and
    /// throws when it cannot be created, and until then each operation waits for it. Its background work runs until
    /// the application shuts down, which closes it.
    public static func cacheLayer(
        _ configuration: CacheConfiguration,
        codec: any CacheCodec = JSONCacheCodec(),
        logger: Logger = Logger(label: "cachelayer")
    ) -> Self {
        .init { application in
            let task = Task<any CacheLayer.Cache, any Error> {
                try await makeCache(configuration, codec: codec, logger: logger)
            }
            application.caches.useCacheLayer(source: .pending(task), codec: codec)
        }
    }

    /// `cache`, already built, as `app.cache` and `req.cache`. Its background work runs until the application shuts
    /// down, which closes it.
    public static func cacheLayer(_ cache: any CacheLayer.Cache, codec: any CacheCodec = JSONCacheCodec()) -> Self {
        .init { application in
            application.caches.useCacheLayer(source: .ready(cache), codec: codec)
        }
    }
}

extension Application.Caches {
    /// The swift-cache-layer cache behind `app.cache`, for the library's own API (`getOrSet`, tags, batches).
    ///
    /// ```swift
    /// let user = try await req.application.caches.cacheLayer().getOrSet("user:\(id)", ttl: .seconds(60)) {
    ///     try await loadUser(id)
    /// }
    /// ```
    ///
    /// - Throws: ``CacheError/Code/unsupported`` when `app.caches.use(.cacheLayer(…))` was not called; the creation
    ///   error when the cache could not be created.
    public func cacheLayer() async throws -> any CacheLayer.Cache {
        guard let owner = application.storage[CacheLayerOwner.Key.self] else {
            throw CacheError(
                code: .unsupported,
                message: "No swift-cache-layer cache is configured. Call app.caches.use(.cacheLayer(configuration)) first."
            )
        }
        return try await owner.source.cache()
    }

    fileprivate func useCacheLayer(source: CacheSource, codec: any CacheCodec) {
        let owner = CacheLayerOwner(source: source)
        application.storage[CacheLayerOwner.Key.self] = owner
        application.lifecycle.use(owner)
        owner.start()
        use { application in
            CacheLayerVaporCache(source: source, codec: codec, on: application.eventLoopGroup.any())
        }
    }
}

/// Runs a cache's background work (``CacheService``) from when it is configured until the application shuts down,
/// then closes it.
final class CacheLayerOwner: LifecycleHandler, Sendable {
    struct Key: StorageKey {
        typealias Value = CacheLayerOwner
    }

    let source: CacheSource
    private let service = Mutex<Task<Void, any Error>?>(nil)

    init(source: CacheSource) {
        self.source = source
    }

    /// Starts the background work. Outside a service group, ``CacheService`` runs until its task is cancelled, then
    /// closes the cache.
    func start() {
        let source = source
        let task = Task {
            try await CacheService(cache: try await source.cache(), metricsInterval: nil).run()
        }
        service.withLock { $0 = task }
    }

    /// Waits for the cache, so a configuration Redis refuses fails the boot.
    func willBootAsync(_ application: Application) async throws {
        _ = try await source.cache()
    }

    func shutdownAsync(_ application: Application) async {
        guard let task = service.withLock({ $0.take() }) else { return }
        task.cancel()
        do {
            try await task.value
        } catch {
            application.logger.warning("The cache could not be created or closed", metadata: ["error": "\(error)"])
        }
    }

    /// The blocking shutdown cannot wait for the cache: it stops the background work, which closes the cache in the
    /// background. Prefer `asyncShutdown()`.
    func shutdown(_ application: Application) {
        service.withLock { $0.take() }?.cancel()
    }
}
