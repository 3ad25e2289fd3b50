import CacheSimulation
import CommonSupport
import CacheLayer
import Testing

/// A shard in miniature: keys to slots, a free list, and the victims the policy names.
private struct Shard<Policy: EvictionPolicy> {
    var policy: Policy
    var slotOfKey: [Int: Int] = [:]
    var keyOfSlot: [Int: Int] = [:]
    var weightOfKey: [Int: Int] = [:]
    var freeSlots: [Int] = []
    var nextSlot = 0

    init(_ policy: Policy) { self.policy = policy }

    static func hash(_ key: Int) -> UInt64 { SplitMix64.mix(UInt64(bitPattern: Int64(key))) }

    /// A read, and on a miss a write of `weight` bytes. Returns whether it hit.
    @discardableResult
    mutating func access(_ key: Int, weight: Int = 1) -> Bool {
        if let slot = slotOfKey[key] {
            policy.recordHit(slot, keyHash: Self.hash(key))
            return true
        }
        policy.recordMiss(keyHash: Self.hash(key))
        insert(key, weight: weight)
        return false
    }

    mutating func insert(_ key: Int, weight: Int) {
        let slot = freeSlots.popLast() ?? { nextSlot += 1; return nextSlot - 1 }()
        slotOfKey[key] = slot
        keyOfSlot[slot] = key
        weightOfKey[key] = weight
        var victims: [Int] = []
        policy.recordInsertion(PolicyEntry(slot: slot, keyHash: Self.hash(key), weight: weight), victims: &victims)
        drop(victims)
    }

    mutating func update(_ key: Int, weight: Int) {
        guard let slot = slotOfKey[key] else { return }
        weightOfKey[key] = weight
        var victims: [Int] = []
        policy.recordUpdate(PolicyEntry(slot: slot, keyHash: Self.hash(key), weight: weight), victims: &victims)
        drop(victims)
    }

    mutating func remove(_ key: Int) {
        guard let slot = slotOfKey[key] else { return }
        policy.recordRemoval(slot)
        forget(slot)
    }

    private mutating func drop(_ victims: [Int]) {
        for victim in victims {
            precondition(keyOfSlot[victim] != nil, "the policy named a slot twice or an empty slot")
            forget(victim)
        }
    }

    private mutating func forget(_ slot: Int) {
        let key = keyOfSlot.removeValue(forKey: slot)!
        slotOfKey.removeValue(forKey: key)
        weightOfKey.removeValue(forKey: key)
        freeSlots.append(slot)
    }

    func contains(_ key: Int) -> Bool { slotOfKey[key] != nil }

    var storedWeight: Int { weightOfKey.values.reduce(0, +) }
}

private func staticTinyLFU(_ capacity: Int) -> WTinyLFUPolicy {
    var tuning = WTinyLFUPolicy.Tuning()
    tuning.adaptive = false
    return WTinyLFUPolicy(capacity: capacity, tuning: tuning)
}

@Suite("WTinyLFUPolicy")
struct WTinyLFUPolicyTests {
    @Test func frequentKeyIsAdmittedOverOneHitWonders() {
        // The hot key comes back every 30 requests to a 20-entry cache: recency alone always loses it.
        var tinyLFU = Shard(WTinyLFUPolicy(capacity: 20))
        var lru = Shard(LRUPolicy(capacity: 20))
        var tinyLFUHits = 0
        var lruHits = 0
        var next = 1
        for round in 0..<200 {
            for _ in 0..<29 {
                tinyLFU.access(next)
                lru.access(next)
                next += 1
            }
            if tinyLFU.access(0) && round > 0 { tinyLFUHits += 1 }
            if lru.access(0) && round > 0 { lruHits += 1 }
        }
        #expect(lruHits == 0)
        #expect(tinyLFUHits >= 190)
    }

