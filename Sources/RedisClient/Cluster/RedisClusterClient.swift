import CommonSupport
import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle

/// A client for a Redis Cluster, with the command API of ``RedisConnectionPool``: one pool per primary, commands
/// routed by their keys' hash slots, redirections followed.
///
/// ```swift
/// let cluster = try RedisClusterClient(configuration: .init(url: "redis://10.0.0.1:6379"))
/// try await withThrowingDiscardingTaskGroup { group in
///     group.addTask { await cluster.run() }
///     try await cluster.set("user:1", value: "…")
///     let values = try await cluster.mget(["user:1", "user:2"])   // split per slot, merged in order
///     group.cancelAll()
/// }
/// ```
///
/// - The topology comes from `CLUSTER SHARDS` (`CLUSTER SLOTS` on servers before 7.0) of any node that answers,
///   starting with the seeds. It is read again every ``RedisClusterConfiguration/refreshInterval``, after a `MOVED`
///   and after a connection failure; one read runs at a time, and commands whose slot still routes do not wait for it.
/// - `MOVED` updates the slot map and retries on the new owner; `ASK` sends `ASKING` and the command to the target
///   once. `TRYAGAIN`, `CLUSTERDOWN`, `LOADING`, `MASTERDOWN` and a primary that refuses connections (a failover in
///   progress) are retried with back-off for up to ``RedisClusterConfiguration/retryTimeout``. These replies mean the
///   command did not run, so writes are retried too; a write whose connection dropped mid-flight is not.
/// - `MGET`, `DEL`, `UNLINK`, `EXISTS`, `TOUCH` and `MSET` over keys of several slots are split into one command per
///   slot, sent as one pipeline per node, all nodes at once; the replies are put back in key order (`MSET` is then not
///   atomic). Pipelines are split per node the same way. Scripts must name keys of one slot only.
/// - `SCAN` and `KEYS` are refused (they would see one node): use ``scan(match:count:_:)``. `SELECT` is refused: a
///   cluster has only database 0.
/// - Reads go to primaries, unless ``RedisClusterConfiguration/readFromReplicas`` sends read-only commands to
///   replicas (eventually consistent; see there).
public final class RedisClusterClient: RedisCommandExecutor, Service {
    private enum Event: Sendable {
        case run(RedisConnectionPool)
        case stop
    }

    private struct State {
        var map = ClusterSlotMap()
        var pools: [ClusterNodeAddress: RedisConnectionPool] = [:]
        /// The pool of each slot's primary, so that routing a command is one array read under the lock (no hashing
        /// of addresses); `nil` where the slot has no owner or its owner no pool yet (the slow path fills it in).
        var slotPools = [RedisConnectionPool?](repeating: nil, count: ClusterHashSlot.count)
        /// With ``RedisClusterConfiguration/readFromReplicas``: one pool per replica, its connections `READONLY`.
        var replicaPools: [ClusterNodeAddress: RedisConnectionPool] = [:]
        var refresh: Task<Void, any Error>?
        var refreshes = 0
        var moved = 0
        var asked = 0
        var isShutDown = false
        /// Called whenever a node's pool is made or retired (``addNodeObserver(_:)``).
        var nodeObservers: [@Sendable (Set<ClusterNodeAddress>) -> Void] = []

        /// Points every slot served by `address` (every slot, when `nil`) at its primary's pool.
        mutating func updateSlotPools(for address: ClusterNodeAddress? = nil) {
            var last: (address: ClusterNodeAddress, pool: RedisConnectionPool?)?
            for slot in 0..<ClusterHashSlot.count {
                guard let primary = map.primary(forSlot: slot) else {
                    if address == nil { slotPools[slot] = nil }
                    continue
                }
                if let address, primary != address { continue }
                if last?.address != primary { last = (primary, pools[primary]) }
                slotPools[slot] = last?.pool
            }
        }

        /// Tells the observers the nodes after a change; called under the lock, before a command can use a new pool.
        func notifyNodeObservers() {
            let nodes = Set(pools.keys)
            for observer in nodeObservers { observer(nodes) }
        }
    }

    /// Seeds, node connections, pools and retries.
    public let configuration: RedisClusterConfiguration
    private let eventLoopGroup: any EventLoopGroup
    private let logger: Logger
    private let state = Locked(State())
    private let events: AsyncStream<Event>
    private let eventSink: AsyncStream<Event>.Continuation

