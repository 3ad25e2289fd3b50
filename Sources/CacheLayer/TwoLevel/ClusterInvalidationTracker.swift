import CommonSupport
import Logging
import RedisClient

/// Client tracking on a Redis Cluster: one ``InvalidationTracker`` (a RESP3 connection with
/// `CLIENT TRACKING ON BCAST PREFIX <namespace>:`) per node the cluster client may send commands to, since a key's
/// invalidations come only from the node that owns its slot.
///
/// L1 may be filled only while every one of those nodes is tracked; the rules of the single-node tracker hold per
/// node (a lost connection, a missed `PING`, an overflow, `FLUSHALL` empty L1). The set of nodes follows the cluster
/// client (``RedisClient/RedisClusterClient/addNodeObserver(_:)``): a node that appears (a replica promoted by a
/// failover, a node added, an `ASK` or `MOVED` to a node not seen yet) makes L1 empty and refuse fills until its
/// tracking is set up, and it is told so before any command can be sent there, so no read from it can fill L1
/// untracked. A node that leaves the topology has its tracker closed. Moving slots between tracked nodes needs
/// nothing: every node broadcasts the invalidations of every key it holds under the prefix.
///
/// While some node's tracking is down (a primary that died before its replica is promoted), the topology is read
/// again with back-off (100 ms doubling to 2 s), so a failover is noticed without waiting for the cluster client's
/// refresh timer.
final class ClusterInvalidationTracker: InvalidationSource {
    private struct Node {
        let tracker: InvalidationTracker
        let task: Task<Void, Never>
        var isTracking = false
    }

    private struct State {
        var nodes: [ClusterNodeAddress: Node] = [:]
        /// What the near cache was last told.
        var isCoherent = false
        var isShutDown = false
        /// Counters of trackers closed since (nodes that left the topology), so totals only grow.
        var retired: (establishments: UInt64, invalidations: UInt64, keys: UInt64) = (0, 0, 0)
        /// Tasks of trackers closed, awaited when ``run()`` ends.
        var closing: [Task<Void, Never>] = []

        var allTracking: Bool { !nodes.isEmpty && nodes.values.allSatisfy(\.isTracking) }
    }

    private let cluster: RedisClusterClient
    private let prefix: String
    private let nearCache: NearCache
    private let pingInterval: Duration
    private let logger: Logger
    private let state = Locked(State())
    private let wakeUps: AsyncStream<Void>
    private let wakeUp: AsyncStream<Void>.Continuation

    /// - Parameters:
    ///   - cluster: The cache's cluster client: its nodes, their connection settings (RESP3 is forced), its topology.
    ///   - prefix: `"<namespace>:"`, or empty to track every key.
    init(cluster: RedisClusterClient, prefix: String, nearCache: NearCache, pingInterval: Duration, logger: Logger) {
        self.cluster = cluster
        self.prefix = prefix
        self.nearCache = nearCache
        self.pingInterval = pingInterval
        self.logger = logger
        (wakeUps, wakeUp) = AsyncStream<Void>.makeStream(bufferingPolicy: .bufferingNewest(1))
    }

    var establishments: UInt64 { total { $0.establishments } + state.withLock { $0.retired.establishments } }
    var invalidations: UInt64 { total { $0.invalidations } + state.withLock { $0.retired.invalidations } }
    var invalidationKeys: UInt64 { total { $0.invalidationKeys } + state.withLock { $0.retired.keys } }

    /// The `CLIENT ID` of the first node's tracking connection (see ``clientIDs`` for all of them).
    var clientID: Int? { clientIDs.sorted { ($0.key.host, $0.key.port) < ($1.key.host, $1.key.port) }.first?.value }

    /// The `CLIENT ID` of each node's tracking connection while set up.
    var clientIDs: [ClusterNodeAddress: Int] {
        state.withLock { $0.nodes.compactMapValues(\.tracker.clientID) }
    }

    /// A node's setup failure; one Redis refused first, since it will not go away by waiting.
    var failure: (description: String, refusedByServer: Bool)? {
        let failures = state.withLock { $0.nodes.values.compactMap(\.tracker.failure) }
        return failures.first(where: \.refusedByServer) ?? failures.first
    }