    @Test func oneHitWonderLosesTheDuelAgainstAPopularVictim() {
        // The admission decision alone: a static window, and aging too slow to matter in this short run.
        var tuning = WTinyLFUPolicy.Tuning()
        tuning.adaptive = false
        tuning.agingSamplesPerEntry = 100
        var shard = Shard(WTinyLFUPolicy(capacity: 10, tuning: tuning))
        // Ten keys, each read five times: all in the main space, all with frequency 5.
        for _ in 0..<5 {
            for key in 0..<10 { shard.access(key) }
        }
        #expect((0..<10).allSatisfy { shard.contains($0) })
        // A burst of new keys passes through the one-entry window and loses every duel.
        for key in 100..<200 { shard.access(key) }
        let survivors = (0..<10).filter { shard.contains($0) }.count
        #expect(survivors >= 9)
        #expect(shard.contains(199), "the newest key waits in the window")
        #expect(!shard.contains(150))
    }

    @Test func rejectedCandidateThatReturnsIsAdmittedToProtected() {
        var tuning = WTinyLFUPolicy.Tuning()
        tuning.adaptive = false
        tuning.agingSamplesPerEntry = 100
        var shard = Shard(WTinyLFUPolicy(capacity: 100, tuning: tuning))
        // 99 popular keys fill the main space; the window holds one entry.
        for _ in 0..<5 {
            for key in 0..<99 { shard.access(key) }
        }
        shard.access(1000)
        shard.access(1001)  // Pushes 1000 out of the window: it loses its duel and is remembered.
        #expect(!shard.contains(1000))
        shard.access(1000)  // Back while remembered: admitted past the window, into protected.
        for key in 2000..<2010 { shard.access(key) }  // New keys churn the window and lose their duels.
        #expect(shard.contains(1000))
        #expect(!shard.contains(2005))
    }

    @Test func withoutTheGhostAReturningCandidateLosesAgain() {
        var tuning = WTinyLFUPolicy.Tuning()
        tuning.adaptive = false
        tuning.agingSamplesPerEntry = 100
        tuning.ghostShare = 0
        var shard = Shard(WTinyLFUPolicy(capacity: 100, tuning: tuning))
        for _ in 0..<5 {
            for key in 0..<99 { shard.access(key) }
        }
        shard.access(1000)
        shard.access(1001)
        shard.access(1000)
        for key in 2000..<2010 { shard.access(key) }
        #expect(!shard.contains(1000))
    }

    @Test func scanDoesNotFlushPopularKeys() {
        var tinyLFU = Shard(WTinyLFUPolicy(capacity: 100))
        var lru = Shard(LRUPolicy(capacity: 100))
        for _ in 0..<5 {
            for key in 0..<90 {
                tinyLFU.access(key)
                lru.access(key)
            }
        }
        // A scan of ten times the cache size, the scan-resistance scenario. The sketch ages (halves)
        // every 3 increments per entry, so a scan this long erodes the popular keys' counts and late scan
        // keys start to win duels: most popular keys survive, not all (73 of 90 when measured).
        for key in 1000..<2000 {
            tinyLFU.access(key)
            lru.access(key)
        }
        #expect((0..<90).filter { tinyLFU.contains($0) }.count >= 65)
        #expect((0..<90).filter { lru.contains($0) }.isEmpty)
    }

    @Test func entryLargerThanTheCacheIsRejected() {
        var shard = Shard(WTinyLFUPolicy(capacity: 100))
        shard.access(1, weight: 60)
        shard.access(2, weight: 101)
        #expect(shard.contains(1))
        #expect(!shard.contains(2))
        #expect(shard.policy.weightedSize == 60)
    }

    @Test(arguments: [true, false])
    func adaptiveWindowGrowsOnRecencyWorkload(simulated: Bool) {
        // Every key is requested three times, 50 new keys apart, then never again: only recency helps, and
        // a 1% window (10 entries) is too small to hold a key until its next request. The simulations (or
        // the climber) must grow the window towards the 100+ entries that catch every reuse.
        var tuning = WTinyLFUPolicy.Tuning()
        tuning.windowSimulation = simulated
        var shard = Shard(WTinyLFUPolicy(capacity: 1000, tuning: tuning))
        #expect(shard.policy.windowMaximum == 10)
        var hitsAtStart = 0
        var hitsAtEnd = 0
        for index in 0..<60_000 {
            for key in [index, index - 50, index - 100] where key >= 0 {
                let hit = shard.access(key)
                if hit && index < 5000 { hitsAtStart += 1 }
                if hit && index >= 55_000 { hitsAtEnd += 1 }
            }
        }
        #expect(shard.policy.windowMaximum > 100)
        #expect(hitsAtEnd > hitsAtStart)
    }
}

