import CommonSupport
import Foundation
import Logging
import NIOCore
import RedisClient
import Synchronization

/// Keeps a ``NearCache`` coherent through Redis pub/sub, for servers without client tracking (Redis < 6, managed
/// services that disable `CLIENT TRACKING`): every write, delete, clear and invalidation of a ``TwoLevelCache``
/// publishes a ``BackplaneMessage`` on one channel, and every instance subscribed to it removes the keys from its L1.
///
/// - An instance ignores its own messages: it already removed the keys from its L1 when it wrote.
/// - A publish that fails (Redis unreachable, a timeout) is kept in a bounded ``BackplanePublishQueue`` (the latest
///   state per key; past the bound, one "everything changed" message) and retried with backoff until it goes through.
/// - The same rules as tracking apply when a message may have been missed: L1 is emptied and no fill is allowed until
///   the subscription is confirmed again when the subscriber connection closes (server restart, `CLIENT KILL`,
///   network), a `PING` is not answered within the interval, or more messages wait unread than the buffer holds.
///   A message that is not well formed empties L1 as well.
///
/// What it cannot see: writes by anything that is not a ``TwoLevelCache`` on this channel (another application,
/// `redis-cli`), nor expiries and evictions in Redis; an L1 entry still never outlives its Redis TTL at fill time
/// nor ``NearCacheConfiguration/maxTTL``. Tracking sees all of those; see the two-level article.
final class InvalidationBackplane: InvalidationSource {
    /// The most keys one message names.
    static let maxKeysPerMessage = 500
    /// The identity of this instance in the messages it publishes.
    let instanceID = UUID()
    private let connectionConfiguration: RedisConnectionConfiguration
    private let clusterNodes: (@Sendable () async -> [RedisConnectionConfiguration])?
    private let channel: String
    private let nearCache: NearCache
    private let feed: InvalidationFeed<RedisSubscription>
    private let publish: @Sendable (ByteBuffer) async throws -> Void
    private let logger: Logger
    private let pending = Locked(BackplanePublishQueue())
    private let retryWakeUp: AsyncStream<Void>.Continuation
    private let retryWakeUps: AsyncStream<Void>
    private let receivedMessages = Atomic<UInt64>(0)
    private let receivedKeys = Atomic<UInt64>(0)
    private let failedPublishCount = Atomic<UInt64>(0)

    /// - Parameters:
    ///   - connectionConfiguration: How to reach Redis (the cache's pool settings); RESP2 or RESP3.
    ///   - channel: The pub/sub channel every instance of the namespace uses.
    ///   - clusterNodes: On a Redis Cluster, the nodes the subscriber may connect to (one is enough: a cluster
    ///     forwards every `PUBLISH` to every node); tried in turn until one accepts. `nil`: the server of
    ///     `connectionConfiguration`.
    ///   - publish: Publishes a message on `channel` (through the cache's pool).
    init(
        connectionConfiguration: RedisConnectionConfiguration,
        channel: String,
        nearCache: NearCache,
        pingInterval: Duration,
        logger: Logger,
        clusterNodes: (@Sendable () async -> [RedisConnectionConfiguration])? = nil,
        publish: @escaping @Sendable (ByteBuffer) async throws -> Void
    ) {
        var configuration = connectionConfiguration
        configuration.clientName = configuration.clientName.map { "\($0)-backplane" }
        configuration.commandTimeout = pingInterval
        self.connectionConfiguration = configuration
        self.clusterNodes = clusterNodes
        self.channel = channel
        self.nearCache = nearCache
        self.feed = InvalidationFeed(
            name: "the near-cache backplane subscription (channel \(channel))", nearCache: nearCache,
            pingInterval: pingInterval, logger: logger
        )
        self.logger = logger
        self.publish = publish
        (retryWakeUps, retryWakeUp) = AsyncStream<Void>.makeStream(bufferingPolicy: .bufferingNewest(1))
    }

    var establishments: UInt64 { feed.establishments }
    var invalidations: UInt64 { receivedMessages.load(ordering: .relaxed) }
    var invalidationKeys: UInt64 { receivedKeys.load(ordering: .relaxed) }
    var clientID: Int? { feed.clientID }
    var failure: (description: String, refusedByServer: Bool)? { feed.failure }
    /// Publications that failed (and were queued to be retried).
    var failedPublishes: UInt64 { failedPublishCount.load(ordering: .relaxed) }
    /// Whether invalidations wait to be published again.
    var hasPendingPublications: Bool { !pending.withLock { $0.isEmpty } }

    // MARK: publishing

