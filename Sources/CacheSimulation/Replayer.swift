import CacheLayer
import CommonSupport
/// Something a trace can be replayed through: a cache that reports whether each request hit.
package protocol ReplayTarget {
    /// Requests `key`; on a miss, stores a value of `size` bytes that lives `ttl` seconds (0: forever).
    /// `now` is the replay's virtual time in nanoseconds. Returns whether the request hit.
    mutating func access(key: UInt32, size: Int, ttl: UInt32, now: UInt64) -> Bool
}

/// Drives an ``EvictionPolicy`` exactly as a memory-cache shard does: a key-to-slot table, a free list of
/// slots, a hit/miss report on every read, an insertion on every miss, and the victims dropped from the
/// table. Expired entries count as misses and are removed (lazily, on access).
package struct PolicyReplayTarget<Policy: EvictionPolicy>: ReplayTarget {
    package private(set) var policy: Policy
    private var slotOfKey: [Int32]
    private var keyOfSlot: [UInt32] = []
    private var expiresAt: [UInt64] = []
    private var freeSlots: [Int] = []
    private var victims: [Int] = []
    private let seed: UInt64

    /// A target for keys in `0..<keyCount` over `policy`.
    package init(policy: Policy, keyCount: Int, seed: UInt64 = 0) {
        self.policy = policy
        self.seed = seed
        slotOfKey = [Int32](repeating: -1, count: keyCount)
    }

    /// Keys hashed as a shard would (any well-mixed 64-bit hash).
    @inline(__always)
    private func hash(_ key: UInt32) -> UInt64 { SplitMix64.mix(UInt64(key) ^ seed) }

    package mutating func access(key: UInt32, size: Int, ttl: UInt32, now: UInt64) -> Bool {
        let keyHash = hash(key)
        let existing = Int(slotOfKey[Int(key)])
        if existing >= 0 {
            if expiresAt[existing] > now {
                policy.recordHit(existing, keyHash: keyHash)
                return true
            }
            policy.recordRemoval(existing)
            release(existing)
        }
        policy.recordMiss(keyHash: keyHash)
        let slot: Int
        if let free = freeSlots.popLast() {
            slot = free
        } else {
            slot = keyOfSlot.count
            keyOfSlot.append(0)
            expiresAt.append(0)
        }
        keyOfSlot[slot] = key
        expiresAt[slot] = ttl == 0 ? .max : now &+ UInt64(ttl) * 1_000_000_000
        slotOfKey[Int(key)] = Int32(slot)
        victims.removeAll(keepingCapacity: true)
        policy.recordInsertion(PolicyEntry(slot: slot, keyHash: keyHash, weight: size, expiresAt: expiresAt[slot]), victims: &victims)
        for victim in victims { release(victim) }
        return false
    }

    /// Whether `key` is cached (expired or not).
    package func contains(key: UInt32) -> Bool { slotOfKey[Int(key)] >= 0 }

    private mutating func release(_ slot: Int) {
        slotOfKey[Int(keyOfSlot[slot])] = -1
        freeSlots.append(slot)
    }
}

/// The policies the replay tool compares, by their command-line names.
package enum ReplayPolicy: String, Sendable, CaseIterable {
    case lru
    case expiry
    case s3fifo
    case tinylfu
    /// W-TinyLFU with Caffeine's published defaults and no adaptation: a static 1% window, SLRU 20/80 main
    /// space, a 4-bit count-min sketch of one word (16 counters) per entry halved after 10 × size increments,
    /// and sketch-only admission. The policy a Caffeine user gets; for comparison (simulated on the policy,
    /// not a memory-cache strategy).
    case tinylfuStatic = "tinylfu-static"
    /// ARC (Megiddo and Modha), for comparison; simulated on the policy, not a memory-cache strategy.
    case arc
    case opt

    /// The policies `--policy all` replays.
    package static let all: [ReplayPolicy] = [.lru, .expiry, .arc, .s3fifo, .tinylfuStatic, .tinylfu, .opt]
    /// The memory cache's default.
    package static var `default`: ReplayPolicy {
        ReplayPolicy.allCases.first { $0.strategy == EvictionStrategy.default } ?? .lru
    }

    /// The memory-cache strategy this policy replays, or `nil` for policies that exist only in replay.
    package var strategy: EvictionStrategy? {
        switch self {
        case .lru: .lru
        case .expiry: .expiry
        case .s3fifo: .s3fifo
        case .tinylfu: .tinyLFU
        case .tinylfuStatic, .arc, .opt: nil
        }
    }
}

/// One measurement: a policy at a cache size on a trace.
package struct ReplayResult: Sendable, Equatable {
    package var policy: ReplayPolicy
    /// Entries, or bytes for a weighted trace.
    package var size: Int
    /// Requests counted (scan requests of synthetic workloads excluded).
    package var requests: Int
    package var hits: Int

    /// Hits per counted request, 0...1.
    package var hitRatio: Double { requests == 0 ? 0 : Double(hits) / Double(requests) }
}

