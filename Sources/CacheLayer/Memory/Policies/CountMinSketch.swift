/// A popularity estimate for the keys a cache has recently seen: a count-min sketch of 4-bit counters that
/// ages by halving, in the layout of Caffeine's `FrequencySketch` (before its cache-line-blocked variant).
///
/// Each 64-bit word holds sixteen 4-bit counters. A key picks four words with four independently seeded
/// hashes and, within each, one counter out of a group of four chosen by the key's low bits, so the four
/// counters of a key sit in different words. The estimate is the smallest of the four: collisions only ever
/// inflate a count, and the minimum is the least inflated.
///
/// Counters saturate at 15: TinyLFU only needs to know which of two keys is more popular, and small counters
/// keep the sketch at 8 bytes per cached entry. After `sampleSize` increments every counter is halved (the
/// *reset* of the TinyLFU paper), so popularity that is not renewed fades and the sketch follows shifts in
/// the workload.
package struct CountMinSketch: Sendable {
    private static let seeds: [UInt64] = [
        0xc3a5_c85c_97cb_3127, 0xb492_b66f_be98_f273, 0x9ae1_6a3b_2f90_404f, 0xcbf2_9ce4_8422_2325,
    ]
    private static let resetMask: UInt64 = 0x7777_7777_7777_7777
    private static let oneMask: UInt64 = 0x1111_1111_1111_1111

    private var table: [UInt64] = []
    private var tableMask = 0
    /// Increments since the last reset.
    package private(set) var size = 0
    /// Increments between two resets: `samplesPerEntry` times the number of entries the sketch was sized for.
    package private(set) var sampleSize = 0
    /// The entry count the table was sized for.
    package private(set) var sizedFor = 0
    /// Increments between resets, per entry the sketch is sized for. Caffeine uses 10.
    package let samplesPerEntry: Int

    /// An empty sketch that counts nothing until ``ensureCapacity(_:)`` sizes it.
    package init(samplesPerEntry: Int = 10) {
        self.samplesPerEntry = samplesPerEntry
    }

    /// Whether the sketch has been sized; an unsized sketch estimates 0 for every key.
    package var isInitialized: Bool { !table.isEmpty }

    /// Sizes the table for a cache of about `entries` entries. Growing discards the counts, as Caffeine does:
    /// it happens a few times while a cache warms up, when there is little history to lose.
    package mutating func ensureCapacity(_ entries: Int) {
        let entries = max(entries, 8)
        guard entries > sizedFor else { return }
        // A power of two makes the index a mask; one word (16 counters) per entry keeps the error low.
        var words = 8
        while words < entries { words <<= 1 }
        table = Array(repeating: 0, count: words)
        tableMask = words - 1
        sizedFor = entries
        sampleSize = samplesPerEntry * entries
        size = 0
    }

    /// The estimated number of recent occurrences of the key, 0...15.
    package func frequency(_ keyHash: UInt64) -> Int {
        guard !table.isEmpty else { return 0 }
        let start = Int(keyHash & 3) << 2
        var frequency = 15
        for row in 0..<4 {
            let word = table[index(keyHash, row)]
            let count = Int((word >> UInt64((start + row) << 2)) & 0xF)
            frequency = min(frequency, count)
        }
        return frequency
    }

    /// Counts one occurrence of the key, and halves every counter when the sample is complete.
    package mutating func increment(_ keyHash: UInt64) {
        guard !table.isEmpty else { return }
        let start = Int(keyHash & 3) << 2
        var added = false
        for row in 0..<4 {
            let wordIndex = index(keyHash, row)
            let shift = UInt64((start + row) << 2)
            if (table[wordIndex] >> shift) & 0xF != 0xF {
                table[wordIndex] &+= 1 << shift
                added = true
            }
        }
        guard added else { return }
        size += 1
        if size >= sampleSize { reset() }
    }

    /// Halves every counter. The sample count loses the increments that the halving truncated (a quarter of
    /// the odd counters, as each key owns four), as in Caffeine, so the next reset comes after a full sample.
    package mutating func reset() {
        var odd = 0
        for index in table.indices {
            odd += (table[index] & Self.oneMask).nonzeroBitCount
            table[index] = (table[index] >> 1) & Self.resetMask
        }
        size = max(0, (size - (odd >> 2)) >> 1)
    }

    private func index(_ keyHash: UInt64, _ row: Int) -> Int {
        let seed = Self.seeds[row]
        var hash = (keyHash &+ seed) &* seed
        hash &+= hash >> 32
        return Int(truncatingIfNeeded: hash) & tableMask
    }
}