    /// A client for the cluster; call ``run()`` to start it. The topology is read at the first command.
    public init(
        configuration: RedisClusterConfiguration,
        eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        logger: Logger = Logger(label: "RedisClient", factory: { _ in SwiftLogNoOpLogHandler() })
    ) throws {
        try configuration.validate()
        self.configuration = configuration
        self.eventLoopGroup = eventLoopGroup
        self.logger = logger
        (self.events, self.eventSink) = AsyncStream<Event>.makeStream()
    }

    // MARK: running

    /// Runs every node's pool and refreshes the topology on a timer, until cancelled or gracefully shut down (or
    /// ``shutdown()`` is called); then closes every connection and returns.
    public func run() async {
        await runBackgroundWork(events: self.events, shutdown: self.shutdown, background: { await self.refreshLoop() }) { event in
            switch event {
            case .run(let pool): .start { await pool.run() }
            case .stop: .cancelAll
            }
        }
    }

    /// Stops the client: every pool shuts down (see ``RedisConnectionPool/shutdown()``) and ``run()`` returns.
    public func shutdown() {
        let pools = self.state.withLock { state -> [RedisConnectionPool] in
            if state.isShutDown { return [] }
            state.isShutDown = true
            state.refresh?.cancel()
            return Array(state.pools.values) + Array(state.replicaPools.values)
        }
        for pool in pools { pool.shutdown() }
        self.eventSink.yield(.stop)
        self.eventSink.finish()
    }

    private func refreshLoop() async {
        while !Task.isCancelled {
            try? await Task.sleep(for: self.configuration.refreshInterval.clampedForSleeping)
            if Task.isCancelled { return }
            do {
                try await self.refreshTopology()
            } catch {
                self.logger.debug("cluster topology refresh failed", metadata: ["error": "\(error)"])
            }
        }
    }

    // MARK: topology

    /// The slot map as last read (or patched by `MOVED`).
    public var slotMap: ClusterSlotMap { self.state.withLock { $0.map } }

    /// How many times the topology was read; for tests.
    package var topologyRefreshCount: Int { self.state.withLock { $0.refreshes } }

    /// How many `MOVED` and `ASK` redirections commands met; for tests and the benchmark.
    package var redirections: (moved: Int, ask: Int) { self.state.withLock { ($0.moved, $0.asked) } }

    /// The nodes commands may be sent to now: every primary of the map, and any node a redirection named.
    package var nodes: [ClusterNodeAddress] { self.state.withLock { Array($0.pools.keys) } }

    /// Calls `observer` with the new ``nodes`` whenever they change (a primary appears after a failover, a node is
    /// added or retired, a redirection names a new node), and once now. It runs under the client's lock, so before
    /// any command can be sent to a new node; it must be quick and must not call the client.
    package func addNodeObserver(_ observer: @escaping @Sendable (Set<ClusterNodeAddress>) -> Void) {
        self.state.withLock { state in
            state.nodeObservers.append(observer)
            observer(Set(state.pools.keys))
        }
    }

    /// How to connect to one node: the configured connection with the node's host and port.
    package func connectionConfiguration(for address: ClusterNodeAddress) -> RedisConnectionConfiguration {
        self.configuration.connection(to: address)
    }

    /// Reads the topology now, or waits for the read in progress: one read at a time.
    public func refreshTopology() async throws {
        try await self.startRefresh().value
    }

    @discardableResult
    private func startRefresh() -> Task<Void, any Error> {
        self.state.withLock { state in
            if let running = state.refresh { return running }
            // Unstructured but short: it ends once a node answered or every candidate failed.
            let task = Task { try await self.discover() }
            state.refresh = task
            return task
        }
    }

    private func discover() async throws {
        defer { self.state.withLock { $0.refresh = nil } }
        let known = self.state.withLock { state in state.map.shards.flatMap { [$0.primary] + $0.replicas } }
        var candidates: [ClusterNodeAddress] = []
        for address in known.shuffled() + self.configuration.seeds where !candidates.contains(address) {
            candidates.append(address)
        }
        var lastError: (any Error)?
        for address in candidates {
            if Task.isCancelled { throw RedisError.cancelled }
            do {
                let map = try await self.fetchMap(from: address)
                guard !map.shards.isEmpty else { continue }
                self.apply(map)
                return
            } catch let error as RedisError where error.code == .authenticationFailed || error.code == .tls {
                throw error  // every node has the same credentials and certificates: say so at once
            } catch {
                lastError = error
                self.logger.debug("cluster node did not give its topology", metadata: ["node": "\(address)", "error": "\(error)"])
            }
        }
        throw RedisError(
            code: .connectFailed,
            message: "no Redis Cluster node answered CLUSTER SHARDS (tried \(candidates.map(\.description).joined(separator: ", "))); "
                + "check the seed addresses, that the servers run with cluster-enabled yes, and the credentials",
            underlying: lastError
        )
    }

