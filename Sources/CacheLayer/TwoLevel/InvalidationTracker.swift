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
    private let pingInterval: Duration
    private let logger: Logger
    private let state = Locked(TrackerStateMachine<RedisConnection>())
    private let establishedCount = Atomic<UInt64>(0)
    private let invalidationMessages = Atomic<UInt64>(0)
    private let invalidatedKeys = Atomic<UInt64>(0)
    private let lastFailure = Locked<(description: String, refusedByServer: Bool)?>(nil)

    /// - Parameters:
    ///   - connectionConfiguration: How to reach Redis (the cache's pool settings); RESP3 is required.
    ///   - prefix: `"<namespace>:"`, or empty to track every key of the database.
    init(connectionConfiguration: RedisConnectionConfiguration, prefix: String, nearCache: NearCache, pingInterval: Duration, logger: Logger) {
        var configuration = connectionConfiguration
        configuration.protocolVersion = .resp3
        configuration.clientName = configuration.clientName.map { "\($0)-tracking" }
        configuration.commandTimeout = pingInterval
        self.connectionConfiguration = configuration
        self.prefix = prefix
        self.nearCache = nearCache
        self.pingInterval = pingInterval
        self.logger = logger
    }

    /// How many times tracking was set up (1 after the first connection; each reconnection adds one).
    var establishments: UInt64 { establishedCount.load(ordering: .relaxed) }

    /// Invalidation messages received.
    var invalidations: UInt64 { invalidationMessages.load(ordering: .relaxed) }

    /// Keys named by the invalidation messages received.
    var invalidationKeys: UInt64 { invalidatedKeys.load(ordering: .relaxed) }

    /// The `CLIENT ID` of the tracking connection while tracking is set up, for `CLIENT KILL ID` in tests and demos.
    var clientID: Int? { state.withLock { $0.clientID } }

    /// Why the last attempt to set up tracking failed, if it did, and whether Redis refused it (no RESP3, or an error
    /// reply to `CLIENT TRACKING`) rather than being unreachable.
    var failure: (description: String, refusedByServer: Bool)? { lastFailure.withLock { $0 } }

    /// Connects, sets up tracking and applies invalidations until ``shutdown()`` or cancellation; reconnects with
    /// backoff (10 ms doubling to 1 s) whenever the connection is lost.
    func run() async {
        var failures = 0
        while !Task.isCancelled {
            guard state.withLock({ $0.startConnecting() }) else { return }
            do {
                try await trackOnce()
                failures = 0
            } catch {
                failures += 1
                let refused = (error as? CacheError)?.code == .unsupported || (error as? RedisError)?.code == .serverError
                lastFailure.withLock { $0 = ("\(error)", refused) }
                if failures == 1 {
                    logger.warning("Could not set up Redis client tracking; the near cache is bypassed until it works", metadata: ["error": "\(error)"])
                }
            }
            guard state.withLock({ $0.disconnected() }) else { return }
            let backoff = Duration.milliseconds(min(1000, 10 << min(failures, 7)))
            do {
                try await Task.sleep(for: failures == 0 ? .milliseconds(1) : backoff)
            } catch {
                return
            }
        }
    }

    /// Ends ``run()`` and closes the tracking connection.
    func shutdown() {
        if let connection = state.withLock({ $0.shutdown() }) {
            // Ends the push stream, so `run()` returns; it also awaits the close.
            connection.channel.close(mode: .all, promise: nil)
        }
    }

    /// One connection's life: connect, `CLIENT TRACKING ON BCAST`, apply pushes until it ends. Throws when tracking
    /// could not be set up; returns when an established connection was lost.
    private func trackOnce() async throws {
        let connection = try await RedisConnection.connect(configuration: connectionConfiguration)
        let clientID: Int
        do {
            guard connection.protocolVersion == 3 else {
                throw CacheError(
                    code: .unsupported,
                    message: "Redis refused RESP3 (HELLO 3), which client tracking needs. Use Redis 6 or later, or set nearCache.coherence = .pubSub (or .ttlOnly)."
                )
            }
            clientID = try await connection.execute(RedisCommand("CLIENT", "ID")).int ?? -1
            var arguments = ["CLIENT", "TRACKING", "ON", "BCAST"]
            if !prefix.isEmpty { arguments += ["PREFIX", prefix] }
            _ = try await connection.execute(RedisCommand(arguments))
        } catch {
            await connection.close()
            throw error
        }
        guard state.withLock({ $0.tracking(connection, clientID: clientID) }) else {
            await connection.close()
            return
        }
        // From here on every write under the prefix produces a push on this connection, so fills are safe.
        nearCache.setCoherent(true)
        establishedCount.add(1, ordering: .relaxed)
        lastFailure.withLock { $0 = nil }
        logger.debug("Redis client tracking set up", metadata: ["client-id": "\(clientID)"])
        await consume(connection)
        // The connection is gone: whatever was written meanwhile was not announced. Empty L1 and refuse fills until
        // tracking is back.
        nearCache.setCoherent(false)
        await connection.close()
        if !state.withLock({ $0.isShutDown }) {
            logger.warning("Redis client tracking connection lost; the near cache was emptied and tracking is being set up again")
        }
    }

    /// Applies pushes until the connection ends; a `PING` every interval closes it when not answered in time.
    private func consume(_ connection: RedisConnection) async {
        let pingInterval = self.pingInterval
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                while true {
                    do {
                        try await Task.sleep(for: pingInterval)
                        _ = try await connection.execute(RedisCommand("PING"), timeout: pingInterval)
                    } catch {
                        // A timeout has already closed the connection; anything else (cancellation) ends here too.
                        await connection.close()
                        return
                    }
                }
            }
            for await push in connection.pushMessages {
                apply(push)
            }
            group.cancelAll()
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

/// The life cycle of the tracking connection (or the backplane's subscription): idle → connecting → tracking → idle …
/// until shut down.
struct TrackerStateMachine<Connection>: ~Copyable {
    private enum State {
        case idle
        case connecting
        case tracking(Connection, clientID: Int)
        case shutDown
    }

    private var state: State = .idle

    /// The client id while tracking.
    var clientID: Int? {
        if case .tracking(_, let id) = state { return id }
        return nil
    }

    var isShutDown: Bool {
        if case .shutDown = state { return true }
        return false
    }

    /// A connection attempt starts; false when shut down.
    mutating func startConnecting() -> Bool {
        switch state {
        case .shutDown: return false
        case .idle, .connecting, .tracking:
            state = .connecting
            return true
        }
    }

    /// Tracking is set up on `connection`; false when shut down meanwhile (the caller closes it).
    mutating func tracking(_ connection: Connection, clientID: Int) -> Bool {
        switch state {
        case .shutDown: return false
        case .idle, .connecting, .tracking:
            state = .tracking(connection, clientID: clientID)
            return true
        }
    }

    /// The attempt or connection ended; false when shut down.
    mutating func disconnected() -> Bool {
        switch state {
        case .shutDown: return false
        case .idle, .connecting, .tracking:
            state = .idle
            return true
        }
    }

    /// Shuts down; returns the connection to close, if tracking.
    mutating func shutdown() -> Connection? {
        defer { state = .shutDown }
        if case .tracking(let connection, _) = state { return connection }
        return nil
    }
}
