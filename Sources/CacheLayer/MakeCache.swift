import Logging

/// Creates the cache that `configuration` describes.
///
/// ```swift
/// let cache = try await makeCache(.development)
/// ```
///
/// - Throws: ``CacheError/Code/invalidConfiguration`` for an invalid configuration;
///   ``CacheError/Code/unsupported`` for a backend this build does not provide yet.
public func makeCache(
    _ configuration: CacheConfiguration,
    codec: any CacheCodec = JSONCacheCodec(),
    logger: Logger = Logger(label: "cachelayer")
) async throws -> any Cache {
    try configuration.validate()
    switch configuration.backend {
    case .memory:
        return try MemoryCache(configuration: configuration, codec: codec, logger: logger)
    case .redis:
        throw CacheError(
            code: .unsupported,
            message: "Redis backend not yet supported in this build; use .memory (set configuration.backend = .memory)."
        )
    }
}