    private func fetchMap(from address: ClusterNodeAddress) async throws -> ClusterSlotMap {
        let connection = try await RedisConnection.connect(
            configuration: self.configuration.connection(to: address),
            eventLoopGroup: self.eventLoopGroup,
            logger: self.logger
        )
        do {
            let map: ClusterSlotMap
            do {
                let reply = try await connection.execute(RedisCommand(["CLUSTER", "SHARDS"], isIdempotent: true))
                map = try ClusterSlotMap(shardsReply: reply, tls: self.configuration.connection.tls != nil)
            } catch let error as RedisError where error.code == .serverError && error.serverCode == "ERR" {
                // Before Redis 7.0: no CLUSTER SHARDS (or cluster mode is off, which CLUSTER SLOTS reports too).
                let reply = try await connection.execute(RedisCommand(["CLUSTER", "SLOTS"], isIdempotent: true))
                map = try ClusterSlotMap(slotsReply: reply)
            }
            await connection.close()
            return map
        } catch {
            await connection.close()
            throw error
        }
    }

    /// Installs a new map: pools for new primaries, retired pools for nodes that no longer serve slots.
    private func apply(_ map: ClusterSlotMap) {
        let (created, retired) = self.state.withLock { state -> ([RedisConnectionPool], [RedisConnectionPool]) in
            guard !state.isShutDown else { return ([], []) }
            state.map = map
            state.refreshes += 1
            let wanted = Set(map.primaries)
            var created: [RedisConnectionPool] = []
            for address in wanted where state.pools[address] == nil {
                let pool = self.makePool(address)
                state.pools[address] = pool
                created.append(pool)
            }
            var retired: [RedisConnectionPool] = []
            for (address, pool) in state.pools where !wanted.contains(address) {
                retired.append(pool)
                state.pools[address] = nil
            }
            state.updateSlotPools()
            if !created.isEmpty || !retired.isEmpty { state.notifyNodeObservers() }
            if self.configuration.readFromReplicas {
                let replicas = Set(map.shards.flatMap(\.replicas)).subtracting(wanted)
                for address in replicas where state.replicaPools[address] == nil {
                    let pool = self.makePool(address, readOnly: true)
                    state.replicaPools[address] = pool
                    created.append(pool)
                }
                for (address, pool) in state.replicaPools where !replicas.contains(address) {
                    retired.append(pool)
                    state.replicaPools[address] = nil
                }
            }
            return (created, retired)
        }
        for pool in created { self.eventSink.yield(.run(pool)) }
        for pool in retired { pool.shutdown() }
        if !created.isEmpty || !retired.isEmpty {
            self.logger.debug("cluster topology changed", metadata: ["added": "\(created.count)", "retired": "\(retired.count)"])
        }
    }

    private func makePool(_ address: ClusterNodeAddress, readOnly: Bool = false) -> RedisConnectionPool {
        var connection = self.configuration.connection(to: address)
        connection.readOnly = readOnly
        return RedisConnectionPool(
            connectionConfiguration: connection,
            configuration: self.configuration.pool,
            eventLoopGroup: self.eventLoopGroup,
            logger: self.logger
        )
    }

    private static let shutDownError = RedisError(
        code: .poolClosed,
        message: "the Redis Cluster client is shut down; create a new one (and keep its run() running) to send commands"
    )

    /// The pool of a node, made when a redirection names a node not seen yet.
    private func pool(for address: ClusterNodeAddress) throws -> RedisConnectionPool {
        let (pool, created) = try self.state.withLock { state throws -> (RedisConnectionPool, Bool) in
            if state.isShutDown { throw Self.shutDownError }
            if let pool = state.pools[address] { return (pool, false) }
            let pool = self.makePool(address)
            state.pools[address] = pool
            state.updateSlotPools(for: address)
            state.notifyNodeObservers()
            return (pool, true)
        }
        if created { self.eventSink.yield(.run(pool)) }
        return pool
    }

