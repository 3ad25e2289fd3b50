import CacheLayer
import NIOCore
import Vapor

/// Vapor's `Cache` over a swift-cache-layer cache; what `app.cache` and `req.cache` are after
/// `app.caches.use(.cacheLayer(…))`.
///
/// Vapor's semantics, on any backend:
/// - Values are encoded with the codec (JSON by default) and stored as bytes (``CacheLayer/Cache/setBytes(_:to:ttl:)``),
///   since Vapor's values are only `Encodable`/`Decodable`; on Redis, the library's typed `get` reads them too.
/// - `set(key, to: nil)` deletes the key.
/// - A `nil` expiry means no expiry (not the cache's default TTL); a `CacheExpirationTime` is that many seconds; one of
///   zero seconds or less deletes the key, as the value would be expired at once.
/// - A stored value that does not decode as the requested type reads as `nil`, as in Vapor's memory cache; other
///   errors (Redis unreachable, cache closed) fail the future.
public struct CacheLayerVaporCache: Vapor.Cache, Sendable {
    /// Where the request's futures complete.
    public let eventLoop: any EventLoop
    private let source: CacheSource
    private let codec: any CacheCodec

    /// A Vapor cache over `cache`, completing its futures on `eventLoop`.
    public init(cache: any CacheLayer.Cache, codec: any CacheCodec = JSONCacheCodec(), on eventLoop: any EventLoop) {
        self.init(source: .ready(cache), codec: codec, on: eventLoop)
    }

    init(source: CacheSource, codec: any CacheCodec, on eventLoop: any EventLoop) {
        self.source = source
        self.codec = codec
        self.eventLoop = eventLoop
    }

    /// The cache behind this one, for the library's own API (`getOrSet`, tags, batches).
    public func cache() async throws -> any CacheLayer.Cache {
        try await source.cache()
    }

    public func get<T: Decodable>(_ key: String, as type: T.Type) -> EventLoopFuture<T?> {
        let source = source
        let codec = codec
        let eventLoop = eventLoop
        let promise = eventLoop.makePromise(of: T?.self)
        // Runs on the event loop, where a value that is not Sendable may complete the promise.
        let completion = ReadCompletion { result in
            switch result {
            case .success(let bytes):
                // Another type stored under the key reads as nil, as in Vapor's memory cache.
                promise.assumeIsolated().succeed(bytes.flatMap { try? codec.decode(T.self, from: $0) })
            case .failure(let error):
                promise.fail(error)
            }
        }
        Task {
            let result: Result<[UInt8]?, any Error>
            do {
                result = .success(try await source.cache().getBytes(key))
            } catch {
                result = .failure(error)
            }
            eventLoop.execute { completion.complete(result) }
        }
        return promise.futureResult
    }

    public func set<T: Encodable>(_ key: String, to value: T?) -> EventLoopFuture<Void> {
        set(key, to: value, expiresIn: nil)
    }

    public func set<T: Encodable>(_ key: String, to value: T?, expiresIn expirationTime: CacheExpirationTime?) -> EventLoopFuture<Void> {
        let source = source
        guard let value else {
            return eventLoop.makeFutureWithTask { try await source.cache().delete(key) }
        }
        let bytes: [UInt8]
        do {
            // Encoded here: Vapor's values are not Sendable, their bytes are.
            bytes = try codec.encode(value)
        } catch {
            return eventLoop.makeFailedFuture(
                CacheError(
                    code: .encodingFailed, key: key,
                    message: "The codec could not encode the \(T.self) value. Check the type's Encodable conformance.",
                    underlying: error
                )
            )
        }
        guard let ttl = Self.ttl(for: expirationTime) else {
            return eventLoop.makeFutureWithTask { try await source.cache().delete(key) }
        }
        return eventLoop.makeFutureWithTask {
            try await source.cache().setBytes(key, to: bytes, ttl: ttl)
        }
    }

    public func `for`(_ request: Request) -> CacheLayerVaporCache {
        CacheLayerVaporCache(source: source, codec: codec, on: request.eventLoop)
    }

    /// The cache TTL for a Vapor expiry: none for `nil`; `nil` when the value would be expired at once.
    static func ttl(for expirationTime: CacheExpirationTime?) -> Duration? {
        guard let expirationTime else { return .noExpiry }
        let seconds = expirationTime.seconds
        return seconds > 0 ? .seconds(seconds) : nil
    }
}

/// The step that decodes a read and completes its future, carried through the task that reads to the event loop.
///
/// `@unchecked Sendable` is safe: the closure captures only a promise and a codec (both `Sendable`) and the metatype
/// of Vapor's `T` (immutable type metadata, not `Sendable` only because `T` need not be); it is called once, on the
/// promise's event loop.
private struct ReadCompletion: @unchecked Sendable {
    let complete: (Result<[UInt8]?, any Error>) -> Void
}

/// A cache that exists, or one being created (``Application/Caches/Provider/cacheLayer(_:codec:logger:)``).
enum CacheSource: Sendable {
    case ready(any CacheLayer.Cache)
    case pending(Task<any CacheLayer.Cache, any Error>)

    func cache() async throws -> any CacheLayer.Cache {
        switch self {
        case .ready(let cache): return cache
        case .pending(let task): return try await task.value
        }
    }
}