@Suite("WTinyLFU window simulations")
struct WindowSimulationTests {
    /// Zipf-distributed keys (s = 1) over `keys` keys, from a fixed seed.
    private func zipfKeys(count: Int, keys: Int, seed: UInt64) -> [Int] {
        var generator = SplitMix64(seed: seed)
        let sampler = ZipfSampler(count: keys, exponent: 1.0)
        return (0..<count).map { _ in sampler.next(using: &generator) }
    }

    /// Simulations for a 1,000-entry cache, sampling every key, starting at the 1% window, the hill climber off.
    private func fullySampled(
        _ configurations: [WindowSimulations.Configuration], margin: Double,
        halvesAgree: Bool = WTinyLFUPolicy.Tuning().simulationHalvesAgree
    ) -> WindowSimulations {
        var tuning = WTinyLFUPolicy.Tuning()
        tuning.adaptive = false
        tuning.simulationHalvesAgree = halvesAgree
        return WindowSimulations(
            capacity: 1000,
            entries: 1000,
            configurations: configurations,
            initialShare: 0.01,
            targetEntries: 2048,
            periodPerEntry: 1,
            decay: 0.8,
            margin: margin,
            warmupPeriods: 1,
            tuning: tuning
        )
    }

    /// A pure recency workload: each key is reused 50 and 100 keys later. Returns how many decisions it took.
    @discardableResult
    private func recordRecencyWorkload(_ simulations: inout WindowSimulations) -> Int {
        var decisions = 0
        for index in 0..<30_000 {
            for key in [index, index - 50, index - 100] where key >= 0 {
                if simulations.record(keyHash: SplitMix64.mix(UInt64(key)), weight: 1) { decisions += 1 }
            }
        }
        return decisions
    }

    @Test func frequencySkewedWorkloadKeepsTheWindowSmall() {
        // Popular keys recur at random distances and most other keys are seen once: frequency wins, and
        // the best window is the smallest.
        var shard = Shard(WTinyLFUPolicy(capacity: 1000))
        for key in zipfKeys(count: 200_000, keys: 100_000, seed: 7) { shard.access(key) }
        #expect(shard.policy.windowMaximum <= 50, "window \(shard.policy.windowMaximum) of 1000")
    }

    @Test func simulationsPickTheShareThatHitsMost() {
        // The simulations alone, at full scale (a small cache samples every key): on a pure recency
        // workload (each key reused 50 and 100 keys later) only the windows of 15% and more catch reuses.
        var simulations = fullySampled([0.01, 0.05, 0.15, 0.6].map { .init(share: $0, ghostAdmits: true) }, margin: 0.02)
        #expect(simulations.configuration.share == 0.01)
        let decisions = recordRecencyWorkload(&simulations)
        #expect(decisions > 10)
        #expect(simulations.configuration.share >= 0.15)
    }

    @Test func theStartIsCaffeinesConfigurationAndTheFirstChoiceNeedsNoMargin() {
        // The same recency workload as above, where only the large window catches reuses. The margin is out of
        // reach: only the first choice, which replaces a configuration the simulations did not choose, can move.
        var simulations = fullySampled(
            [.init(share: 0.01, ghostAdmits: true), .init(share: 0.6, ghostAdmits: true), .init(share: 0.01, ghostAdmits: false)],
            margin: 100
        )
        #expect(simulations.configuration == .init(share: 0.01, ghostAdmits: false), "Caffeine's: no ghost rule")
        recordRecencyWorkload(&simulations)
        #expect(simulations.configuration.share == 0.6)
    }