    /// The pool of the primary serving `slot` (any primary for `nil`), reading the topology first if no node is known.
    private func pool(forSlot slot: Int?) async throws -> RedisConnectionPool {
        if let slot, slot >= 0, slot < ClusterHashSlot.count {
            let pool = try self.state.withLock { state throws -> RedisConnectionPool? in
                if state.isShutDown { throw Self.shutDownError }
                return state.slotPools[slot]
            }
            if let pool { return pool }
        }
        for attempt in 0..<2 {
            let found = try self.state.withLock { state throws -> (address: ClusterNodeAddress, pool: RedisConnectionPool?)? in
                if state.isShutDown { throw Self.shutDownError }
                guard let address = slot.map({ state.map.primary(forSlot: $0) }) ?? state.pools.keys.randomElement() else {
                    return nil
                }
                return (address, state.pools[address])
            }
            if let found {
                return try found.pool ?? self.pool(for: found.address)
            }
            if attempt == 0 { try await self.refreshTopology() }
        }
        throw RedisError(
            code: .serverError,
            message: "no Redis Cluster node serves slot \(slot.map(String.init) ?? "any"); the cluster is missing slots "
                + "(CLUSTER INFO reports cluster_state:fail): assign them, or wait for a failover",
            serverCode: "CLUSTERDOWN"
        )
    }

    private func movedSlot(_ redirect: ClusterRedirect) {
        self.state.withLock { state in
            state.moved += 1
            guard !state.isShutDown else { return }
            state.map.move(slot: redirect.slot, to: redirect.address)
            if (0..<ClusterHashSlot.count).contains(redirect.slot) { state.slotPools[redirect.slot] = state.pools[redirect.address] }
        }
    }

    // MARK: commands

    /// Runs a command on the node serving its keys, following redirections and retrying while the cluster heals;
    /// multi-key commands over several slots are split and merged (see the type's description).
    public func execute(_ command: RedisCommand) async throws -> RESPValue {
        switch try ClusterCommandRoute(command) {
        case .slot(let slot): return try await self.executeRouted(command, slot: slot)
        case .anyPrimary: return try await self.executeRouted(command, slot: nil)
        case .allPrimaries: return try await self.executeOnEveryPrimary(command)
        case .split(let multi): return try await self.executeSplit(multi)
        }
    }

    private enum Recovery {
        case redirect(ClusterRedirect)
        case retry(refresh: Bool)
        case fail
    }

    private static func recovery(for error: RedisError, command: RedisCommand) -> Recovery {
        switch error.code {
        case .serverError:
            switch error.serverCode {
            case "MOVED", "ASK":
                return error.serverText.flatMap { ClusterRedirect(errorText: $0) }.map { .redirect($0) } ?? .fail
            case "TRYAGAIN", "LOADING": return .retry(refresh: false)
            case "CLUSTERDOWN", "MASTERDOWN": return .retry(refresh: true)
            default: return .fail
            }
        case .connectFailed, .poolClosed:
            return .retry(refresh: true)  // never sent
        case .connectionClosed:
            return command.isIdempotent ? .retry(refresh: true) : .fail
        default:
            return .fail
        }
    }

    private func executeRouted(_ command: RedisCommand, slot: Int?) async throws -> RESPValue {
        let deadline = ContinuousClock.now + self.configuration.retryTimeout.clampedForSleeping
        var redirects = 0
        var retries = 0
        var askTarget: ClusterNodeAddress?
        var fromReplica = slot != nil && self.isReplicaRead(command)
        while true {
            do {
                if fromReplica, askTarget == nil, let slot, let replica = self.replicaPool(forSlot: slot) {
                    do {
                        return try await replica.execute(command)
                    } catch let error as RedisError where Self.replicaUnavailable(error) {
                        fromReplica = false  // this read goes to the primary
                        continue
                    }
                }
                if let target = askTarget {
                    askTarget = nil
                    let replies = try await self.pool(for: target).pipeline([Self.asking, command])
                    guard replies.count == 2 else { throw RedisError.connectionClosed("pipeline replies missing") }
                    return try replies[1].get()
                }
                return try await self.pool(forSlot: slot).execute(command)
            } catch let error as RedisError {
                switch Self.recovery(for: error, command: command) {
                case .fail:
                    throw error
                case .redirect(let redirect):
                    redirects += 1
                    guard redirects <= self.configuration.maxRedirects else {
                        throw RedisError(
                            code: .serverError,
                            message: "a command was redirected \(redirects) times (last: \(error.serverText ?? "?")); the cluster "
                                + "is resharding too fast or its nodes disagree; retry later or raise maxRedirects",
                            serverCode: error.serverCode,
                            underlying: error
                        )
                    }
                    if redirect.kind == .moved {
                        self.movedSlot(redirect)
                        self.startRefresh()
                    } else {
                        self.state.withLock { $0.asked += 1 }
                        askTarget = redirect.address
                    }
                case .retry(let refresh):
                    if self.state.withLock({ $0.isShutDown }) { throw Self.shutDownError }
                    retries += 1
                    let delay = Self.backoff(retries)
                    guard ContinuousClock.now + delay < deadline else { throw error }
                    self.logger.debug("retrying cluster command", metadata: ["attempt": "\(retries)", "error": "\(error)"])
                    if refresh { self.startRefresh() }
                    do { try await Task.sleep(for: delay) } catch { throw RedisError.cancelled }
                }
            }
        }
    }