/// Knobs of the measured policies, for tuning experiments (`cachelayer replay --tune`).
package struct ReplayTuning: Sendable {
    package var tinyLFU = WTinyLFUPolicy.Tuning()
    package var s3fifoThreshold: UInt8 = 2
    package var s3fifoCarriesFrequency = true
    package var s3fifoSmallShare = 0.1
    package var s3fifoGhostShare = 0.9
    /// Mixed into the keys' hashes, to see how much a figure depends on hash collisions.
    package var seed: UInt64 = 0

    /// The defaults of the policies.
    package init() {}

    /// Whether every knob has the value the memory cache uses, so replay can go through ``MemoryCache``.
    package var isDefault: Bool {
        tinyLFU == WTinyLFUPolicy.Tuning() && s3fifoThreshold == 2 && s3fifoCarriesFrequency
            && s3fifoSmallShare == 0.1 && s3fifoGhostShare == 0.9 && seed == 0
    }

    /// Parses `name=value` pairs separated by commas. W-TinyLFU: `window`, `aging`, `sketch`, `protected`,
    /// `ties`, `ghost`, `gp` (returning keys to protected); its simulations:
    /// `sim` (0: hill climbing), `shares`, `ghostless`, `filterless` and `fprotected` (lists separated by
    /// `:`), `simentries`, `simperiod`, `simdecay`, `simwarmup`, `margin`, `halves` (0: the lead in the whole sample); its hill climber: `step`, `decay`,
    /// `restart`, `sample`. S3-FIFO:
    /// `s3threshold`, `s3carry`, `s3small`, `s3ghost`. `seed` mixes a seed into the key hashes. Any knob
    /// away from its default replays the policy alone (``PolicyReplayTarget``) rather than `MemoryCache`.
    package init(_ text: String) throws {
        for pair in text.split(separator: ",") {
            let field = pair.split(separator: "=", maxSplits: 1).map(String.init)
            if ["shares", "ghostless", "filterless", "fprotected"].contains(field[0]) {
                // An empty list (`filterless=`) simulates none of that kind.
                let shares = field.count == 2 ? field[1].split(separator: ":").compactMap { Double($0) } : []
                switch field[0] {
                case "shares": tinyLFU.simulatedShares = shares
                case "ghostless": tinyLFU.ghostlessShares = shares
                case "fprotected": tinyLFU.filterlessProtectedShares = shares
                default: tinyLFU.filterlessShares = shares
                }
                continue
            }
            guard field.count == 2, let value = Double(field[1]) else {
                throw SyntheticWorkload.SpecificationError(description: "\(pair): expected name=number")
            }
            switch field[0] {
            case "window": tinyLFU.initialWindow = value
            case "step": tinyLFU.stepFraction = value
            case "decay": tinyLFU.stepDecay = value
            case "restart": tinyLFU.restartThreshold = value
            case "sample": tinyLFU.samplesPerEntry = value
            case "aging": tinyLFU.agingSamplesPerEntry = Int(value)
            case "protected": tinyLFU.protectedShare = value
            case "ties": tinyLFU.admitsTies = value != 0
            case "ghost": tinyLFU.ghostShare = value
            case "s3threshold": s3fifoThreshold = UInt8(value)
            case "s3carry": s3fifoCarriesFrequency = value != 0
            case "s3small": s3fifoSmallShare = value
            case "s3ghost": s3fifoGhostShare = value
            case "sketch": tinyLFU.sketchScale = Int(value)
            case "seed": seed = UInt64(value)
            case "margin": tinyLFU.simulationMargin = value
            case "halves": tinyLFU.simulationHalvesAgree = value != 0
            case "sim": tinyLFU.windowSimulation = value != 0
            case "simentries": tinyLFU.simulationEntries = Int(value)
            case "simperiod": tinyLFU.simulationPeriod = value
            case "simdecay": tinyLFU.simulationDecay = value
            case "simwarmup": tinyLFU.simulationWarmupPeriods = Int(value)
            case "gp": tinyLFU.returningToProtected = value != 0
            case "filter": tinyLFU.filters = value != 0
            default: throw SyntheticWorkload.SpecificationError(description: "unknown tuning knob \(field[0])")
            }
        }
    }
}