    @Test(arguments: [true, false]) func aLeadInOneHalfOfTheSampleDoesNotSwitch(halvesAgree: Bool) {
        // Keys whose simulated hash is even follow the recency workload above, where only the large window
        // catches reuses; the others are a small hot set every window holds. The large window leads in one
        // half of the sample only: it does not replace the first choice unless the whole sample decides.
        var simulations = fullySampled(
            [.init(share: 0.01, ghostAdmits: true), .init(share: 0.6, ghostAdmits: true)], margin: 0.02, halvesAgree: halvesAgree
        )
        var even: [UInt64] = [], odd: [UInt64] = []
        var key: UInt64 = 0
        while even.count < 20_000 || odd.count < 20 {
            let hash = SplitMix64.mix(key)
            if SplitMix64.mix(hash) & 1 == 0 { even.append(hash) } else if odd.count < 20 { odd.append(hash) }
            key += 1
        }
        for index in 0..<5000 { _ = simulations.record(keyHash: odd[index % odd.count], weight: 1) }
        #expect(simulations.configuration.share == 0.01, "a tie keeps the start")
        for index in 0..<even.count {
            for reused in [index, index - 50, index - 100] where reused >= 0 {
                _ = simulations.record(keyHash: even[reused], weight: 1)
            }
            for hot in 0..<3 { _ = simulations.record(keyHash: odd[(3 * index + hot) % odd.count], weight: 1) }
        }
        #expect(simulations.configuration.share == (halvesAgree ? 0.01 : 0.6))
    }

    @Test func sampledSimulationsStayWithinTheirScaledCapacity() {
        // A cache of a million entries samples about 1/500 of the keys for simulations of ~2,000 entries.
        var tuning = WTinyLFUPolicy.Tuning()
        tuning.adaptive = false
        var simulations = WindowSimulations(
            capacity: 1_000_000,
            entries: 1_000_000,
            configurations: [.init(share: 0.01, ghostAdmits: true)],
            initialShare: 0.01,
            targetEntries: 2000,
            periodPerEntry: 1,
            decay: 0.8,
            margin: 0.02,
            warmupPeriods: 0,
            tuning: tuning
        )
        var decisions = 0
        for key in 0..<2_000_000 where simulations.record(keyHash: SplitMix64.mix(UInt64(key)), weight: 1) {
            decisions += 1
        }
        // 2M distinct keys at a 1/500 sample: about 4,000 sampled requests, two periods of 2,000.
        #expect((1...3).contains(decisions))
        #expect(simulations.simulatedWeight <= 2000)
        #expect(simulations.simulatedWeight >= 1500)
    }
}

@Suite("GhostList")
struct GhostListTests {
    @Test func forgetsTheOldestBeyondItsBudget() {
        var ghost = GhostList(maximum: 10)
        for hash: UInt64 in 1...4 { ghost.remember(hash, weight: 3) }  // 12 bytes: 1 is forgotten.
        #expect(!ghost.contains(1))
        #expect((2...4).allSatisfy { ghost.contains($0) })
        #expect(ghost.weightedSize == 9)
    }

    @Test func aRemovedRecordStopsCountingAtOnce() {
        var ghost = GhostList(maximum: 10)
        ghost.remember(1, weight: 4)
        ghost.remember(2, weight: 4)
        let removed = ghost.remove(1)
        let removedAgain = ghost.remove(1)
        #expect(removed)
        #expect(!removedAgain)
        #expect(ghost.weightedSize == 4)
        ghost.remember(3, weight: 6)  // Fits beside 2 because 1 no longer counts.
        #expect(ghost.contains(2) && ghost.contains(3))
        ghost.removeOldest()
        #expect(!ghost.contains(2))
        #expect(ghost.weightedSize == 6)
    }

    @Test func rememberingAgainReplacesTheRecord() {
        var ghost = GhostList(maximum: 10)
        ghost.remember(1, weight: 4)
        ghost.remember(2, weight: 4)
        ghost.remember(1, weight: 2)  // 1 is now the newest, with its new weight.
        #expect(ghost.weightedSize == 6)
        ghost.remember(3, weight: 5)  // 11 bytes: the oldest live record, 2, goes.
        #expect(!ghost.contains(2))
        #expect(ghost.contains(1) && ghost.contains(3))
    }