    private static let asking = RedisCommand(["ASKING"], isIdempotent: true)

    // MARK: replica reads

    /// The commands ``RedisClusterConfiguration/readFromReplicas`` sends to replicas.
    private static let replicaReadable: Set<String> = [
        "GET", "MGET", "EXISTS", "TTL", "PTTL", "STRLEN", "TYPE", "HGET", "HMGET", "HGETALL", "SMEMBERS", "SISMEMBER", "SCARD",
    ]

    /// Whether replica reads are on and `command` is one of them.
    private func isReplicaRead(_ command: RedisCommand) -> Bool {
        guard self.configuration.readFromReplicas, let name = command.nameAndFirstArgument()?.name else { return false }
        return Self.replicaReadable.contains(name)
    }

    /// A pool of a replica of the primary serving `slot`, chosen at random; `nil` when it has none.
    private func replicaPool(forSlot slot: Int) -> RedisConnectionPool? {
        self.state.withLock { state in
            guard !state.isShutDown, let replicas = state.map.shard(forSlot: slot)?.replicas else { return nil }
            return replicas.compactMap { state.replicaPools[$0] }.randomElement()
        }
    }

    /// Errors after which a replica read is sent to the primary instead: the replica is unreachable, slow, loading
    /// or cut off from its primary.
    private static func replicaUnavailable(_ error: RedisError) -> Bool {
        switch error.code {
        case .connectFailed, .connectionClosed, .poolClosed, .poolTimeout, .timeout: return true
        case .serverError: return ["LOADING", "MASTERDOWN", "CLUSTERDOWN", "TRYAGAIN"].contains(error.serverCode ?? "")
        default: return false
        }
    }

    /// How many replica pools run; for tests.
    package var replicaPoolCount: Int { self.state.withLock { $0.replicaPools.count } }

    /// 10 ms, doubling up to 200 ms, with jitter.
    private static func backoff(_ attempt: Int) -> Duration {
        let base = min(Duration.milliseconds(10) * (1 << min(attempt - 1, 5)), .milliseconds(200))
        return base * Double.random(in: 0.5...1.0)
    }

    private func executeOnEveryPrimary(_ command: RedisCommand) async throws -> RESPValue {
        if self.slotMap.shards.isEmpty { try await self.refreshTopology() }
        let primaries = self.slotMap.primaries
        return try await withThrowingTaskGroup(of: RESPValue.self) { group in
            for address in primaries {
                let pool = try self.pool(for: address)
                group.addTask { try await pool.execute(command) }
            }
            var first: RESPValue?
            for try await reply in group where first == nil { first = reply }
            return first ?? .null
        }
    }

    private func executeSplit(_ multi: ClusterMultiKeyCommand) async throws -> RESPValue {
        let parts = multi.perSlot()
        let results = try await self.pipeline(parts.map(\.command))
        var replies: [(reply: RESPValue, positions: [Int])] = []
        replies.reserveCapacity(parts.count)
        for (part, result) in zip(parts, results) { replies.append((try result.get(), part.positions)) }
        return try multi.merge(replies)
    }

