import ArgumentParser
import CacheLayer
import CacheSimulation
import Foundation

/// `cachelayer replay-suite`: every policy on a fixed set of workloads, and whether the default clears the bar.
struct ReplaySuiteCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "replay-suite",
        abstract: "Replays a fixed suite of traces and generated workloads through every policy and checks the default against the bar.",
        discussion: """
            The suite: the shipped OLTP and P3 traces at their usual sizes, Zipf at skews 0.6 to 1.2, a hot set \
            that moves, a loop a little larger than the cache, Zipf with one-off scans, a recency-heavy feed, \
            CDN-like traffic with one-hit wonders, and sized entries under a byte limit (1% and 10% of the \
            keys or bytes). The bar on each row is the best of LRU, ARC, S3-FIFO and Caffeine's static \
            W-TinyLFU minus half a point; the default must clear it and beat LRU and expiry order. Every run \
            prints the same figures.
            """
    )

    @Option(help: "full (200,000 keys, 2,000,000 requests per workload, and the traces) or quick (10,000 keys, no traces).")
    var scale: ReplaySuite.Scale = .full

    @Option(help: "The folder holding OLTP.lis.zst and P3.lis.zst (default: Traces/arc under the current folder).")
    var traces: String = "Traces/arc"

    @Flag(help: "Print one JSON object instead of a table.")
    var json = false

    func validate() throws {
        if scale == .full, !FileManager.default.fileExists(atPath: (traces as NSString).appendingPathComponent("OLTP.lis.zst")) {
            throw ValidationError("no OLTP.lis.zst in \(traces): run from the repository's root, pass --traces, or use --scale quick")
        }
    }

    func run() async throws {
        ReplayCommand.makeHashingDeterministic()
        let cases = ReplaySuite.cases(scale: scale, traceDirectory: traces)
        let policies = ReplaySuite.policies
        if !json {
            print("hit ratio %; bar = best of lru, arc, s3fifo, tinylfu-static minus 0.5; default: \(ReplayPolicy.default.rawValue)")
            print(Self.header(policies))
        }
        let rows = try ReplaySuite.run(cases) { row in
            if json {
                FileHandle.standardError.write(Data("\(row.workload) \(row.size): margin \(String(format: "%+.2f", row.margin * 100))\n".utf8))
            } else {
                print(Self.line(row, policies))
            }
        }
        let worst = rows.min { $0.margin < $1.margin }
        let failing = rows.filter { !$0.passes }
        if json {
            struct Output: Encodable {
                struct Row: Encodable {
                    var workload: String
                    var size: Int
                    var hit_ratios: [String: Double]
                    var bar: Double
                    var margin: Double
                    var passes: Bool
                }
                var default_policy: String
                var rows: [Row]
                var worst_margin: Double
                var failing_rows: Int
            }
            let output = Output(
                default_policy: ReplayPolicy.default.rawValue,
                rows: rows.map { row in
                    Output.Row(
                        workload: row.workload, size: row.size,
                        hit_ratios: Dictionary(uniqueKeysWithValues: row.ratios.map { ($0.key.rawValue, $0.value) }),
                        bar: row.bar, margin: row.margin, passes: row.passes
                    )
                },
                worst_margin: worst?.margin ?? 0,
                failing_rows: failing.count
            )
            print(try jsonLine(output))
        } else if let worst {
            print("\n\(rows.count - failing.count) of \(rows.count) rows clear the bar; worst margin \(String(format: "%+.2f", worst.margin * 100)) points (\(worst.workload) at \(worst.size))")
        }
    }

    private static func header(_ policies: [ReplayPolicy]) -> String {
        "workload".padding(toLength: 18, withPad: " ", startingAt: 0) + "size".leftAligned(10)
            + policies.map { $0.rawValue.rightAligned(16) }.joined() + "bar".rightAligned(8) + "margin".rightAligned(8)
    }

    private static func line(_ row: ReplaySuite.Row, _ policies: [ReplayPolicy]) -> String {
        let ratios = policies.map { String(format: "%.2f", (row.ratios[$0] ?? 0) * 100).rightAligned(16) }.joined()
        let verdict = row.passes ? "" : "  ✗"
        return row.workload.padding(toLength: 18, withPad: " ", startingAt: 0) + String(row.size).leftAligned(10) + ratios
            + String(format: "%.2f", row.bar * 100).rightAligned(8) + String(format: "%+.2f", row.margin * 100).rightAligned(8) + verdict
    }
}

extension ReplaySuite.Scale: ExpressibleByArgument {}

extension String {
    fileprivate func rightAligned(_ width: Int) -> String {
        count >= width ? " " + self : String(repeating: " ", count: width - count) + self
    }

    fileprivate func leftAligned(_ width: Int) -> String {
        count >= width ? self + " " : self + String(repeating: " ", count: width - count)
    }
}
