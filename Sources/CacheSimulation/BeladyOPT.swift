import CacheLayer
import HeapModule

/// Belady's optimal offline policy: the upper bound on the hit ratio of any policy for a trace.
///
/// On a miss the cache evicts the entry whose next request is farthest in the future, and *bypasses*
/// (does not store) the requested entry when it is itself requested later than every cached entry or never
/// again — the variant the reference figures use. With equal sizes this is optimal.
///
/// With variable sizes, optimal caching is NP-hard; this uses the usual greedy approximation: evict
/// farthest-next-use entries while they are requested later than the new entry and it does not fit, and
/// bypass it if it still does not fit. It is a strong policy that knows the future, not a proven bound.
package enum BeladyOPT {
    private struct Scheduled: Comparable {
        var nextUse: Int
        var key: UInt32

        static func < (lhs: Scheduled, rhs: Scheduled) -> Bool { lhs.nextUse < rhs.nextUse }
    }

    /// The number of hits of OPT on `trace` with `capacity` (entries, or bytes for a weighted trace), counting
    /// only the requests the trace counts. `progress` is called with the number of requests done.
    package static func hits(trace: Trace, capacity: Int, progress: (Int) -> Void = { _ in }) -> Int {
        let never = Int.max
        // The next request of the same key after each request.
        var nextUse = [Int](repeating: never, count: trace.count)
        var upcoming = [Int](repeating: never, count: trace.keyCount)
        for index in stride(from: trace.count - 1, through: 0, by: -1) {
            let key = Int(trace.keys[index])
            nextUse[index] = upcoming[key]
            upcoming[key] = index
        }
        upcoming = []

        // The next use of each cached key; `never` (also) marks keys not cached, so check `cached`.
        var cached = [Bool](repeating: false, count: trace.keyCount)
        var scheduled = [Int](repeating: never, count: trace.keyCount)
        var sizeOf = [Int](repeating: 0, count: trace.sizes == nil ? 0 : trace.keyCount)
        // Entries by next use; entries whose key was hit since are stale and skipped when they surface.
        var heap = Heap<Scheduled>()
        var used = 0
        var hits = 0
        for index in 0..<trace.count {
            if index & 0xFFFF == 0 { progress(index) }
            let key = trace.keys[index]
            let slot = Int(key)
            let next = nextUse[index]
            let size = trace.sizes.map { Int($0[index]) } ?? 1
            if cached[slot] {
                if trace.counts(key) { hits += 1 }
                if trace.sizes != nil && sizeOf[slot] != size {
                    // A new size: treat as a removal and a fresh miss below.
                    cached[slot] = false
                    used -= sizeOf[slot]
                } else {
                    scheduled[slot] = next
                    heap.insert(Scheduled(nextUse: next, key: key))
                    continue
                }
            }
            guard next != never, size <= capacity else { continue }
            while used + size > capacity {
                guard let farthest = heap.max else { break }
                let farthestSlot = Int(farthest.key)
                if !cached[farthestSlot] || scheduled[farthestSlot] != farthest.nextUse {
                    heap.removeMax()
                    continue
                }
                // Keep what is needed sooner than the new entry: then the new entry is the one to drop.
                guard farthest.nextUse > next else { break }
                heap.removeMax()
                cached[farthestSlot] = false
                used -= trace.sizes == nil ? 1 : sizeOf[farthestSlot]
            }
            guard used + size <= capacity else { continue }
            cached[slot] = true
            scheduled[slot] = next
            if trace.sizes != nil { sizeOf[slot] = size }
            used += size
            heap.insert(Scheduled(nextUse: next, key: key))
        }
        progress(trace.count)
        return hits
    }
}