    /// Runs the commands and returns every reply in order. Commands for one node go in one pipeline (one round trip),
    /// every node at once; a command that meets a redirection or a healing cluster is retried on its own, as
    /// ``execute(_:)`` does. When a command cannot be routed to one slot (a multi-key command across slots, a keyless
    /// one), the whole batch runs one command at a time, in order.
    public func pipeline(
        _ commands: [RedisCommand],
        timeout: Duration? = nil
    ) async throws -> [Result<RESPValue, RedisError>] {
        var slots: [Int] = []
        slots.reserveCapacity(commands.count)
        for command in commands {
            guard case .slot(let slot) = try ClusterCommandRoute(command) else {
                return try await self.sequentially(commands)
            }
            slots.append(slot)
        }
        if self.slotMap.shards.isEmpty { try await self.refreshTopology() }
        // Group by node under one look at the map: a replica of each shard when every command may read from one.
        let replicaReads = self.configuration.readFromReplicas && commands.allSatisfy { self.isReplicaRead($0) }
        let pick = Int.random(in: 0..<1024)
        let groups = self.state.withLock { state -> [ClusterNodeAddress: (replica: RedisConnectionPool?, indices: [Int])] in
            var groups: [ClusterNodeAddress: (replica: RedisConnectionPool?, indices: [Int])] = [:]
            for (index, slot) in slots.enumerated() {
                guard let shard = state.map.shard(forSlot: slot) else { continue }
                let replicas = replicaReads ? shard.replicas.filter { state.replicaPools[$0] != nil } : []
                if !replicas.isEmpty {
                    let replica = replicas[pick % replicas.count]
                    groups[replica, default: (state.replicaPools[replica], [])].indices.append(index)
                } else {
                    groups[shard.primary, default: (nil, [])].indices.append(index)
                }
            }
            return groups
        }
        var results = [Result<RESPValue, RedisError>?](repeating: nil, count: commands.count)
        try await withThrowingTaskGroup(of: [(Int, Result<RESPValue, RedisError>?)].self) { group in
            for (address, (replica, indices)) in groups {
                let pool = try replica ?? self.pool(for: address)
                let isReplica = replica != nil
                group.addTask {
                    do {
                        let replies = try await pool.pipeline(indices.map { commands[$0] }, timeout: timeout)
                        return zip(indices, replies).map { index, reply in
                            // A redirected or refused command did not run: leave it for the retry below.
                            if case .failure(let error) = reply, case .fail = Self.recovery(for: error, command: commands[index]) {
                                return (index, reply)
                            }
                            if case .failure = reply { return (index, nil) }
                            return (index, reply)
                        }
                    } catch let error as RedisError {
                        return indices.map { index in
                            // A replica that failed: the retry below reads from another, or the primary.
                            if isReplica, Self.replicaUnavailable(error) { return (index, nil) }
                            if case .fail = Self.recovery(for: error, command: commands[index]) { return (index, .failure(error)) }
                            return (index, nil)
                        }
                    }
                }
            }
            for try await part in group {
                for (index, result) in part { results[index] = result }
            }
        }
        // Slots without a known owner, and commands to retry, one at a time in their order.
        for index in results.indices where results[index] == nil {
            do {
                results[index] = .success(try await self.executeRouted(commands[index], slot: slots[index]))
            } catch let error as RedisError {
                results[index] = .failure(error)
            }
        }
        return results.map { $0! }
    }

    private func sequentially(_ commands: [RedisCommand]) async throws -> [Result<RESPValue, RedisError>] {
        var results: [Result<RESPValue, RedisError>] = []
        results.reserveCapacity(commands.count)
        for command in commands {
            do {
                results.append(.success(try await self.execute(command)))
            } catch let error as RedisError where error.code == .serverError {
                results.append(.failure(error))
            }
        }
        return results
    }

    // MARK: every primary

    /// Iterates the keys of every primary with `SCAN` (one primary after the other), calling `body` with each
    /// non-empty batch. Keys moved between nodes during the scan may be missed or seen twice, as with `SCAN` itself.
    public func scan(
        match pattern: String? = nil,
        count: Int? = nil,
        _ body: ([ByteBuffer]) async throws -> Void
    ) async throws {
        if self.slotMap.shards.isEmpty { try await self.refreshTopology() }
        for address in self.slotMap.primaries {
            try await self.pool(for: address).scan(match: pattern, count: count, body)
        }
    }

    /// The pools of the current primaries, reading the topology first if none is known: for commands that each node
    /// must run (`INFO`, `DBSIZE`, …).
    public func primaryPools() async throws -> [RedisConnectionPool] {
        if self.slotMap.shards.isEmpty { try await self.refreshTopology() }
        return try self.slotMap.primaries.map { try self.pool(for: $0) }
    }
}
