import Foundation

/// A deterministic pseudo-random generator (SplitMix64): fast, seedable, good enough for workloads.
struct SeededGenerator: RandomNumberGenerator, Sendable {
    private var state: UInt64

    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// Draws ranks 0..<count with probability proportional to 1 / (rank + 1)^s.
///
/// Precomputes the cumulative distribution once (8 bytes per key) and samples by binary search,
/// so a draw costs O(log n) and is exact for any exponent, including s ≤ 1.
struct ZipfGenerator: Sendable {
    let count: Int
    let exponent: Double
    private let cumulative: [Double]

    init(count: Int, exponent: Double) {
        precondition(count > 0, "a Zipf distribution needs at least one key")
        self.count = count
        self.exponent = exponent
        var cumulative = [Double](repeating: 0, count: count)
        var total = 0.0
        for rank in 0..<count {
            total += exponent == 0 ? 1 : 1 / pow(Double(rank + 1), exponent)
            cumulative[rank] = total
        }
        for rank in 0..<count { cumulative[rank] /= total }
        self.cumulative = cumulative
    }

    /// A rank, 0 being the most popular.
    func next(using generator: inout some RandomNumberGenerator) -> Int {
        let target = Double.random(in: 0..<1, using: &generator)
        var low = 0
        var high = count - 1
        while low < high {
            let middle = (low + high) / 2
            if cumulative[middle] < target { low = middle + 1 } else { high = middle }
        }
        return low
    }
}
