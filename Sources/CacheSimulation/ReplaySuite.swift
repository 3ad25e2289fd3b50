import CacheLayer
import Foundation

/// A fixed, seeded set of workloads of different character, replayed through every policy, with the bar the
/// default policy has to clear on each row: the best of LRU, ARC, S3-FIFO and Caffeine's static W-TinyLFU,
/// minus half a point, and above LRU and expiry order.
///
/// The shipped traces (OLTP and P3 at every size the literature uses) are joined by generated workloads:
/// Zipf of several skews, a hot set that moves, a loop a little larger than the cache (LRU's worst case),
/// a frequency-heavy mix (Zipf with one-off scans), a recency-heavy feed (new keys are the hot ones),
/// CDN-like traffic where half the requests are one-hit wonders, and sized entries under a byte limit.
/// Everything is deterministic: the same suite prints the same figures on every run.
package enum ReplaySuite {
    /// How large the generated workloads are.
    package enum Scale: String, Sendable, CaseIterable {
        /// 200,000 keys and 2,000,000 requests per workload, and the shipped traces: a few minutes in release.
        case full
        /// 10,000 keys and 100,000 requests, without the traces: seconds, for tests.
        case quick
    }

    /// One workload and the cache sizes it is replayed at.
    package struct Case: Sendable {
        /// A short name for the table.
        package var name: String
        /// Builds the requests (reads a trace file or generates a workload).
        package var makeTrace: @Sendable () throws -> Trace
        /// Cache sizes: entries, or bytes for sized workloads; computed from the trace.
        package var sizes: @Sendable (Trace) -> [Int]

        /// A workload and the sizes it is replayed at.
        package init(name: String, makeTrace: @escaping @Sendable () throws -> Trace, sizes: @escaping @Sendable (Trace) -> [Int]) {
            self.name = name
            self.makeTrace = makeTrace
            self.sizes = sizes
        }
    }

    /// One workload at one size: every policy's hit ratio and how the default fares against the bar.
    package struct Row: Sendable, Equatable {
        package var workload: String
        package var size: Int
        /// Hit ratios from 0 to 1, by policy.
        package var ratios: [ReplayPolicy: Double]

        /// A row of measured ratios.
        package init(workload: String, size: Int, ratios: [ReplayPolicy: Double]) {
            self.workload = workload
            self.size = size
            self.ratios = ratios
        }

        /// The best comparison policy's ratio minus ``tolerance``.
        package var bar: Double { (ReplaySuite.comparisonPolicies.compactMap { ratios[$0] }.max() ?? 0) - ReplaySuite.tolerance }
        /// The default policy's ratio minus the bar: negative when it misses.
        package var margin: Double { (ratios[.default] ?? 0) - bar }
        /// Whether the default clears the bar and beats LRU and expiry order.
        package var passes: Bool {
            let chosen = ratios[.default] ?? 0
            return margin >= 0 && chosen > (ratios[.lru] ?? 1) && chosen > (ratios[.expiry] ?? 1)
        }
    }

    /// The policies the bar is made of.
    package static let comparisonPolicies: [ReplayPolicy] = [.lru, .arc, .s3fifo, .tinylfuStatic]
    /// Every policy the suite replays.
    package static let policies: [ReplayPolicy] = [.lru, .expiry, .arc, .s3fifo, .tinylfuStatic, .tinylfu]
    /// How far below the best comparison policy the default may be: half a point.
    package static let tolerance = 0.005

    /// The workloads at `scale`; `traceDirectory` holds `OLTP.lis.zst` and `P3.lis.zst` (the repository's
    /// `Traces/arc`) and is needed at full scale only.
    package static func cases(scale: Scale, traceDirectory: String? = nil) -> [Case] {
        let keys = scale == .full ? 200_000 : 10_000
        let requests = scale == .full ? 2_000_000 : 100_000
        let common = "keys=\(keys),requests=\(requests)"
        func generated(_ name: String, _ specification: String, fractions: [Double] = [0.01, 0.1]) -> Case {
            Case(name: name, makeTrace: { try SyntheticWorkload(specification: specification).makeTrace() }) { trace in
                let total = trace.isWeighted ? distinctBytes(trace) : trace.distinctKeys
                return fractions.map { max(1, Int(Double(total) * $0)) }
            }
        }
        var cases: [Case] = []
        if scale == .full, let traceDirectory {
            for (file, sizes) in [("OLTP.lis.zst", [1000, 2000, 5000, 10000, 15000]), ("P3.lis.zst", [32768, 65536, 131072, 262144, 524288])] {
                let path = (traceDirectory as NSString).appendingPathComponent(file)
                cases.append(Case(name: file.replacingOccurrences(of: ".lis.zst", with: ""), makeTrace: { try TraceReader.read(path: path, format: .arc) }) { _ in sizes })
            }
        }
        for skew in [0.6, 0.8, 1.0, 1.2] {
            cases.append(generated("zipf \(skew)", "zipf:s=\(skew),\(common)"))
        }
        cases.append(generated("hot set moves", "shift:s=0.9,\(common),phases=4"))
        let loopCache = keys / 10
        cases.append(
            Case(name: "loop 1.1x cache", makeTrace: { try SyntheticWorkload(specification: "loop:keys=\(loopCache + loopCache / 10),requests=\(requests)").makeTrace() }) { _ in
                [loopCache]
            }
        )
        cases.append(generated("zipf + scans", "scan:s=0.9,\(common),length=\(keys / 10),scans=10"))
        cases.append(generated("recency feed", "recency:s=0.9,\(common),drift=10"))
        cases.append(generated("cdn one-offs", "cdn:s=0.9,\(common),oneoff=0.5"))
        cases.append(generated("sized zipf", "zipf:s=0.9,\(common),sizes=100-10000", fractions: [0.005, 0.1]))
        return cases
    }

    /// Replays every case through ``policies``. `progress` receives each finished row.
    package static func run(_ cases: [Case], progress: (Row) -> Void = { _ in }) throws -> [Row] {
        var rows: [Row] = []
        for suiteCase in cases {
            let trace = try suiteCase.makeTrace()
            for size in suiteCase.sizes(trace) {
                var ratios: [ReplayPolicy: Double] = [:]
                for policy in policies {
                    ratios[policy] = Replayer.replay(trace, policy: policy, size: size).hitRatio
                }
                let row = Row(workload: suiteCase.name, size: size, ratios: ratios)
                rows.append(row)
                progress(row)
            }
        }
        return rows
    }

    /// The bytes of every distinct key of a sized trace, each counted once.
    private static func distinctBytes(_ trace: Trace) -> Int {
        guard let sizes = trace.sizes else { return trace.distinctKeys }
        var seen = [Bool](repeating: false, count: trace.keyCount)
        var total = 0
        for (index, key) in trace.keys.enumerated() where !seen[Int(key)] {
            seen[Int(key)] = true
            total += Int(sizes[index])
        }
        return total
    }
}
