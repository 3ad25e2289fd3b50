import ArgumentParser
import CacheLayer
import CommonSupport
import Foundation
import Logging
import RedisClient
import RedisTestSupport

/// `cachelayer cluster-demo`: a Redis cache on a local Redis Cluster of its own, measured through the three events a
/// cluster client must survive: a slot that moved (the cost of one `MOVED`), resharding under load, and a failover.
struct ClusterDemoCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cluster-demo",
        abstract: "Reshard and fail over a local Redis Cluster under load, and measure what the cache's callers see.",
        discussion: """
            Starts 3 primaries and 3 replicas (redis-server --cluster-enabled yes, node timeout 1 s) on free loopback \
            ports, then: (1) the latency of the first get after its slot moved (one MOVED) against a plain get; \
            (2) a get/set workload while slots move (CLUSTER SETSLOT, MIGRATE): failed operations and lost writes; \
            (3) the same workload while a primary is SIGKILLed and its replica promoted: the error window and the \
            longest call. The cluster is killed at the end.
            """
    )

    @Option(help: "Concurrent client tasks.")
    var concurrency: Int = 8

    @Option(help: "Slots moved, one at a time, for the MOVED measurement and during the resharding phase.")
    var slots: Int = 10

    @Option(name: .customLong("timeout-ms"), help: "The cache's read/write timeout, which also bounds retries while the cluster heals.")
    var timeoutMilliseconds: Int = 1000

    func validate() throws {
        guard (1...256).contains(concurrency) else { throw ValidationError("--concurrency must be between 1 and 256.") }
        guard (1...200).contains(slots) else { throw ValidationError("--slots must be between 1 and 200.") }
        guard timeoutMilliseconds > 0 else { throw ValidationError("--timeout-ms must be positive.") }
    }

    func run() async throws {
        let cluster = try await RedisCluster.start(.init(replicasPerPrimary: 1))
        do {
            try await self.demo(cluster)
            await cluster.stop()
        } catch {
            await cluster.stop()
            throw error
        }
    }

    private func demo(_ cluster: RedisCluster) async throws {
        print("cluster of \(cluster.nodes.count) nodes at \(cluster.seeds.joined(separator: ","))")
        var configuration = CacheConfiguration()
        configuration.backend = .redis
        configuration.redisCluster = true
        configuration.redisAddress = cluster.seeds[0]
        configuration.name = "cluster-demo"
        configuration.namespace = "demo"
        let timeout = Duration.milliseconds(timeoutMilliseconds)
        configuration.readTimeout = timeout
        configuration.writeTimeout = timeout
        configuration.connectTimeout = timeout
        configuration.maxRetries = 1
        configuration.poolSize = min(concurrency, 64)
        configuration.maxIdleConnections = configuration.poolSize
        var logger = Logger(label: "cachelayer.cluster-demo")
        logger.logLevel = .warning
        let cache = try await RedisCache.connect(configuration: configuration, logger: logger)

        // 1. The cost of one MOVED: a key whose slot moved, read once, against plain reads of it.
        var plain: [Duration] = []
        var firstAfterMove: [Duration] = []
        for index in 0..<slots {
            let key = "moved:\(index)"
            try await cache.set(key, to: index, ttl: .seconds(600))
            for _ in 0..<20 {
                let start = ContinuousClock.now
                _ = try await cache.get(key, as: Int.self)
                plain.append(ContinuousClock.now - start)
            }
            let slot = ClusterHashSlot.slot(of: "demo:\(key)")
            let owner = try await cluster.primary(owningSlot: slot)
            guard let target = try await cluster.runningPrimaries().first(where: { $0.port != owner.port }) else { continue }
            try await cluster.migrateSlot(slot, to: target)
            let start = ContinuousClock.now
            _ = try await cache.get(key, as: Int.self)
            firstAfterMove.append(ContinuousClock.now - start)
        }
        print("\n1. one MOVED (\(slots) slots moved, one read each)")
        print("   plain get: p50 \(Self.ms(Self.percentile(plain, 0.5))), p99 \(Self.ms(Self.percentile(plain, 0.99)))")
        print("   first get after its slot moved: p50 \(Self.ms(Self.percentile(firstAfterMove, 0.5))), max \(Self.ms(firstAfterMove.max() ?? .zero))")

        // 2. Resharding under load.
        let keys = (0..<200).map { "load:\($0)" }
        for key in keys { try await cache.set(key, to: 0, ttl: .seconds(600)) }
        let busySlots = Array(Set(keys.map { ClusterHashSlot.slot(of: "demo:\($0)") }).sorted().prefix(slots))
        let resharding = try await self.workload(cache: cache, keys: keys) {
            for slot in busySlots {
                let owner = try await cluster.primary(owningSlot: slot)
                guard let target = try await cluster.runningPrimaries().first(where: { $0.port != owner.port }) else { continue }
                try await cluster.migrateSlot(slot, to: target, batchSize: 1, pause: .milliseconds(20))
            }
        }
        let stored = try await cache.getMany(keys, as: Int.self)
        let lost = resharding.written.filter { stored[$0.key] != $0.value }.count
        print("\n2. resharding under load (\(busySlots.count) slots moved while \(concurrency) clients read and write)")
        print("   \(resharding.operations) operations, \(resharding.errors.count) failed, \(lost) writes lost, longest call \(Self.ms(resharding.longest))")

        // 3. Failover: SIGKILL the primary of the first key; its replica takes over.
        let victim = try await cluster.primary(owningSlot: ClusterHashSlot.slot(of: "demo:\(keys[0])"))
        let killedAt = Locked<ContinuousClock.Instant?>(nil)
        let failover = try await self.workload(cache: cache, keys: keys) {
            try await Task.sleep(for: .milliseconds(300))
            killedAt.withLock { $0 = .now }
            await victim.kill()
            try await cluster.waitUntilHealthy(timeout: .seconds(30))
            try await Task.sleep(for: .seconds(1))
        }
        let window = failover.errors.isEmpty ? Duration.zero : failover.errors.max()! - failover.errors.min()!
        let sinceKill = killedAt.withLock { $0 }.flatMap { kill in failover.errors.max().map { $0 - kill } } ?? .zero
        print("\n3. failover (primary on port \(victim.port) SIGKILLed, timeout \(Self.ms(timeout)))")
        print("   \(failover.operations) operations, \(failover.errors.count) failed within \(Self.ms(window)) (last error \(Self.ms(sinceKill)) after the kill), longest call \(Self.ms(failover.longest))")
        try await cache.close()
    }

    private struct WorkloadResult {
        var operations: Int
        var errors: [ContinuousClock.Instant]
        var longest: Duration
        var written: [String: Int]
    }

    /// Sets and gets `keys` from `concurrency` tasks while `during` runs.
    private func workload(
        cache: RedisCache,
        keys: [String],
        during: @Sendable () async throws -> Void
    ) async throws -> WorkloadResult {
        let stop = Locked(false)
        let result = Locked(WorkloadResult(operations: 0, errors: [], longest: .zero, written: [:]))
        let concurrency = self.concurrency
        try await withThrowingTaskGroup(of: Void.self) { group in
            for worker in 0..<concurrency {
                group.addTask {
                    let mine = keys.enumerated().filter { $0.offset % concurrency == worker }.map(\.element)
                    var round = 0
                    while !stop.withLock({ $0 }) {
                        round += 1
                        for key in mine {
                            for isWrite in [true, false] {
                                let start = ContinuousClock.now
                                do {
                                    if isWrite {
                                        try await cache.set(key, to: round, ttl: .seconds(600))
                                    } else {
                                        _ = try await cache.get(key, as: Int.self)
                                    }
                                    let elapsed = ContinuousClock.now - start
                                    result.withLock {
                                        $0.operations += 1
                                        $0.longest = max($0.longest, elapsed)
                                        if isWrite { $0.written[key] = round }
                                    }
                                } catch {
                                    let elapsed = ContinuousClock.now - start
                                    result.withLock {
                                        $0.operations += 1
                                        $0.errors.append(.now)
                                        $0.longest = max($0.longest, elapsed)
                                    }
                                    // A failed write may or may not have landed: it no longer counts as the last write.
                                    if isWrite { result.withLock { $0.written[key] = nil } }
                                }
                            }
                        }
                    }
                }
            }
            try await during()
            stop.withLock { $0 = true }
            try await group.waitForAll()
        }
        return result.withLock { $0 }
    }

    private static func percentile(_ values: [Duration], _ p: Double) -> Duration {
        let sorted = values.sorted()
        guard !sorted.isEmpty else { return .zero }
        return sorted[min(sorted.count - 1, Int(Double(sorted.count) * p))]
    }

    private static func ms(_ duration: Duration) -> String {
        String(format: "%.2f ms", Double(duration / .microseconds(1)) / 1000)
    }
}
