import CommonSupport
import ArgumentParser
import CacheLayer
import Foundation
import Logging
import RedisClient
import Synchronization

/// `cachelayer coherence`: how fast another instance's write reaches a near cache, and whether a stale value is ever
/// read after its invalidation arrived.
struct CoherenceCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "coherence",
        abstract: "Measure the coherence of two two-level caches (near cache + Redis) in one process.",
        discussion: """
            Two TwoLevelCache instances on separate connections share a namespace. The reader reads a few keys in a \
            loop, from its near cache; the writer writes N new values to them, one at a time. Reports the time from \
            each write's acknowledgement to the reader first seeing it (p50, p99, max), and stale reads: reads of a \
            value older than one whose invalidation the reader had already received. Halfway through, the reader's \
            tracking connection is killed (CLIENT KILL); reads after tracking is back must not return a value older \
            than the last write acknowledged before it came back (stale_reads_after_kill). With --cluster the URL names \
            a seed of a Redis Cluster, the keys spread over its primaries, and the reader's tracking connection to \
            the seed (or its subscriber connection, wherever it is) is the one killed; invalidations then arrive on \
            one connection per primary, in no common order, so stale_reads counts only reads older than a value the \
            reader had already returned.
            """
    )

    @Option(name: .customLong("redis-url"), help: "redis://[user:password@]host:port/db")
    var redisURL: String

    @Option(help: "Values the writer writes.")
    var writes: Int = 1000

    @Option(help: "Keys the values are spread over.")
    var keys: Int = 8

    @Flag(help: "--redis-url names a seed node of a Redis Cluster; the other nodes are discovered.")
    var cluster = false

    @Option(help: "How the near caches stay coherent: tracking (CLIENT TRACKING) or pubSub (the pub/sub backplane; pub-sub also works).")
    var coherence: NearCacheConfiguration.Coherence = .tracking

    @Flag(help: "Print one JSON object instead of a summary.")
    var json = false

    func validate() throws {
        guard coherence != .ttlOnly else { throw ValidationError("--coherence must be tracking or pubSub: with ttlOnly another instance's writes are not announced, so there is nothing to measure.") }
        guard writes >= 2 else { throw ValidationError("--writes must be at least 2.") }
        guard keys >= 1, keys <= 10_000 else { throw ValidationError("--keys must be between 1 and 10000.") }
    }

    func run() async throws {
        var configuration = try CacheConfiguration(redisURL: redisURL)
        configuration.redisCluster = cluster
        configuration.namespace = "coherence-\(UUID().uuidString.prefix(8))"
        configuration.poolSize = 4
        configuration.maxIdleConnections = 4
        configuration.nearCache = NearCacheConfiguration(
            maxMemorySize: 16 * 1024 * 1024, maxTTL: .seconds(300), coherence: coherence
        )
        var logger = Logger(label: "cachelayer.coherence")
        // The run kills the reader's tracking connection on purpose; its warning would only clutter the output.
        logger.logLevel = .error
        // Named apart, so that the reader's connections can be told from the writer's in CLIENT LIST.
        configuration.name = "coherence-reader"
        let reader = try await TwoLevelCache.connect(configuration: configuration, logger: logger)
        configuration.name = "coherence-writer"
        let writer = try await TwoLevelCache.connect(configuration: configuration, logger: logger)
        let report: CoherenceReport
        do {
            let admin = try RedisConnectionConfiguration(url: redisURL)
            report = try await CoherenceRun(reader: reader, writer: writer, admin: admin, cluster: cluster, writes: writes, keys: keys).run()
            try await writer.clear()
        } catch {
            try? await reader.close()
            try? await writer.close()
            throw error
        }
        try await reader.close()
        try await writer.close()
        if json {
            print(try jsonLine(report))
        } else {
            print(report.summary)
        }
    }
}

/// One measurement: the writer's write `i` goes to key `i % keys` with version `i / keys + 1`, so which version of a
/// key must be visible after any prefix of the writes is known without coordination.
struct CoherenceRun: Sendable {
    let reader: TwoLevelCache
    let writer: TwoLevelCache
    /// How to reach Redis to kill the reader's tracking connection.
    let admin: RedisConnectionConfiguration
    /// Whether `admin` is a seed of a Redis Cluster: invalidations then arrive on several connections.
    let cluster: Bool
    /// Writes in all, spread over `keys` keys.
    let writes, keys: Int

    /// The version of `key` after the first `count` writes (0: the initial value).
    func version(of key: Int, afterWrites count: Int) -> Int {
        count > key ? (count - 1 - key) / keys + 1 : 0
    }

    func keyName(_ key: Int) -> String { "k\(key)" }

