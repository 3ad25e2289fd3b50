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
/// With ``carriesWrites`` (a single Redis server, not a cluster), tracking is turned on with `NOLOOP` as well, and the
/// ``TwoLevelCache``'s `set`s whose value enters L1 are sent on this connection (``write(_:key:)``) rather than through
/// the pool: Redis then announces no write whose last writer in its event-loop iteration was this connection, so an
/// instance's own write no longer comes back as an invalidation that removes its value from L1 (the echo), while every
/// write that ran after it — by another client, or by this instance through the pool — still does. See
/// `NearCache.storeWritten` for why that keeps L1 coherent.
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
    /// Whether tracking is turned on with `NOLOOP` and ``write(_:key:)`` may be used.
    let carriesWrites: Bool
    /// The deadline of a write on the tracking connection: the pool's command timeout, not the ping interval.
    private let writeTimeout: Duration?

    /// - Parameters:
    ///   - connectionConfiguration: How to reach Redis (the cache's pool settings); RESP3 is required.
    ///   - prefix: `"<namespace>:"`, or empty to track every key of the database.
    ///   - carriesWrites: Turn tracking on with `NOLOOP`, for writes sent with ``write(_:key:)``.
    ///   - setCoherent: Told when tracking is set up and lost; `nil` tells the near cache itself. On a cluster,
    ///     ``ClusterInvalidationTracker`` combines its nodes' trackers this way.
    init(
        connectionConfiguration: RedisConnectionConfiguration, prefix: String, nearCache: NearCache, pingInterval: Duration, logger: Logger,
        carriesWrites: Bool = false, setCoherent: (@Sendable (Bool) -> Void)? = nil
    ) {
        self.carriesWrites = carriesWrites
        self.writeTimeout = connectionConfiguration.commandTimeout
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

    /// Sends `command`, a write of this instance whose value L1 keeps, on the tracking connection, so that its own
    /// invalidation is not sent back (`NOLOOP`). Returns `nil` without sending anything when tracking is not set up
    /// (not yet, being set up again, or without ``carriesWrites``): the caller sends it through the pool, and its echo
    /// then arrives as before.
    ///
    /// Errors are a pooled command's, mapped by the same `CacheError.fromRedis(_:key:)`: an error reply is
    /// ``CacheError/Code/backendError`` (or what its code maps to) and leaves the connection as it is; no reply within
    /// the pool's command timeout is ``CacheError/Code/timeout`` (and closes the connection), a lost connection
    /// ``CacheError/Code/unavailable``; either way L1 is emptied until tracking is set up again. The write is not
    /// retried (nor through the pool: `SET` is not idempotent). Once sent, the caller's cancellation does not abandon
    /// it: a cancelled command closes its connection (its reply can no longer be matched), which here would empty L1;
    /// so it runs until its reply or its timeout. A caller cancelled before it was sent gets
    /// ``CacheError/Code/cancelled``.
    ///
    /// The cost of sharing the connection: the tracking `PING` waits behind the writes sent before it, so a write Redis
    /// holds for longer than the ping interval (`CLIENT PAUSE WRITE` during a failover, a blocked server) makes the
    /// `PING` miss its deadline: L1 is emptied as for any silent server, and the write fails as
    /// ``CacheError/Code/unavailable``.
    ///
    /// Returns the write's place in the send order of this instance's writes (``NearCache/nextWriteSequence()``, taken
    /// on the event loop just before it is sent), which `NearCache.storeWritten` needs: Redis ran them in that order.
    func write(_ command: RedisCommand, key: String) async throws(CacheError) -> UInt64? {
        guard carriesWrites, let connection = feed.connection, !connection.isClosed else { return nil }
        if Task.isCancelled { throw CacheError.cancelled(key: key) }
        let nearCache = self.nearCache
        let sequence = WriteSequence()
        do {
            // Not cancellable once sent (a cancelled command would close the connection): no task of its own needed.
            _ = try await connection.executeToReply(command, timeout: writeTimeout) {
                sequence.value.store(nearCache.nextWriteSequence(), ordering: .relaxed)
            }
        } catch {
            throw CacheError.fromRedis(error, key: key)
        }
        return sequence.value.load(ordering: .relaxed)
    }

    /// Connects and sends `CLIENT TRACKING ON BCAST` (with `NOLOOP` when it ``carriesWrites``); from then on every
    /// write under the prefix produces a push on the connection (but for its own, with `NOLOOP`).
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
            if carriesWrites { arguments.append("NOLOOP") }
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

/// The send sequence of one write on the tracking connection, set on the event loop before it is sent and read by the
/// writer after its reply (the reply's hand-off orders the two).
private final class WriteSequence: Sendable {
    let value = Atomic<UInt64>(0)
}
