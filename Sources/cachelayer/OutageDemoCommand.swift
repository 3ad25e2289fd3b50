import CommonSupport
import ArgumentParser
import CacheLayer
import Foundation
import Logging
import RedisTestSupport
import Synchronization

/// `cachelayer outage-demo`: a Redis outage survived by the fallback cache, with statistics before, during and
/// after, and the health events as they happen.
struct OutageDemoCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "outage-demo",
        abstract: "Kill Redis under load and watch the fallback cache keep serving, then recover.",
        discussion: """
            Starts its own redis-server child process (--spawn-redis, the default), runs a mixed get/set workload \
            through makeCache with fallback, SIGKILLs the server, keeps the workload running, restarts the server \
            on the same port, and prints the statistics of each phase and the health events. With --no-fallback the \
            same outage shows what callers see without it. With --cluster it starts a local Redis Cluster instead (3 \
            primaries, 3 replicas), SIGKILLs one primary, and phase 3 runs once its replica has taken over. With \
            --near-cache the same phases run on the two-level cache (an L1 kept coherent by client tracking) inside the \
            fallback, and the table tells L1 hits from reads that reached Redis.
            """
    )

    @Option(name: .customLong("redis-server"), help: "Path of redis-server (default: found on PATH).")
    var redisServer: String?

    @Option(help: "Port for the spawned redis-server (default: a free one).")
    var port: Int?

    @Flag(inversion: .prefixedNo, help: "Fall back to memory while Redis is down.")
    var fallback = true

    @Option(help: "What recovery does with the keys written during the outage: invalidate (remove them from Redis, the default) or write-back.")
    var recovery: String = FallbackRecovery.invalidate.rawValue

    @Flag(help: "Run on a local Redis Cluster (3 primaries, 3 replicas) and kill one primary instead of the server.")
    var cluster = false

    @Flag(name: .customLong("near-cache"), help: "Put a near cache (L1, kept coherent by Redis client tracking) in front of Redis: the two-level cache, inside the fallback unless --no-fallback.")
    var nearCache = false

    @Option(help: "Concurrent client tasks.")
    var concurrency: Int = 32

    @Option(name: .customLong("phase-seconds"), help: "Seconds of each phase: before, during and after the outage.")
    var phaseSeconds: Double = 2

    func validate() throws {
        guard FallbackRecovery(rawValue: recovery) != nil else {
            throw ValidationError("--recovery must be one of: \(FallbackRecovery.allCases.map(\.rawValue).joined(separator: ", ")).")
        }
        guard (1...1_000).contains(concurrency) else { throw ValidationError("--concurrency must be between 1 and 1000.") }
        guard phaseSeconds > 0, phaseSeconds <= 600 else { throw ValidationError("--phase-seconds must be between 0 and 600.") }
        if cluster && port != nil { throw ValidationError("--port applies to the single server; a cluster's nodes take free ports.") }
        if cluster && redisServer != nil { throw ValidationError("--redis-server applies to the single server; the cluster uses redis-server from PATH.") }
    }

    func run() async throws {
        // The same launchers the integration tests use: no persistence, loopback only.
        let target: OutageTarget
        if cluster {
            let nodes = try await RedisCluster.start(.init(primaries: 3, replicasPerPrimary: 1))
            print("Redis Cluster started: \(nodes.seeds.joined(separator: ", ")) (pids owned by this demo)")
            target = .cluster(nodes)
        } else {
            let server = try await RedisServer.start(.init(enableDebugCommand: false, executablePath: redisServer, port: port))
            print("redis-server started at \(server.url) (pid owned by this demo)")
            target = .server(server)
        }
        do {
            try await run(on: target)
        } catch {
            await target.stop()
            throw error
        }
        await target.stop()
    }

    /// Where the outage happens: the one server, or a cluster whose primary is killed.
    enum OutageTarget {
        case server(RedisServer)
        case cluster(RedisCluster)

        func stop() async {
            switch self {
            case .server(let server): await server.stop()
            case .cluster(let cluster): await cluster.stop()
            }
        }
    }

    private func run(on target: OutageTarget) async throws {
        var configuration: CacheConfiguration
        switch target {
        case .server(let server):
            configuration = try CacheConfiguration(redisURL: server.url)
        case .cluster(let cluster):
            configuration = CacheConfiguration()
            configuration.backend = .redis
            configuration.redisAddress = cluster.seeds.joined(separator: ",")
            configuration.redisCluster = true
        }
        configuration.name = "outage-demo"
        configuration.namespace = "outage-demo"
        configuration.enableFallback = fallback
        if nearCache { configuration.nearCache = NearCacheConfiguration() }
        configuration.connectTimeout = .milliseconds(300)
        configuration.readTimeout = .milliseconds(300)
        configuration.writeTimeout = .milliseconds(300)
        configuration.maxRetries = 1
        configuration.fallbackFailureThreshold = 3
        configuration.fallbackProbeInterval = .milliseconds(100)
        configuration.fallbackRecovery = FallbackRecovery(rawValue: recovery) ?? .invalidate
        configuration.poolSize = min(max(concurrency, 1), 64)
        configuration.maxIdleConnections = configuration.poolSize
        var logger = Logger(label: "cachelayer.outage-demo")
        logger.logLevel = .warning
        let cache = try await makeCache(configuration, logger: logger)
        let started = ContinuousClock.now

        let eventsTask: Task<Void, Never>?
        if let fallbackCache = cache as? FallbackCache {
            let events = fallbackCache.healthEvents()
            eventsTask = Task {
                for await event in events {
                    let at = Double((ContinuousClock.now - started) / .milliseconds(1)) / 1000
                    print(String(format: "  [%6.2f s] health event: ", at) + Self.describe(event))
                }
            }
        } else {
            eventsTask = nil
        }

        let phase = Duration.milliseconds(Int64(phaseSeconds * 1000))
        var rows: [(String, PhaseResult, CacheStats, UInt64)] = []
        // L1 hits so far (0 without a near cache): the table shows which reads L1 served and which reached Redis.
        let nearHits = { () -> UInt64 in
            ((cache as? FallbackCache)?.nearCacheStatistics ?? (cache as? TwoLevelCache)?.nearCacheStatistics)?.nearHits ?? 0
        }
        print("\nphase 1: Redis up, \(concurrency) clients\(nearCache ? ", near cache in front of Redis" : "")")
        rows.append(("before", try await runPhase(cache, for: phase), await cache.stats(), nearHits()))

        switch target {
        case .server(let server):
            print("phase 2: SIGKILL redis-server, clients keep going")
            await server.kill()
            rows.append(("outage", try await runPhase(cache, for: phase), await cache.stats(), nearHits()))
            print("phase 3: redis-server restarted on the same port (empty)")
            try await server.restart(kill: true)
        case .cluster(let cluster):
            let victim = try await cluster.primary(owningSlot: 0)
            print("phase 2: SIGKILL the primary on port \(victim.port) (a third of the slots), clients keep going")
            await victim.kill()
            rows.append(("outage", try await runPhase(cache, for: phase), await cache.stats(), nearHits()))
            let failover = ContinuousClock.now
            try await cluster.waitUntilHealthy(timeout: .seconds(30))
            print("phase 3: its replica took over (\(String(format: "%.1f", Double((ContinuousClock.now - failover) / .milliseconds(1)) / 1000)) s after phase 2 ended)")
        }
        rows.append(("after", try await runPhase(cache, for: phase), await cache.stats(), nearHits()))

        var table = nearCache
            ? TextTable("phase", "calls", "failed", "calls/s", "p99 ms", "L1 hits", "other hits", "misses", "fallbacks", "outages", "recoveries")
            : TextTable("phase", "calls", "failed", "calls/s", "p99 ms", "hits", "misses", "fallbacks", "outages", "recoveries")
        var previous = (stats: CacheStats(), nearHits: UInt64(0))
        for (name, result, stats, near) in rows {
            let hits = stats.hits - previous.stats.hits
            let l1Hits = near - previous.nearHits
            var cells = [
                name, result.calls.grouped, result.failures.grouped,
                Int(Double(result.calls) / max(phaseSeconds, 0.001)).grouped,
                String(format: "%.3f", result.latency.milliseconds(atPercentile: 99)),
            ]
            // Other hits: reads served by Redis, or by the fallback's memory while Redis was down.
            cells += nearCache ? [l1Hits.grouped, (hits - min(l1Hits, hits)).grouped] : [hits.grouped]
            cells += [
                (stats.misses - previous.stats.misses).grouped,
                (stats.fallbacks - previous.stats.fallbacks).grouped, stats.outages.grouped, stats.recoveries.grouped,
            ]
            table.rows.append(cells)
            previous = (stats, near)
        }
        print()
        print(table.render())
        if nearCache {
            print("\nL1 hits: served by the near cache. Other hits: by Redis, or during the outage by the fallback's memory copy.")
        }
        if let failure = rows.lazy.compactMap(\.1.firstFailure).first {
            print("\nfirst failure: \(failure)")
        }
        let failures = rows.reduce(0) { $0 + $1.1.failures }
        print(
            fallback
                ? "\n\(failures == 0 ? "No" : "\(failures)") call\(failures == 1 ? "" : "s") failed during the outage run."
                : "\nWithout fallback, \(failures.grouped) calls failed (each fast, with CacheError.unavailable)."
        )
        try await cache.close()
        await eventsTask?.value
    }

    struct PhaseResult: Sendable {
        var calls = 0
        var failures = 0
        var firstFailure: String?
        var latency = LatencyRecorder()

        mutating func merge(_ other: PhaseResult) {
            calls += other.calls
            failures += other.failures
            firstFailure = firstFailure ?? other.firstFailure
            latency.merge(other.latency)
        }
    }

    /// `concurrency` tasks doing 80 % gets and 20 % sets on 1,000 keys for `duration`.
    private func runPhase(_ cache: any Cache, for duration: Duration) async throws -> PhaseResult {
        let deadline = ContinuousClock.now + duration
        return try await withThrowingTaskGroup(of: PhaseResult.self) { group in
            for worker in 0..<concurrency {
                group.addTask {
                    var random = SplitMix64(seed: 7 + UInt64(worker))
                    var result = PhaseResult()
                    while ContinuousClock.now < deadline {
                        let key = "item:\(Int.random(in: 0..<1_000, using: &random))"
                        let began = ContinuousClock.now
                        do {
                            if Double.random(in: 0..<1, using: &random) < 0.8 {
                                _ = try await cache.get(key, as: String.self)
                            } else {
                                try await cache.set(key, to: "value of \(key)", ttl: .seconds(300))
                            }
                        } catch {
                            result.failures += 1
                            if result.firstFailure == nil { result.firstFailure = String(describing: error) }
                        }
                        result.latency.record(ContinuousClock.now - began)
                        result.calls += 1
                        // Keep memory-speed calls from monopolising the cooperative threads.
                        if result.calls & 15 == 0 { await Task.yield() }
                    }
                    return result
                }
            }
            var total = PhaseResult()
            for try await partial in group { total.merge(partial) }
            return total
        }
    }

    private static func describe(_ event: FallbackHealthEvent) -> String {
        switch event {
        case .backendLost(let reason): "Redis lost, serving from memory (\(reason.prefix(120))…)"
        case .backendRecovered(let keys): "Redis recovered, \(keys) key(s) written during the outage reconciled (invalidated or written back)"
        }
    }
}