    func run() async throws -> CoherenceReport {
        let clock = ContinuousClock()
        // Initial values, read once by the reader so its near cache holds them; wait for the writes' invalidations
        // to arrive so that from here on every invalidation the reader receives is one of the measured writes.
        let base = reader.receivedInvalidationKeys
        try await writer.setMany(Dictionary(uniqueKeysWithValues: (0..<keys).map { (keyName($0), 0) }), ttl: .seconds(600))
        try await waitFor(timeout: .seconds(10)) { reader.receivedInvalidationKeys >= base + UInt64(keys) }
        let measuredBase = reader.receivedInvalidationKeys
        for key in 0..<keys { _ = try await reader.get(keyName(key), as: Int.self) }

        let progress = Progress()
        let ackTimes = Locked<[ContinuousClock.Instant?]>(Array(repeating: nil, count: writes))
        let killAt = writes / 2

        async let readerResult = readLoop(clock: clock, base: measuredBase, progress: progress)
        var killError: (any Error)?
        do {
            for index in 0..<writes {
                if index == killAt {
                    try await killTrackingConnection()
                    progress.killed.store(true, ordering: .releasing)
                }
                try await writer.set(keyName(index % keys), to: index / keys + 1, ttl: .seconds(600))
                let now = clock.now
                ackTimes.withLock { $0[index] = now }
                progress.acked.store(index + 1, ordering: .releasing)
                // Give the reader time to cache the new value before the next write of the same key.
                try await Task.sleep(for: .microseconds(500))
            }
            // Let the reader see the last values.
            try? await waitFor(timeout: .seconds(5)) { readerSeesFinalValues() }
        } catch {
            killError = error
        }
        progress.done.store(true, ordering: .releasing)
        let observed = try await readerResult
        if let killError { throw killError }

        var latencies: [Double] = []
        let acks = ackTimes.withLock { $0 }
        var invisible = 0
        for index in 0..<writes {
            guard let ack = acks[index] else { continue }
            guard let seen = observed.firstSeen[index] else {
                invisible += 1
                continue
            }
            latencies.append(max(0, Double((seen - ack) / .nanoseconds(1)) / 1_000_000))
        }
        latencies.sort()
        func percentile(_ p: Double) -> Double {
            latencies.isEmpty ? 0 : latencies[min(latencies.count - 1, Int((Double(latencies.count) * p / 100).rounded(.up)) - 1)]
        }
        return CoherenceReport(
            writes: writes, reads: observed.reads, staleReads: observed.staleReads, staleReadsAfterKill: observed.staleReadsAfterKill,
            neverSeen: invisible, p50Ms: percentile(50), p99Ms: percentile(99), maxMs: latencies.last ?? 0,
            trackingSetUps: reader.nearCacheStatistics.trackingSetUps, nearHits: reader.nearCacheStatistics.nearHits
        )
    }

    private func readerSeesFinalValues() -> Bool {
        (0..<keys).allSatisfy { key in
            reader.nearValueForInspection(keyName(key), as: Int.self) == version(of: key, afterWrites: writes)
        }
    }

    /// What the writer tells the reader.
    final class Progress: Sendable {
        /// Writes acknowledged so far.
        let acked = Atomic<Int>(0)
        /// Whether the reader's tracking connection was killed.
        let killed = Atomic<Bool>(false)
        /// Whether the reader should stop.
        let done = Atomic<Bool>(false)
    }

    struct Observed: Sendable {
        var reads = 0
        var staleReads = 0
        var staleReadsAfterKill = 0
        var firstSeen: [ContinuousClock.Instant?]
    }

    /// Reads the keys round-robin until `done`; records when each write was first seen, and stale reads.
    private func readLoop(clock: ContinuousClock, base: UInt64, progress: Progress) async throws -> Observed {
        var observed = Observed(firstSeen: Array(repeating: nil, count: writes))
        var newestSeen = Array(repeating: 0, count: keys)
        // After the kill: the number of writes acknowledged when tracking was seen back, then the invalidation count.
        var ackedAtRecovery: Int?
        let setUpsBefore = reader.nearCacheStatistics.trackingSetUps
        var key = 0
        while !progress.done.load(ordering: .acquiring) {
            // Invalidations delivered before the read starts: writes 0..<delivered are announced (before the kill
            // they arrive in write order on one connection, one key each).
            let delivered = Int(reader.receivedInvalidationKeys - base)
            let wasKilled = progress.killed.load(ordering: .acquiring)
            if wasKilled, ackedAtRecovery == nil, reader.nearCacheStatistics.trackingSetUps > setUpsBefore, reader.nearCacheStatistics.isCoherent {
                ackedAtRecovery = progress.acked.load(ordering: .acquiring)
            }
            let value = try await reader.get(keyName(key), as: Int.self) ?? -1
            let now = clock.now
            observed.reads += 1
            if !cluster, !wasKilled, value < version(of: key, afterWrites: delivered) {
                observed.staleReads += 1
            }
            if let ackedAtRecovery, value < version(of: key, afterWrites: ackedAtRecovery) {
                observed.staleReadsAfterKill += 1
            }
            if value < newestSeen[key] {
                // Older than a value this reader already returned.
                observed.staleReads += 1
            }
            if value > newestSeen[key] {
                newestSeen[key] = value
                // Writes of this key up to `value` are visible now.
                var version = value
                while version >= 1 {
                    let index = (version - 1) * keys + key
                    if index < writes {
                        if observed.firstSeen[index] != nil { break }
                        observed.firstSeen[index] = now
                    }
                    version -= 1
                }
            }
            key = (key + 1) % keys
            // Yield often: a reader that spins on L1 hits would otherwise hold a thread the tracking connection needs.
            if observed.reads & 31 == 0 { await Task.yield() }
        }
        return observed
    }

