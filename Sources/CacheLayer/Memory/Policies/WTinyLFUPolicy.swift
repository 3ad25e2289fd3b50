import CommonSupport
/// Window TinyLFU with an adaptive window: Caffeine's eviction policy, sized in bytes.
///
/// New entries enter a small LRU *window*. When the window overflows, its oldest entry becomes a
/// *candidate* for the main space, a segmented LRU (probation, then protected once hit again). When the
/// cache overflows, the candidate competes with the main space's victim (the oldest probation entry): the
/// one the frequency sketch has seen more often stays. The window lets bursts of new keys (recency) prove
/// themselves; the sketch keeps one-hit wonders and scans from flushing the popular keys (frequency).
///
/// No static window size suits every workload: 1% wins on frequency-skewed traces (search, P3) and loses to
/// LRU on recency-skewed ones (OLTP). Caffeine moves the window with a hill climber; here, by default,
/// miniature simulations choose it (``WindowSimulations``): static copies of this policy with windows of
/// 1%, 10% and 30%, one without the ghost rule below, and two without the frequency filter (a segmented LRU
/// behind the window, with half or 80% of it protected, for workloads where past popularity misleads, such
/// as feeds whose newest keys are the hot ones: there Caffeine's static policy is 15 points below LRU) run on
/// a hashed sample of the keys, and the configuration of the one that hits most is applied. Until their
/// first choice the policy is Caffeine's (1% window, no ghost rule): a departure is applied once the
/// simulations show it pays. Starting with the ghost rule cost a point on a loop 10% larger than the cache,
/// where re-admitting rejected keys keeps the cache from settling on a fixed part of the loop, and the
/// damage outlasted the switch by several passes. The
/// climber compares the hit rate of one period with the previous one, so it mistakes a change of the
/// workload for the effect of its last step; the simulations compare the candidates on the same requests.
/// On the ARC traces the climber lost up to 6 points to the best static window; the simulations do not.
/// The hill climber remains available (``Tuning/windowSimulation`` = false) for comparison.
///
/// Departures from Caffeine, each measured on the ARC traces (`cachelayer replay`):
/// - a *ghost* of the hashes of recently rejected candidates (as many bytes as the cache) admits a
///   candidate that comes back while remembered straight into the protected segment, as ARC's ghost hits
///   go to its frequency list; the sketch alone undervalues keys reused at distances just beyond the
///   cache (P3 at 131,072 pages: +6 points). The simulations also try the smallest window without the
///   rule, which wins on small caches of P3. The ghost costs about 50 bytes per entry;
/// - the sketch has four words per entry (Caffeine: one) and halves its counters after 20 requests per
///   entry (Caffeine: 10): with one word, collisions cost about a point on most rows of the replay suite
///   (`cachelayer replay-suite`), and faster aging lost the loop. 32 bytes per entry;
/// - a growing window fills with new entries instead of taking the main space's entries at once: moving
///   them cost up to 2 points per large step on P3.
///
/// Hits only move a slot within linked arrays (no allocation); every structure is indexed by slot.
package struct WTinyLFUPolicy: EvictionPolicy {
    /// The knobs of the policy; the defaults are the values measured best on the ARC traces.
    package struct Tuning: Sendable, Equatable {
        /// The window's share of the capacity at start.
        package var initialWindow: Double = 0.01
        /// Whether the hill climber adapts the window; `false` gives the classic static W-TinyLFU.
        package var adaptive: Bool = true
        /// The first climbing step, and the step after a restart, as a share of the capacity.
        package var stepFraction: Double = 0.0625
        /// The factor applied to the step after each sample without a large change of hit rate.
        package var stepDecay: Double = 0.98
        /// A change of hit rate at least this large (absolute) restarts the climb with a full step.
        package var restartThreshold: Double = 0.05
        /// Requests per sample of the hit rate, per entry of capacity.
        package var samplesPerEntry: Double = 2
        /// Sketch increments between two agings, per sketch entry (``sketchScale`` per cache entry): 5 × 4
        /// means the counters halve after 20 requests per cached entry (Caffeine: 10). Measured on the replay
        /// suite: 80 kept stale counts too long (Zipf 1.2 and small sized caches lost to Caffeine's static
        /// policy); 12 lost 13 points on the loop, where counts must outlive one pass.
        package var agingSamplesPerEntry: Int = 5
        /// The protected segment's share of the main space.
        package var protectedShare: Double = 0.8
        /// Whether a candidate as frequent as the victim is admitted (favouring recency on ties).
        package var admitsTies: Bool = false
        /// Sketch entries per cache entry: more lowers collisions at the cost of memory.
        package var sketchScale: Int = 4
        /// The bytes of rejected candidates' hashes remembered, as a share of the capacity; 0 disables the
        /// ghost admission rule.
        package var ghostShare: Double = 1
        /// Whether the window share is chosen by miniature simulations (``WindowSimulations``) rather
        /// than by hill climbing; only when `adaptive`.
        package var windowSimulation: Bool = true
        /// The window shares the simulations compare.
        package var simulatedShares: [Double] = [0.01, 0.1, 0.3]
        /// Window shares simulated without the ghost admission rule.
        package var ghostlessShares: [Double] = [0.01]
        /// Window shares simulated without the frequency filter (every candidate admitted: a segmented LRU
        /// behind a window), for workloads where past frequency misleads, such as feeds whose newest keys are
        /// the hot ones. Without the filter no candidate is rejected, so the ghost admits nothing: records
        /// left from before would send keys long gone straight to protected (a tenth of a point on the feed).
        package var filterlessShares: [Double] = [0.01]
        /// The protected segment's shares of the main space simulated without the filter (each with every
        /// share of ``filterlessShares``). With every candidate admitted, probation is where one-off keys wait
        /// to leave: Caffeine's 80% protected suits large caches, and left too little probation in small ones
        /// (2 points on the recency feed at 99 entries, where half does best).
        package var filterlessProtectedShares: [Double] = [0.5, 0.8]
        /// Whether the frequency sketch decides admission (TinyLFU); `false` admits every candidate.
        package var filters: Bool = true
        /// Entries per simulation: keys are sampled so that each simulated cache holds about this many.
        package var simulationEntries: Int = 1024
        /// Sampled requests between two choices of the window, per simulated entry.
        package var simulationPeriod: Double = 1
        /// The weight of the previous periods' hits in the simulations' scores.
        package var simulationDecay: Double = 0.9
        /// How much more (relatively) the best simulation must have hit to replace the current choice. Half a
        /// percent: 2% kept a configuration 0.7 points worse at high hit ratios (Zipf 1.2), and none let the
        /// choice flap between near-equal configurations (P3 at 262,144 pages lost 1.5 points).
        package var simulationMargin = 0.005
        /// Periods the simulations fill before their first choice.
        package var simulationWarmupPeriods = 2
        /// Whether a challenger must lead by half the margin in each half of the sample (the keys whose
        /// hash is even, and the others) rather than by the margin in the whole sample. A lead one half does
        /// not show comes from the keys a simulated cache happens to hold, which a real cache switching to
        /// its configuration does not hold. Measured (`cachelayer replay`, 8 hash seeds each): P3 at 131,072
        /// pages 49.25 → 49.73 on average, through the memory cache 49.77 → 50.84 (the ghost rule alone:
        /// 50.84); the hot set (985 entries) and small sized Zipf rows unchanged within 0.05.
        package var simulationHalvesAgree = true
        /// Whether a returning key goes straight to the protected segment when admitted.
        package var returningToProtected: Bool = true

        /// The defaults.
        package init() {}
    }

    /// The lists of the slot table.
    private static let window = 0
    private static let probation = 1
    private static let protected = 2

    /// Caffeine's threshold: candidates at least this warm are admitted at random 1 time in 128 when they
    /// lose, so an attacker cannot pin a victim by flooding the sketch (hash flooding) and a hot candidate
    /// is not shut out forever by an equally hot victim.
    private static let admitHashDosThreshold = 6
    /// The most entries moved between window and main at once, to bound the work of one call.
    private static let queueTransferThreshold = 1000

    package let capacity: Int
    package var weightedSize: Int { table.weightedSize }
    package let tuning: Tuning

    private var table = SlotTable(listCount: 3)
    private var entryCount: Int { table.count }
    private var sketch: CountMinSketch
    /// Whether requests are counted in the sketch: a static policy without the filter (a simulated
    /// configuration) never asks it, and skipping the count makes that simulation cheaper.
    private let countsFrequency: Bool

    /// The window's byte budget; the hill climber moves it.
    package private(set) var windowMaximum: Int
    private var windowWeightedSize: Int { table.listWeights[Self.window] }
    private var protectedMaximum: Int
    private var protectedWeightedSize: Int { table.listWeights[Self.protected] }

    private var hitsInSample = 0
    private var missesInSample = 0
    private var previousSampleHitRate = 0.0
    private var stepSize: Double
    private var adjustment = 0
    /// The hash of the last key reported by ``recordMiss(keyHash:)``, so that the insertion that usually
    /// follows a miss (cache-aside) is not counted twice in the sketch and the sample.
    private var lastMissHash: UInt64?
    /// Deterministic, so replays are reproducible.
    private var random = SplitMix64(seed: 0x9E37_79B9_7F4A_7C15)

    /// Hashes of candidates that lost their duel, oldest first; see ``Tuning/ghostShare``.
    private var ghost: GhostList
    /// Per slot: the key came back while its hash was in the ghost.
    private var returning: [Bool] = []
    /// The miniature simulations that choose the window, once the sketch is sized; see ``Tuning/windowSimulation``.
    private var simulations: WindowSimulations?
    /// The window's byte budget the simulations chose.
    private var windowTarget: Int?
    /// Whether the ghost admission rule applies now; the simulations may turn it off.
    private var ghostAdmits = true
    /// Whether the frequency filter decides admission now; the simulations may turn it off.
    package private(set) var filterAdmits: Bool
    /// The protected segment's share of the main space now; the simulations may change it.
    private var protectedShare: Double

    package init(capacity: Int) {
        self.init(capacity: capacity, tuning: Tuning())
    }

    /// A policy with explicit knobs, for measurement.
    package init(capacity: Int, tuning: Tuning) {
        self.capacity = max(0, capacity)
        self.tuning = tuning
        sketch = CountMinSketch(samplesPerEntry: tuning.agingSamplesPerEntry)
        countsFrequency = tuning.filters || tuning.adaptive
        windowMaximum = min(self.capacity, max(1, Int(Double(self.capacity) * tuning.initialWindow)))
        protectedMaximum = Int(Double(self.capacity - windowMaximum) * tuning.protectedShare)
        // Caffeine starts by shrinking the window: most workloads favour frequency.
        stepSize = -tuning.stepFraction * Double(self.capacity)
        ghost = GhostList(maximum: Int(Double(self.capacity) * tuning.ghostShare))
        filterAdmits = tuning.filters
        protectedShare = tuning.protectedShare
        // Until the simulations first choose, the policy is Caffeine's (no ghost rule); without the filter
        // no candidate is rejected, so the ghost has nothing to admit.
        ghostAdmits = !(tuning.adaptive && tuning.windowSimulation) && tuning.filters
    }

    // MARK: EvictionPolicy

    package mutating func recordHit(_ slot: Int, keyHash: UInt64) {
        if countsFrequency { sketch.increment(keyHash) }
        hitsInSample += 1
        lastMissHash = nil
        touch(slot)
        simulate(keyHash, weight: table.weights[slot])
        climb()
    }

    package mutating func recordMiss(keyHash: UInt64) {
        if countsFrequency { sketch.increment(keyHash) }
        missesInSample += 1
        lastMissHash = keyHash
    }

    package mutating func recordInsertion(_ entry: PolicyEntry, victims: inout [Int]) {
        let slot = entry.slot, keyHash = entry.keyHash, weight = entry.weight
        if lastMissHash != keyHash {
            // A write without a preceding read miss is still a request for the key, and a miss.
            if countsFrequency { sketch.increment(keyHash) }
            missesInSample += 1
        }
        lastMissHash = nil
        guard table.prepareIfItFits(entry, capacity: capacity, victims: &victims) else { return }
        table.extend(&returning, with: false)
        returning[slot] = tuning.ghostShare > 0 && ghost.remove(keyHash)
        if returning[slot] && ghostAdmits && tuning.returningToProtected && weight <= protectedMaximum {
            table.link(slot, to: Self.protected)
            demoteFromProtected()
        } else {
            table.link(slot, to: Self.window)
        }
        evictEntries(&victims)
        // After eviction: the new entry briefly overfills the cache, which must not count as growth (that
        // would discard the sketch's counts on the first eviction).
        sizeSketch()
        simulate(keyHash, weight: weight)
        climb()
    }

    package mutating func recordUpdate(_ entry: PolicyEntry, victims: inout [Int]) {
        let slot = entry.slot, keyHash = entry.keyHash, weight = entry.weight
        guard table.list(of: slot) != nil else {
            recordInsertion(entry, victims: &victims)
            return
        }
        lastMissHash = nil
        if countsFrequency { sketch.increment(keyHash) }
        guard weight <= capacity else {
            table.remove(slot)
            victims.append(slot)
            return
        }
        table.setWeight(slot, weight)
        touch(slot)
        evictEntries(&victims)
        simulate(keyHash, weight: weight)
    }

    package mutating func recordRemoval(_ slot: Int) {
        guard table.list(of: slot) != nil else { return }
        table.remove(slot)
    }

    package mutating func removeAll() {
        table.removeAll()
        lastMissHash = nil
    }

    // MARK: Queues

    /// Sizes the sketch once the cache is half full, when the average weight tells how many entries the
    /// byte budget holds (as Caffeine, which also initialises its sketch lazily at half capacity).
    private mutating func sizeSketch() {
        if sketch.isInitialized {
            if entryCount > sketch.sizedFor / tuning.sketchScale { sketch.ensureCapacity(entryCount * 2 * tuning.sketchScale) }
        } else if weightedSize >= capacity / 2 && entryCount > 0 {
            let averageWeight = max(1, weightedSize / entryCount)
            sketch.ensureCapacity(capacity / averageWeight * tuning.sketchScale)
            if tuning.adaptive && tuning.windowSimulation {
                simulations = WindowSimulations(
                    capacity: capacity,
                    entries: capacity / averageWeight,
                    configurations: tuning.simulatedShares.map { .init(share: $0, ghostAdmits: true, protectedShare: tuning.protectedShare) }
                        + tuning.ghostlessShares.map { .init(share: $0, ghostAdmits: false, protectedShare: tuning.protectedShare) }
                        + tuning.filterlessShares.flatMap { share in
                            tuning.filterlessProtectedShares.map {
                                .init(share: share, ghostAdmits: false, filters: false, protectedShare: $0)
                            }
                        },
                    initialShare: tuning.initialWindow,
                    targetEntries: tuning.simulationEntries,
                    periodPerEntry: tuning.simulationPeriod,
                    decay: tuning.simulationDecay,
                    margin: tuning.simulationMargin,
                    warmupPeriods: tuning.simulationWarmupPeriods,
                    tuning: tuning
                )
            }
        }
    }

    /// The access-order bookkeeping of a hit or an update.
    private mutating func touch(_ slot: Int) {
        switch table.list(of: slot) {
        case Self.window, Self.protected:
            table.moveToBack(slot)
        case Self.probation:
            // A second chance earned: promote, unless the entry alone would overflow the protected segment.
            guard table.weights[slot] <= protectedMaximum else {
                table.moveToBack(slot)
                return
            }
            table.move(slot, to: Self.protected)
            demoteFromProtected()
        default:
            break
        }
    }

    private mutating func evict(_ slot: Int, into victims: inout [Int]) {
        table.remove(slot)
        victims.append(slot)
    }

    private mutating func demoteFromProtected() {
        var moved = 0
        while protectedWeightedSize > protectedMaximum, moved < Self.queueTransferThreshold,
            let demoted = table.first(Self.protected)
        {
            table.move(demoted, to: Self.probation)
            moved += 1
        }
    }

    // MARK: Eviction

    private mutating func evictEntries(_ victims: inout [Int]) {
        let candidates = evictFromWindow()
        evictFromMain(candidates: candidates, &victims)
    }

    /// Moves the window's oldest entries to the back of probation until the window fits; they are the
    /// candidates for admission. Returns how many moved.
    private mutating func evictFromWindow() -> Int {
        var candidates = 0
        while windowWeightedSize > windowMaximum, let slot = table.first(Self.window) {
            table.move(slot, to: Self.probation)
            candidates += 1
        }
        return candidates
    }

    /// Evicts until the cache fits: each candidate (newest probation entries, newest first) duels the
    /// victim (oldest probation entry) and the one with the lower estimated frequency goes. Without duels
    /// left, the oldest entries go: probation, then protected, then window. Caffeine's `evictFromMain`.
    private mutating func evictFromMain(candidates initialCandidates: Int, _ victims: inout [Int]) {
        var candidates = initialCandidates
        var victimQueue = Self.probation
        var victim = table.first(Self.probation)
        var candidate = candidates > 0 ? table.last(Self.probation) : nil
        while weightedSize > capacity {
            if candidates <= 0 { candidate = nil }
            guard let currentVictim = victim else {
                if let currentCandidate = candidate {
                    candidate = table.before(currentCandidate)
                    candidates -= 1
                    evict(currentCandidate, into: &victims)
                    continue
                }
                switch victimQueue {
                case Self.probation:
                    victimQueue = Self.protected
                case Self.protected:
                    victimQueue = Self.window
                default:
                    return
                }
                victim = table.first(victimQueue)
                continue
            }
            guard let currentCandidate = candidate else {
                victim = table.after(currentVictim)
                evict(currentVictim, into: &victims)
                continue
            }
            if currentCandidate == currentVictim {
                victim = table.after(currentVictim)
                candidate = nil
                candidates -= 1
                evict(currentCandidate, into: &victims)
                continue
            }
            candidates -= 1
            if admit(candidate: currentCandidate, victim: table.hashes[currentVictim]) {
                victim = table.after(currentVictim)
                evict(currentVictim, into: &victims)
                // Read after the eviction: the victim may have been the candidate's neighbour.
                candidate = table.before(currentCandidate)
            } else {
                candidate = table.before(currentCandidate)
                remember(currentCandidate)
                evict(currentCandidate, into: &victims)
            }
        }
    }

    private mutating func admit(candidate slot: Int, victim: UInt64) -> Bool {
        let candidate = table.hashes[slot]
        // A candidate that lost a duel and came back before the ghost forgot it is reused at a distance
        // the cache cannot hold but the ghost can: admit it, as S3-FIFO and ARC do with their ghosts. The
        // sketch alone undervalues such keys when old frequencies of the victims linger (P3 at mid sizes).
        if returning[slot] && ghostAdmits { return true }
        guard filterAdmits else { return true }
        let candidateFrequency = sketch.frequency(candidate)
        let victimFrequency = sketch.frequency(victim)
        if candidateFrequency > victimFrequency { return true }
        if tuning.admitsTies && candidateFrequency == victimFrequency { return true }
        guard candidateFrequency >= Self.admitHashDosThreshold else { return false }
        return nextRandom() & 127 == 0
    }

    // MARK: Ghost admission

    private mutating func remember(_ slot: Int) {
        guard tuning.ghostShare > 0 else { return }
        ghost.remember(table.hashes[slot], weight: table.weights[slot])
    }

    private mutating func nextRandom() -> UInt64 { random.next() }

    // MARK: Window simulations

    @inline(__always)
    private mutating func simulate(_ keyHash: UInt64, weight: Int) {
        guard simulations?.record(keyHash: keyHash, weight: weight) == true,
            let configuration = simulations?.configuration
        else { return }
        windowTarget = min(capacity, max(1, Int(Double(capacity) * configuration.share)))
        ghostAdmits = configuration.ghostAdmits
        filterAdmits = configuration.filters
        if configuration.protectedShare != protectedShare {
            protectedShare = configuration.protectedShare
            protectedMaximum = Int(Double(capacity - windowMaximum) * protectedShare)
            demoteFromProtected()
        }
    }

    // MARK: Hill climbing

    /// Caffeine's `climb()`: after each sample, step the window size in the direction that raised the hit
    /// rate (reverse when it fell), then move entries between window and main to match.
    private mutating func climb() {
        guard tuning.adaptive else { return }
        if tuning.windowSimulation {
            guard let windowTarget, windowTarget != windowMaximum else { return }
            adjustment = windowTarget - windowMaximum
        } else {
            determineAdjustment()
        }
        if adjustment > 0 {
            increaseWindow()
        } else if adjustment < 0 {
            decreaseWindow()
        }
    }

    private mutating func determineAdjustment() {
        guard sketch.isInitialized else {
            // Warm-up misses say nothing about the window size.
            hitsInSample = 0
            missesInSample = 0
            previousSampleHitRate = 0
            return
        }
        let requests = hitsInSample + missesInSample
        guard Double(requests) >= tuning.samplesPerEntry * Double(sketch.sizedFor / tuning.sketchScale) else { return }
        let hitRate = Double(hitsInSample) / Double(requests)
        let change = hitRate - previousSampleHitRate
        let amount = change >= 0 ? stepSize : -stepSize
        if abs(change) >= tuning.restartThreshold {
            stepSize = tuning.stepFraction * Double(capacity) * (amount >= 0 ? 1 : -1)
        } else {
            stepSize = tuning.stepDecay * amount
        }
        previousSampleHitRate = hitRate
        adjustment = Int(amount)
        hitsInSample = 0
        missesInSample = 0
    }

    /// Moves the window/main split towards a larger window. The window then fills with new entries as they
    /// arrive, and the main space shrinks by evictions: Caffeine instead moves the main space's oldest entries
    /// into the window at once, which cost up to 2 points per large step on P3.
    private mutating func increaseWindow() {
        let quota = min(adjustment, protectedMaximum)
        protectedMaximum -= quota
        windowMaximum += quota
        demoteFromProtected()
        adjustment = 0
    }

    private mutating func decreaseWindow() {
        guard windowMaximum > 1 else {
            adjustment = 0
            return
        }
        var quota = min(-adjustment, max(0, windowMaximum - 1))
        protectedMaximum += quota
        windowMaximum -= quota
        for _ in 0..<Self.queueTransferThreshold {
            guard let slot = table.first(Self.window), table.weights[slot] <= quota else { break }
            quota -= table.weights[slot]
            table.move(slot, to: Self.probation)
        }
        protectedMaximum -= quota
        windowMaximum += quota
        adjustment = -quota
    }
}