    /// Tells the other instances that `change` happened; a failure queues it for a retry (never thrown: the write
    /// itself succeeded or failed on its own).
    func announce(_ change: NearCacheChange) async {
        if case .keys(let keys) = change, keys.count > Self.maxKeysPerMessage {
            // A batch write of many keys goes out in several messages, each well under the subscribers' bulk limit.
            var start = 0
            while start < keys.count {
                let end = min(start + Self.maxKeysPerMessage, keys.count)
                await announce(.keys(Array(keys[start..<end])))
                start = end
            }
            return
        }
        do {
            try await publish(BackplaneMessage(instanceID: instanceID, change: change).encoded())
        } catch {
            failedPublishCount.add(1, ordering: .relaxed)
            let first = pending.withLock { queue in
                defer { queue.add(change) }
                return queue.isEmpty
            }
            if first {
                logger.warning("Could not publish a near-cache invalidation; retrying until Redis takes it", metadata: ["error": "\(error)"])
            }
            retryWakeUp.yield()
        }
    }

    /// Publishes queued invalidations again, with backoff (10 ms doubling to 1 s), until shut down.
    private func retryPending() async {
        for await _ in retryWakeUps {
            var failures = 0
            while !Task.isCancelled {
                let changes = pending.withLock { $0.takeAll(batch: Self.maxKeysPerMessage) }
                guard !changes.isEmpty else { break }
                var failedFrom: Int?
                for (index, change) in changes.enumerated() {
                    do {
                        try await publish(BackplaneMessage(instanceID: instanceID, change: change).encoded())
                    } catch {
                        failedFrom = index
                        break
                    }
                }
                guard let failedFrom else { continue }
                pending.withLock { queue in
                    for change in changes[failedFrom...] { queue.add(change) }
                }
                failures += 1
                guard (try? await Task.sleep(for: .milliseconds(min(1000, 10 << min(failures, 7))))) != nil else { return }
            }
        }
    }

    /// Publishes what is still queued, for at most `timeout` (``TwoLevelCache/close()`` calls it); what could not be
    /// published by then is dropped and logged: the other instances' copies then live until their TTL.
    func drain(timeout: Duration) async {
        let changes = pending.withLock { $0.takeAll(batch: Self.maxKeysPerMessage) }
        guard !changes.isEmpty else { return }
        let published = await withTaskGroup(of: Bool.self) { group in
            group.addTask {
                for change in changes {
                    guard (try? await self.publish(BackplaneMessage(instanceID: self.instanceID, change: change).encoded())) != nil else {
                        return false
                    }
                }
                return true
            }
            group.addTask {
                try? await Task.sleep(for: timeout)
                return false
            }
            defer { group.cancelAll() }
            return await group.next() ?? false
        }
        if !published {
            logger.warning("Closed with near-cache invalidations not yet published; other instances may serve their copies of those keys until nearCache.maxTTL")
        }
    }

    // MARK: subscribing

    func run() async {
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await self.retryPending() }
            await subscribeLoop()
            retryWakeUp.finish()
            group.cancelAll()
        }
    }

    private func subscribeLoop() async {
        await feed.run(
            setUp: { try await self.subscribe() },
            isRefusal: { ($0 as? RedisError)?.code == .serverError },
            apply: { self.apply($0.payload) }
        )
    }

    func shutdown() {
        feed.shutdown()
        retryWakeUp.finish()
    }

    /// Connects and subscribes; from then on every invalidation published on the channel reaches the connection.
    private func subscribe() async throws -> (connection: RedisSubscription, clientID: Int) {
        let connection = try await connect()
        do {
            // Asked before subscribing: a RESP2 subscriber may run no other command.
            let clientID = try await connection.execute(RedisCommand("CLIENT", "ID")).int ?? -1
            return (try await connection.subscribe(to: [channel]), clientID)
        } catch {
            await connection.close()
            throw error
        }
    }

    /// A connection to the server, or to the first cluster node (in random order) that accepts one.
    private func connect() async throws -> RedisConnection {
        guard let clusterNodes else { return try await RedisConnection.connect(configuration: connectionConfiguration) }
        var lastError: (any Error)?
        for node in await clusterNodes().shuffled() {
            var configuration = node
            configuration.clientName = connectionConfiguration.clientName
            configuration.commandTimeout = connectionConfiguration.commandTimeout
            do {
                return try await RedisConnection.connect(configuration: configuration)
            } catch {
                lastError = error
            }
        }
        throw lastError ?? RedisError(code: .connectFailed, message: "no Redis Cluster node is known to subscribe to the near-cache backplane channel")
    }

    /// Handles one message: another instance's change is applied to L1; this instance's own is ignored.
    private func apply(_ payload: ByteBuffer) {
        guard let message = BackplaneMessage(decoding: payload) else {
            logger.warning("A message on the near-cache backplane channel is not an invalidation of this library; the near cache was emptied", metadata: ["channel": "\(channel)"])
            nearCache.flush()
            return
        }
        guard message.instanceID != instanceID else { return }
        defer { receivedMessages.add(1, ordering: .relaxed) }
        switch message.change {
        case .keys(let keys):
            nearCache.invalidate(keys)
            receivedKeys.add(UInt64(keys.count), ordering: .relaxed)
        case .prefix(let prefix):
            nearCache.invalidate(prefix: prefix)
        case .all:
            nearCache.flush()
        }
    }
}
