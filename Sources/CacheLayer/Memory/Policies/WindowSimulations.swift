import CommonSupport
/// Miniature simulations that pick the window size (and the ghost rule, the filter and the protected share)
/// of ``WTinyLFUPolicy``.
///
/// A handful of static W-TinyLFU caches, each with a different window share, replay the same requests on
/// a spatial sample of the keys (the keys whose hash falls below a threshold, as in SHARDS by Waldspurger
/// et al., FAST'15) with their capacity scaled down by the same rate. Every period the configuration of
/// the simulation with the most (decayed) hits becomes the real cache's, if it beats the current choice by
/// the margin (the first choice needs no margin: the starting configuration is not one the simulations
/// chose) in each half of the sample (the keys whose remixed hash is even, and the others). The halves
/// are two samples of the workload replayed by the same caches: a lead that one half does not show comes
/// from the few keys a simulated cache happened to hold, not from its configuration. On P3 at 131,072
/// pages such leads of the configuration without the ghost rule (up to 40% in one period, which the real
/// cache, holding other keys after it switched, did not get) kept the policy away from the ghost rule
/// when a later phase rewards it; see ``Tuning/simulationHalvesAgree``. All simulations see the
/// same requests at the same time, so a change of the workload cannot be mistaken for the effect of a
/// step, as it can with hill climbing; that is what fooled the climber on the ARC traces' P3.
///
/// Cost: one hash comparison per request, and for the sampled ones (about ``targetEntries`` per cache,
/// whatever its size) one lookup in a table of keys shared by the simulations and one policy update per
/// simulation. Memory: the simulations hold about `configurations.count × targetEntries` small entries
/// (roughly 100 bytes each); the halves' counts are two numbers per simulation.
package struct WindowSimulations: Sendable {
    /// One simulated cache: a static W-TinyLFU policy and its slots, indexed by the shared key numbers.
    private struct Simulation: Sendable {
        var policy: WTinyLFUPolicy
        /// By key number: the key's slot, or -1.
        var slotOfKey: [Int32] = []
        /// The key number in each slot.
        var keyOfSlot = NumberedValues<Int32>()
        var hits = 0
        var score = 0.0
        /// The hits and score of the keys whose (remixed) hash is even: one half of the sample.
        var evenHits = 0
        var evenScore = 0.0

        /// Requests the key, counting a hit if it was present and inserting it otherwise. Returns whether
        /// it inserted the key; appends the numbers of the keys it evicted to `released`.
        mutating func access(
            _ key: Int32,
            keyHash: UInt64,
            weight: Int,
            victims: inout [Int],
            released: inout [Int32]
        ) -> Bool {
            if Int(key) < slotOfKey.count, slotOfKey[Int(key)] >= 0 {
                policy.recordHit(Int(slotOfKey[Int(key)]), keyHash: keyHash)
                hits += 1
                if keyHash & 1 == 0 { evenHits += 1 }
                return false
            }
            policy.recordMiss(keyHash: keyHash)
            let slot = keyOfSlot.add(key).number
            if Int(key) >= slotOfKey.count {
                slotOfKey.append(contentsOf: repeatElement(-1, count: Int(key) + 1 - slotOfKey.count))
            }
            slotOfKey[Int(key)] = slot
            victims.removeAll(keepingCapacity: true)
            policy.recordInsertion(PolicyEntry(slot: Int(slot), keyHash: keyHash, weight: weight), victims: &victims)
            for victim in victims {
                let evicted = keyOfSlot[Int32(victim)]
                slotOfKey[Int(evicted)] = -1
                keyOfSlot.release(Int32(victim))
                released.append(evicted)
            }
            return true
        }
    }

    /// A configuration the simulations compare.
    package struct Configuration: Sendable, Equatable {
        /// The window's share of the capacity.
        package var share: Double
        /// Whether a candidate remembered by the ghost is admitted without a duel.
        package var ghostAdmits: Bool
        /// Whether the frequency sketch decides admission; `false` admits every candidate.
        package var filters: Bool
        /// The protected segment's share of the main space.
        package var protectedShare: Double

        package init(share: Double, ghostAdmits: Bool, filters: Bool = true, protectedShare: Double = 0.8) {
            self.share = share
            self.ghostAdmits = ghostAdmits
            self.filters = filters
            self.protectedShare = protectedShare
        }
    }

    /// The configurations simulated.
    package let configurations: [Configuration]
    /// A key is sampled when the low 32 bits of its hash are below this.
    private let threshold: UInt64
    private var simulations: [Simulation]
    private var victims: [Int] = []
    /// The sampled keys some simulation holds, numbered, so that a request costs one hash lookup rather
    /// than one per simulation; a number is reused once no simulation holds its key.
    private var numberOfKey: [UInt64: Int32] = [:]
    private var keyOfNumber = NumberedValues<UInt64>()
    /// By key number: how many simulations hold the key.
    private var holders: [UInt8] = []
    private var released: [Int32] = []
    /// Sampled requests per decision.
    private let period: Int
    private var requestsInPeriod = 0
    private let decay: Double
    private let margin: Double
    /// Whether a challenger must lead in both halves of the sample.
    private let halvesAgree: Bool
    private var periodsToSkip: Int
    /// The index in ``configurations`` of the current choice.
    private(set) var chosen: Int
    /// Whether ``chosen`` was chosen by the simulations rather than given at start.
    private var hasChosen = false

    /// Simulations for a cache of `capacity` bytes expected to hold about `entries` entries, sampling
    /// enough keys for about `targetEntries` entries per simulation.
    package init(
        capacity: Int,
        entries: Int,
        configurations: [Configuration],
        initialShare: Double,
        targetEntries: Int,
        periodPerEntry: Double,
        decay: Double,
        margin: Double,
        warmupPeriods: Int,
        tuning: WTinyLFUPolicy.Tuning
    ) {
        let rate = min(1, Double(targetEntries) / Double(max(1, entries)))
        threshold = rate >= 1 ? UInt64(1) << 32 : UInt64(rate * Double(UInt64(1) << 32))
        let scaledCapacity = max(1, Int((Double(capacity) * rate).rounded()))
        self.configurations = configurations
        simulations = configurations.map { configuration in
            var simulated = tuning
            simulated.adaptive = false
            simulated.initialWindow = configuration.share
            if !configuration.ghostAdmits { simulated.ghostShare = 0 }
            simulated.filters = configuration.filters
            simulated.protectedShare = configuration.protectedShare
            return Simulation(policy: WTinyLFUPolicy(capacity: scaledCapacity, tuning: simulated))
        }
        period = max(64, Int(periodPerEntry * Double(min(entries, targetEntries))))
        self.decay = decay
        self.margin = margin
        halvesAgree = tuning.simulationHalvesAgree
        periodsToSkip = warmupPeriods
        // The configuration the policy starts with: the window share closest to `initialShare`, with the
        // ghost rule off and the filter on (Caffeine's policy) where one is simulated.
        func distance(_ index: Int) -> (Double, Int) {
            let configuration = configurations[index]
            return (abs(configuration.share - initialShare), (configuration.ghostAdmits ? 1 : 0) + (configuration.filters ? 0 : 2))
        }
        chosen = configurations.indices.min { distance($0) < distance($1) } ?? 0
    }

    /// Bytes held by the first simulated cache (for tests).
    package var simulatedWeight: Int { simulations.first?.policy.weightedSize ?? 0 }

    /// The configuration the simulations currently favour.
    package var configuration: Configuration { configurations[chosen] }

    /// Feeds one request (a hit, or a miss followed by an insertion of `weight` bytes) to the simulations
    /// if the key is sampled. Returns whether a new period chose a configuration (which may be the same).
    @inline(__always)
    package mutating func record(keyHash: UInt64, weight: Int) -> Bool {
        guard keyHash & 0xFFFF_FFFF < threshold else { return false }
        // Remixed, so the simulations' sketches and sampling do not share the bits the sample selected.
        let simulatedHash = SplitMix64.mix(keyHash)
        let key: Int32
        if let number = numberOfKey[simulatedHash] {
            key = number
        } else {
            let added = keyOfNumber.add(simulatedHash)
            key = added.number
            if added.isNew { holders.append(0) }
            numberOfKey[simulatedHash] = key
        }
        released.removeAll(keepingCapacity: true)
        for index in simulations.indices
        where simulations[index].access(key, keyHash: simulatedHash, weight: weight, victims: &victims, released: &released) {
            holders[Int(key)] += 1
        }
        for evicted in released { holders[Int(evicted)] -= 1 }
        // A key evicted by several simulations is released once; the requested key may be held by none.
        for evicted in released { forgetIfUnheld(evicted) }
        forgetIfUnheld(key)
        requestsInPeriod += 1
        guard requestsInPeriod >= period else { return false }
        requestsInPeriod = 0
        decide()
        return true
    }

    private mutating func forgetIfUnheld(_ key: Int32) {
        guard holders[Int(key)] == 0, numberOfKey[keyOfNumber[key]] == key else { return }
        numberOfKey.removeValue(forKey: keyOfNumber[key])
        keyOfNumber.release(key)
    }

    private mutating func decide() {
        if periodsToSkip > 0 {
            // The simulated caches are still filling: their hits say nothing of the window yet.
            periodsToSkip -= 1
            for index in simulations.indices {
                simulations[index].hits = 0
                simulations[index].evenHits = 0
            }
            return
        }
        for index in simulations.indices {
            simulations[index].score = simulations[index].score * decay + Double(simulations[index].hits)
            simulations[index].evenScore = simulations[index].evenScore * decay + Double(simulations[index].evenHits)
            simulations[index].hits = 0
            simulations[index].evenHits = 0
        }
        var best = chosen
        for index in simulations.indices where simulations[index].score > simulations[best].score {
            best = index
        }
        // The margin keeps a choice the simulations made; the starting configuration was not theirs.
        if !hasChosen || leads(best, over: chosen) { chosen = best }
        hasChosen = true
    }

    /// Whether the simulation at `challenger` leads the one at `incumbent` by the margin: in each half of
    /// the sample by half the margin (each half holds about half the hits), or in the whole sample.
    private func leads(_ challenger: Int, over incumbent: Int) -> Bool {
        let required = simulations[incumbent].score * margin
        let challenger = simulations[challenger], incumbent = simulations[incumbent]
        guard halvesAgree else { return challenger.score - incumbent.score > required }
        let even = challenger.evenScore - incumbent.evenScore
        let odd = (challenger.score - challenger.evenScore) - (incumbent.score - incumbent.evenScore)
        return min(even, odd) > required / 2
    }
}