    @Test func staysSmallWhenEveryKeyComesBack() {
        // Every remembered key returns: nothing is ever trimmed, and compaction must keep the queue bounded
        // while the live records stay exact.
        var ghost = GhostList(maximum: 1000)
        for hash: UInt64 in 0...99_990 {
            ghost.remember(hash, weight: 1)
            if hash % 10 != 0 { ghost.remove(hash) }
        }
        #expect(ghost.weightedSize == 1000)
        #expect(ghost.queuedRecords <= 2 * 1000 + 16)
        #expect(ghost.contains(99_990))
        #expect(!ghost.contains(99_991))
        ghost.removeAll()
        #expect(ghost.weightedSize == 0 && !ghost.contains(99_990))
    }
}

@Suite("SlotTable")
struct SlotTableTests {
    /// The slots of `list` from oldest to newest, walked forwards, checked against the walk backwards.
    private func order(_ table: SlotTable, _ list: Int) -> [Int] {
        var forwards: [Int] = []
        var slot = table.first(list)
        while let current = slot {
            forwards.append(current)
            slot = table.after(current)
        }
        var backwards: [Int] = []
        slot = table.last(list)
        while let current = slot {
            backwards.append(current)
            slot = table.before(current)
        }
        #expect(backwards == forwards.reversed())
        return forwards
    }

    @Test func moveToBackRelinksTheHeadTheMiddleAndTheTail() {
        var table = SlotTable(listCount: 2)
        for slot in 0..<4 { table.insert(slot, hash: UInt64(slot), weight: slot + 1, into: 0) }
        table.insert(4, hash: 4, weight: 5, into: 1)
        table.moveToBack(1)  // the middle
        #expect(order(table, 0) == [0, 2, 3, 1])
        table.moveToBack(0)  // the head
        #expect(order(table, 0) == [2, 3, 1, 0])
        table.moveToBack(0)  // already the tail
        #expect(order(table, 0) == [2, 3, 1, 0])
        table.moveToBack(4)  // alone in its list
        #expect(order(table, 1) == [4])
        #expect(table.counts == [4, 1] && table.listWeights == [10, 5] && table.weightedSize == 15 && table.count == 5)
        #expect(table.list(of: 1) == 0 && table.list(of: 4) == 1)
    }
}

@Suite("ARCPolicy")
struct ARCPolicyTests {
    @Test func ghostHitInB1GrowsTheRecencyTargetAndStoresInT2() {
        var shard = Shard(ARCPolicy(capacity: 4))
        shard.access(1)
        shard.access(1)  // Seen twice: T2.
        for key in 2...4 { shard.access(key) }  // T1 = 2, 3, 4: the cache is full.
        shard.access(5)  // T1 is above its target (0): its oldest, 2, goes to the ghost B1.
        #expect(!shard.contains(2))
        #expect(shard.policy.target == 0)
        shard.access(2)  // A B1 hit: T1 deserved more room, and 2 is stored in T2.
        #expect(shard.policy.target == 1)
        #expect(shard.contains(2))
        // A run of new keys churns T1 and leaves T2 alone.
        for key in 10..<20 { shard.access(key) }
        #expect(shard.contains(1))
        #expect(shard.contains(2))
        #expect(!shard.contains(5))
        #expect(shard.policy.weightedSize == 4)
    }

    @Test func whenT1FillsTheCacheItsOldestIsDroppedWithoutAGhost() {
        var shard = Shard(ARCPolicy(capacity: 4))
        for key in 1...5 { shard.access(key) }  // |T1| = c: the paper deletes T1's oldest outright.
        shard.access(1)
        #expect(shard.policy.target == 0, "1 was not remembered, so its return is a plain miss")
    }

