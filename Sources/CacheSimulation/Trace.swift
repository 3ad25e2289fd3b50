import CacheLayer
/// A list of cache requests to replay, with keys renamed to dense integers so replay can index arrays.
package struct Trace: Sendable {
    /// A name for reports: the file name or the synthetic specification.
    package var name: String
    /// The requested keys, in order, as ids in `0..<keyCount`.
    package var keys: [UInt32]
    /// How many distinct ids `keys` may hold.
    package var keyCount: Int
    /// The size of each request's value in bytes, or `nil` when every entry has the same size (weight 1).
    package var sizes: [UInt32]?
    /// Each request's time to live in seconds (0: never expires), or `nil` when nothing expires.
    package var ttls: [UInt32]?
    /// Keys whose requests do not count in the hit ratio: the one-off scans injected into a synthetic
    /// workload, which every policy misses, so that the ratio shows what the scan did to the other keys.
    package var uncountedKeys: Range<UInt32>?

    /// A trace; `keys` must lie in `0..<keyCount` and `sizes`/`ttls`, when given, match `keys` in length.
    package init(
        name: String,
        keys: [UInt32],
        keyCount: Int,
        sizes: [UInt32]? = nil,
        ttls: [UInt32]? = nil,
        uncountedKeys: Range<UInt32>? = nil
    ) {
        self.name = name
        self.keys = keys
        self.keyCount = keyCount
        self.sizes = sizes
        self.ttls = ttls
        self.uncountedKeys = uncountedKeys
    }

    /// The number of requests.
    package var count: Int { keys.count }

    /// Whether entries have different sizes, so capacities are in bytes rather than entries.
    package var isWeighted: Bool { sizes != nil }

    /// The first `count` requests.
    package func prefix(_ count: Int) -> Trace {
        var trace = self
        trace.keys = Array(keys.prefix(count))
        trace.sizes = sizes.map { Array($0.prefix(count)) }
        trace.ttls = ttls.map { Array($0.prefix(count)) }
        return trace
    }

    /// Whether a request for `key` counts in the hit ratio.
    @inline(__always)
    package func counts(_ key: UInt32) -> Bool {
        guard let uncountedKeys else { return true }
        return !uncountedKeys.contains(key)
    }

    /// The number of distinct keys requested (counting every key id, as ids are dense).
    package var distinctKeys: Int {
        var seen = [Bool](repeating: false, count: keyCount)
        var distinct = 0
        for key in keys where !seen[Int(key)] {
            seen[Int(key)] = true
            distinct += 1
        }
        return distinct
    }
}