/// Replays traces through caches and measures hit ratios.
package enum Replayer {
    /// Replays `trace` through `policy` with `size` entries (bytes for a weighted trace). `progress` gets
    /// the number of requests done every 65,536 requests.
    package static func replay(
        _ trace: Trace,
        policy: ReplayPolicy,
        size: Int,
        tuning: ReplayTuning = ReplayTuning(),
        progress: (Int) -> Void = { _ in }
    ) -> ReplayResult {
        let counted = trace.uncountedKeys == nil ? trace.count : trace.keys.lazy.filter { trace.counts($0) }.count
        let hits: Int
        switch policy {
        case .lru, .expiry, .s3fifo, .tinylfu:
            if let strategy = policy.strategy, tuning.isDefault {
                hits = throughMemoryCache(trace, strategy: strategy, size: size, progress)
            } else {
                hits = simulate(trace, policy: policy, size: size, tuning: tuning, progress)
            }
        case .tinylfuStatic, .arc:
            hits = simulate(trace, policy: policy, size: size, tuning: tuning, progress)
        case .opt:
            hits = BeladyOPT.hits(trace: trace, capacity: size, progress: progress)
        }
        return ReplayResult(policy: policy, size: size, requests: counted, hits: hits)
    }

    private static func throughMemoryCache(
        _ trace: Trace,
        strategy: EvictionStrategy,
        size: Int,
        _ progress: (Int) -> Void
    ) -> Int {
        // Entries larger than the whole cache would make MemoryCache throw; no policy could store them.
        var trace = trace
        if let sizes = trace.sizes, sizes.contains(where: { Int($0) > size }) {
            trace.sizes = sizes.map { min($0, UInt32(clamping: size)) }
        }
        do {
            let target = try MemoryCacheReplayTarget(strategy: strategy, capacity: size, keyCount: trace.keyCount)
            return run(trace, target, progress)
        } catch {
            preconditionFailure("cannot create a MemoryCache of \(size) bytes for replay: \(error)")
        }
    }

    /// Replays through the policy alone, driven as a shard drives it, for knobs ``MemoryCache`` does not
    /// expose (tuning experiments and the static-window variant).
    private static func simulate(
        _ trace: Trace,
        policy: ReplayPolicy,
        size: Int,
        tuning: ReplayTuning,
        _ progress: (Int) -> Void
    ) -> Int {
        let keyCount = trace.keyCount
        switch policy {
        case .lru:
            return run(trace, PolicyReplayTarget(policy: LRUPolicy(capacity: size), keyCount: keyCount, seed: tuning.seed), progress)
        case .expiry:
            return run(trace, PolicyReplayTarget(policy: ExpiryOrderPolicy(capacity: size), keyCount: keyCount, seed: tuning.seed), progress)
        case .s3fifo:
            let policy = S3FIFOPolicy(
                capacity: size,
                smallShare: tuning.s3fifoSmallShare,
                moveToMainThreshold: tuning.s3fifoThreshold,
                carriesFrequency: tuning.s3fifoCarriesFrequency,
                ghostShare: tuning.s3fifoGhostShare
            )
            return run(trace, PolicyReplayTarget(policy: policy, keyCount: keyCount, seed: tuning.seed), progress)
        case .arc:
            return run(trace, PolicyReplayTarget(policy: ARCPolicy(capacity: size), keyCount: keyCount, seed: tuning.seed), progress)
        case .tinylfu, .tinylfuStatic:
            var policyTuning = tuning.tinyLFU
            if policy == .tinylfuStatic {
                policyTuning.adaptive = false
                if tuning.isDefault {
                    // Caffeine's defaults: 1% window, protected 80% of main, one sketch word per entry, counters
                    // halved after 10 × size increments, admission by the sketch alone.
                    policyTuning = WTinyLFUPolicy.Tuning()
                    policyTuning.adaptive = false
                    policyTuning.initialWindow = 0.01
                    policyTuning.protectedShare = 0.8
                    policyTuning.sketchScale = 1
                    policyTuning.agingSamplesPerEntry = 10
                    policyTuning.ghostShare = 0
                    policyTuning.admitsTies = false
                }
            }
            let policy = WTinyLFUPolicy(capacity: size, tuning: policyTuning)
            return run(trace, PolicyReplayTarget(policy: policy, keyCount: keyCount, seed: tuning.seed), progress)
        case .opt:
            return BeladyOPT.hits(trace: trace, capacity: size, progress: progress)
        }
    }

    /// Replays `trace` through any target and returns the counted hits.
    package static func run(_ trace: Trace, _ target: some ReplayTarget, _ progress: (Int) -> Void = { _ in }) -> Int {
        var target = target
        var hits = 0
        for index in 0..<trace.count {
            if index & 0xFFFF == 0 { progress(index) }
            let key = trace.keys[index]
            let size = trace.sizes.map { Int($0[index]) } ?? 1
            let ttl = trace.ttls?[index] ?? 0
            // One millisecond of virtual time per request gives TTLs in a trace a meaning.
            let now = UInt64(index) * 1_000_000
            if target.access(key: key, size: size, ttl: ttl, now: now) && trace.counts(key) { hits += 1 }
        }
        progress(trace.count)
        return hits
    }
}
