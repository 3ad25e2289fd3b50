import CommonSupport
import Logging
import NIOCore
import RedisClient
import Synchronization

/// Keeps a ``NearCache`` coherent with Redis through server-assisted client-side caching: one dedicated RESP3
/// connection with `CLIENT TRACKING ON BCAST PREFIX <namespace>:`, whose invalidation pushes remove keys from L1.
///
/// Why BCAST and not the default (or OPTIN) mode: in the default mode Redis remembers, per key, which clients read
/// it (its tracking table costs server memory, is capped by `tracking-table-max-keys`, and evicting from it sends
/// invalidations anyway), and the reads must come from the tracked connection or one redirected to it, so every
/// pooled connection would need `CLIENT TRACKING ON REDIRECT <id>` again after each reconnect. BCAST keeps no state
/// per key, needs nothing on the pooled connections, and catches every writer, expiry and eviction under the prefix.
/// Its cost is traffic: every instance receives an invalidation for every write under the namespace, also for keys it
/// never cached. For a cache whose write rate is modest next to its read rate (the case for a near cache) that is
/// cheap; for a namespace with a very high write rate, give the hot-written data a namespace of its own without a near
/// cache.
///
/// Whenever an invalidation may have been missed, L1 is emptied and no fill is allowed until tracking is set up
/// again: the connection closes (server restart, `CLIENT KILL`, network), a `PING` is not answered within the
/// ping interval, the push buffer overflows (``RedisClient/RedisConnection/pushMessages`` then closes the
/// connection), or a `null` invalidation arrives (`FLUSHALL`, `FLUSHDB`).
///
/// ``run()`` is the background loop; its owner (``TwoLevelCache``) drives it and ends it with ``shutdown()``.
final class InvalidationTracker: Sendable {
    private let connectionConfiguration: RedisConnectionConfiguration
    private let prefix: String
    private let nearCache: NearCache
    private let feed: InvalidationFeed<RedisConnection>
    private let invalidationMessages = Atomic<UInt64>(0)
    private let invalidatedKeys = Atomic<UInt64>(0)

    /// - Parameters:
    ///   - connectionConfiguration: How to reach Redis (the cache's pool settings); RESP3 is required.
    ///   - prefix: `"<namespace>:"`, or empty to track every key of the database.
    ///   - setCoherent: Told when tracking is set up and lost; `nil` tells the near cache itself. On a cluster,
    ///     ``ClusterInvalidationTracker`` combines its nodes' trackers this way.
    init(
        connectionConfiguration: RedisConnectionConfiguration, prefix: String, nearCache: NearCache, pingInterval: Duration, logger: Logger,
        setCoherent: (@Sendable (Bool) -> Void)? = nil
    ) {
        var configuration = connectionConfiguration
        configuration.protocolVersion = .resp3
        configuration.clientName = configuration.clientName.map { "\($0)-tracking" }
        configuration.commandTimeout = pingInterval
        self.connectionConfiguration = configuration
        self.prefix = prefix
        self.nearCache = nearCache
        self.feed = InvalidationFeed(
            name: "Redis client tracking (\(configuration.host):\(configuration.port))",
            setCoherent: setCoherent ?? { nearCache.setCoherent($0) }, pingInterval: pingInterval, logger: logger
        )
    }

    /// How many times tracking was set up (1 after the first connection; each reconnection adds one).
    var establishments: UInt64 { feed.establishments }

    /// Invalidation messages received.
    var invalidations: UInt64 { invalidationMessages.load(ordering: .relaxed) }

    /// Keys named by the invalidation messages received.
    var invalidationKeys: UInt64 { invalidatedKeys.load(ordering: .relaxed) }

    /// The `CLIENT ID` of the tracking connection while tracking is set up, for `CLIENT KILL ID` in tests and demos.
    var clientID: Int? { feed.clientID }

    /// Why the last attempt to set up tracking failed, if it did, and whether Redis refused it (no RESP3, or an error
    /// reply to `CLIENT TRACKING`) rather than being unreachable.
    var failure: (description: String, refusedByServer: Bool)? { feed.failure }

    /// Connects, sets up tracking and applies invalidations until ``shutdown()`` or cancellation; reconnects with
    /// backoff whenever the connection is lost.
    func run() async {
        await feed.run(
            setUp: { try await self.setUpTracking() },
            isRefusal: { ($0 as? CacheError)?.code == .unsupported || ($0 as? RedisError)?.code == .serverError },
            apply: { self.apply($0) }
        )
    }

    /// Ends ``run()`` and closes the tracking connection.
    func shutdown() {
        feed.shutdown()
    }

    /// Connects and sends `CLIENT TRACKING ON BCAST`; from then on every write under the prefix produces a push on the
    /// connection.
    private func setUpTracking() async throws -> (connection: RedisConnection, clientID: Int) {
        let connection = try await RedisConnection.connect(configuration: connectionConfiguration)
        do {
            guard connection.protocolVersion == 3 else {
                throw CacheError(
                    code: .unsupported,
                    message: "Redis refused RESP3 (HELLO 3), which client tracking needs. Use Redis 6 or later, or set nearCache.coherence = .pubSub (or .ttlOnly)."
                )
            }
            let clientID = try await connection.execute(RedisCommand("CLIENT", "ID")).int ?? -1
            var arguments = ["CLIENT", "TRACKING", "ON", "BCAST"]
            if !prefix.isEmpty { arguments += ["PREFIX", prefix] }
            _ = try await connection.execute(RedisCommand(arguments))
            return (connection, clientID)
        } catch {
            await connection.close()
            throw error
        }
    }

    /// Handles one push: `invalidate [keys…]` removes the keys, `invalidate null` (FLUSHALL/FLUSHDB) everything.
    private func apply(_ push: RESPValue) {
        guard let parts = push.array, parts.count >= 2, parts[0].string == "invalidate" else { return }
        // Counted once applied, so that whoever waits on a counter sees L1 already changed.
        defer { invalidationMessages.add(1, ordering: .relaxed) }
        if parts[1].isNull {
            nearCache.flush()
            return
        }
        guard let keys = parts[1].array else { return }
        let prefix = self.prefix
        nearCache.invalidate(keys.lazy.compactMap { value -> String? in
            guard let buffer = value.buffer else { return nil }
            let key = String(buffer: buffer)
            guard key.hasPrefix(prefix) else { return nil }
            return String(key.dropFirst(prefix.count))
        })
        invalidatedKeys.add(UInt64(keys.count), ordering: .relaxed)
    }
}