    private func total(_ counter: (InvalidationTracker) -> UInt64) -> UInt64 {
        state.withLock { $0.nodes.values.reduce(0) { $0 + counter($1.tracker) } }
    }

    /// Follows the cluster's nodes and keeps a tracker on each until ``shutdown()`` or cancellation.
    func run() async {
        await withTaskCancellationHandler {
            cluster.addNodeObserver { [weak self] nodes in self?.nodesChanged(nodes) }
            await superviseTopology()
        } onCancel: {
            self.shutdown()
        }
        let tasks = state.withLock { $0.closing + $0.nodes.values.map(\.task) }
        for task in tasks { await task.value }
    }

    /// Reads the topology while it is unknown or some node's tracking is down, with back-off; otherwise waits until a
    /// node's tracking is lost.
    private func superviseTopology() async {
        var failures = 0
        var wakeUps = self.wakeUps.makeAsyncIterator()
        while !state.withLock({ $0.isShutDown }) {
            if state.withLock({ $0.allTracking }) {
                failures = 0
                // Woken when a node's tracking is lost, the nodes change, or at shutdown.
                guard await wakeUps.next() != nil else { return }
                continue
            }
            let delay = Duration.milliseconds(min(2000, 100 << min(failures, 5)))
            failures += 1
            if failures > 1 || cluster.nodes.isEmpty {
                do {
                    try await cluster.refreshTopology()
                } catch {
                    logger.debug("Could not read the cluster topology for client tracking", metadata: ["error": "\(error)"])
                }
            }
            guard (try? await Task.sleep(for: delay)) != nil else { return }
        }
    }

    /// Ends ``run()`` and closes every tracking connection.
    func shutdown() {
        let trackers = state.withLock { state -> [InvalidationTracker] in
            guard !state.isShutDown else { return [] }
            state.isShutDown = true
            return state.nodes.values.map(\.tracker)
        }
        for tracker in trackers { tracker.shutdown() }
        wakeUp.finish()
    }

    /// The cluster client's nodes changed (called under its lock): trackers for new nodes, closed for gone ones.
    private func nodesChanged(_ addresses: Set<ClusterNodeAddress>) {
        var closed: [InvalidationTracker] = []
        state.withLock { state in
            guard !state.isShutDown else { return }
            for (address, node) in state.nodes where !addresses.contains(address) {
                state.nodes[address] = nil
                state.retired.establishments += node.tracker.establishments
                state.retired.invalidations += node.tracker.invalidations
                state.retired.keys += node.tracker.invalidationKeys
                state.closing.append(node.task)
                closed.append(node.tracker)
            }
            for address in addresses where state.nodes[address] == nil {
                state.nodes[address] = makeNode(address)
            }
            updateCoherence(&state)
        }
        for tracker in closed { tracker.shutdown() }
        if !closed.isEmpty || state.withLock({ !$0.allTracking }) { wakeUp.yield() }
    }

    private func makeNode(_ address: ClusterNodeAddress) -> Node {
        // The tracker reports to this object, which tells the near cache once every node is tracked.
        let box = Locked<InvalidationTracker?>(nil)
        let tracker = InvalidationTracker(
            connectionConfiguration: cluster.connectionConfiguration(for: address), prefix: prefix, nearCache: nearCache,
            pingInterval: pingInterval, logger: logger
        ) { [weak self] tracking in
            guard let self, let tracker = box.withLock({ $0 }) else { return }
            self.trackingChanged(address, tracker: tracker, tracking: tracking)
        }
        box.withLock { $0 = tracker }
        return Node(tracker: tracker, task: Task { await tracker.run() })
    }

    /// One node's tracking was set up or lost.
    private func trackingChanged(_ address: ClusterNodeAddress, tracker: InvalidationTracker, tracking: Bool) {
        state.withLock { state in
            guard state.nodes[address]?.tracker === tracker else { return }  // a node gone from the topology
            state.nodes[address]?.isTracking = tracking
            updateCoherence(&state)
        }
        if !tracking { wakeUp.yield() }
    }

    /// Tells the near cache when every node is tracked, or when one is no longer: called under the lock, so that the
    /// order of changes is kept.
    private func updateCoherence(_ state: inout State) {
        let coherent = state.allTracking
        guard coherent != state.isCoherent else { return }
        state.isCoherent = coherent
        nearCache.setCoherent(coherent)
    }
}