    @Test func keysSeenTwiceSurviveAScan() {
        var arc = Shard(ARCPolicy(capacity: 100))
        var lru = Shard(LRUPolicy(capacity: 100))
        for _ in 0..<3 {
            for key in 0..<50 {
                arc.access(key)
                lru.access(key)
            }
        }
        for key in 1000..<1200 {
            arc.access(key)
            lru.access(key)
        }
        #expect((0..<50).filter { arc.contains($0) }.count == 50)
        #expect((0..<50).filter { lru.contains($0) }.isEmpty)
    }
}

@Suite("S3FIFOPolicy")
struct S3FIFOPolicyTests {
    @Test func oneHitWondersLeaveFromTheSmallQueue() {
        var shard = Shard(S3FIFOPolicy(capacity: 10))
        // Keys 0..<9 are hit twice in the small queue: they move to main when pushed out of it.
        for _ in 0..<3 {
            for key in 0..<9 { shard.access(key) }
        }
        for key in 100..<150 { shard.access(key) }
        #expect((0..<9).allSatisfy { shard.contains($0) })
        #expect(!shard.contains(100))
        #expect(shard.contains(149))
    }

    @Test func ghostHitGoesStraightToMain() {
        var shard = Shard(S3FIFOPolicy(capacity: 10))
        for key in 1...11 { shard.access(key) }  // Key 1 leaves the small queue unhit: ghost only.
        #expect(!shard.contains(1))
        shard.access(1)  // A ghost hit: inserted into main.
        for key in 20..<28 { shard.access(key) }
        #expect(shard.contains(1), "main is untouched while the small queue churns")
        #expect(!shard.contains(3))
    }

    @Test func mainEvictsUnhitEntriesBeforeHitOnes() {
        var shard = Shard(S3FIFOPolicy(capacity: 10))
        for _ in 0..<3 {
            for key in 0..<9 { shard.access(key) }
        }
        shard.access(100)
        shard.access(101)  // Moves 0..<9 to main with their counts; 100 goes to the ghost.
        shard.access(0)
        shard.access(102)  // Evicts 101 from the small queue.
        shard.access(100)  // Ghost hit: main, count 0; evicts 102 to the ghost.
        shard.access(102)  // Ghost hit with the small queue empty: main must evict.
        // CLOCK: every hit entry is passed over (count decremented), the unhit newcomer 100 goes.
        #expect((0..<9).allSatisfy { shard.contains($0) })
        #expect(!shard.contains(100))
        #expect(shard.contains(102))
    }
}

@Suite("Eviction policies under weights")
struct WeightedEvictionTests {
    private func exercise(_ policy: some EvictionPolicy) {
        var shard = Shard(policy)
        var generator = SplitMix64(seed: 1)
        for step in 0..<20_000 {
            let key = Int(generator.next() % 500)
            let weight = 1 + Int(generator.next() % 300)
            switch generator.next() % 10 {
            case 0: shard.update(key, weight: weight)
            case 1: shard.remove(key)
            default: shard.access(key, weight: weight)
            }
            #expect(shard.policy.weightedSize <= shard.policy.capacity, "step \(step)")
            #expect(shard.policy.weightedSize == shard.storedWeight, "step \(step)")
            if shard.policy.weightedSize > shard.policy.capacity || shard.policy.weightedSize != shard.storedWeight {
                return
            }
        }
        #expect(shard.policy.weightedSize > shard.policy.capacity / 2, "the cache is used")
    }

    @Test func tinyLFUNeverExceedsItsBudget() { exercise(WTinyLFUPolicy(capacity: 10_000)) }
    @Test func staticTinyLFUNeverExceedsItsBudget() { exercise(staticTinyLFU(10_000)) }
    @Test func s3FIFONeverExceedsItsBudget() { exercise(S3FIFOPolicy(capacity: 10_000)) }
    @Test func lruNeverExceedsItsBudget() { exercise(LRUPolicy(capacity: 10_000)) }
    @Test func arcNeverExceedsItsBudget() { exercise(ARCPolicy(capacity: 10_000)) }
    @Test func expiryNeverExceedsItsBudget() { exercise(ExpiryOrderPolicy(capacity: 10_000)) }
}