    private func killTrackingConnection() async throws {
        if cluster { return try await killReaderConnectionOnCluster() }
        guard let id = reader.trackingClientID else { return }
        let connection = try await RedisConnection.connect(configuration: admin)
        do {
            _ = try await connection.send("CLIENT", "KILL", "ID", id)
        } catch {
            await connection.close()
            throw error
        }
        await connection.close()
    }

    /// Kills the reader's tracking connection to the seed, or its subscriber connection on whichever primary holds
    /// it: found by client name in each primary's `CLIENT LIST` (the seed's first).
    private func killReaderConnectionOnCluster() async throws {
        let names: Set = ["cachelayer-\(reader.redis.configuration.name)-tracking", "cachelayer-\(reader.redis.configuration.name)-backplane"]
        var nodes = [admin]
        let clusterNodes = try await withConnection(admin) { try await $0.send("CLUSTER", "NODES").string ?? "" }
        for line in clusterNodes.split(separator: "\n") {
            let fields = line.split(separator: " ")
            guard fields.count > 2, fields[2].contains("master"), !fields[2].contains("myself") else { continue }
            let address = fields[1].split(separator: "@")[0]
            guard let colon = address.lastIndex(of: ":"), let port = Int(address[address.index(after: colon)...]) else { continue }
            var node = admin
            node.host = String(address[..<colon])
            node.port = port
            nodes.append(node)
        }
        for node in nodes {
            let killed = try await withConnection(node) { connection -> Bool in
                let list = try await connection.send("CLIENT", "LIST").string ?? ""
                for line in list.split(separator: "\n") {
                    let fields = line.split(separator: " ")
                    guard let name = fields.first(where: { $0.hasPrefix("name=") })?.dropFirst(5), names.contains(String(name)),
                        let id = fields.first(where: { $0.hasPrefix("id=") })?.dropFirst(3)
                    else { continue }
                    _ = try await connection.send("CLIENT", "KILL", "ID", String(id))
                    return true
                }
                return false
            }
            if killed { return }
        }
    }

    private func withConnection<T: Sendable>(_ configuration: RedisConnectionConfiguration, _ body: (RedisConnection) async throws -> T) async throws -> T {
        let connection = try await RedisConnection.connect(configuration: configuration)
        do {
            let result = try await body(connection)
            await connection.close()
            return result
        } catch {
            await connection.close()
            throw error
        }
    }

    private func waitFor(timeout: Duration, _ condition: () -> Bool) async throws {
        let deadline = ContinuousClock.now + timeout
        while !condition() {
            guard ContinuousClock.now < deadline else { throw CoherenceTimeout() }
            try await Task.sleep(for: .milliseconds(1))
        }
    }
}

struct CoherenceTimeout: Error, CustomStringConvertible {
    var description: String { "the reader did not receive the expected invalidations in time" }
}

/// The coherence measurement, as a summary or JSON.
struct CoherenceReport: Encodable {
    var writes, reads, staleReads, staleReadsAfterKill, neverSeen: Int
    /// Write-to-visible latencies.
    var p50Ms, p99Ms, maxMs: Double
    var trackingSetUps, nearHits: UInt64

    var summary: String {
        """
        \(writes) writes, \(reads) reads (\(nearHits) from the near cache), tracking set up \(trackingSetUps) times
        write to visible: p50 \(String(format: "%.3f", p50Ms)) ms, p99 \(String(format: "%.3f", p99Ms)) ms, max \(String(format: "%.3f", maxMs)) ms\(neverSeen > 0 ? " (\(neverSeen) overwritten before the reader saw them)" : "")
        stale reads: \(staleReads); after the tracking connection was killed: \(staleReadsAfterKill)
        """
    }
}
