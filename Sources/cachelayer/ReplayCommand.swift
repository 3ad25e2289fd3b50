import CacheSimulation
import ArgumentParser
import CacheLayer
import Foundation

/// `cachelayer replay`: measures hit ratios of the eviction policies on a trace.
struct ReplayCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "replay",
        abstract: "Replays a cache trace and prints the hit ratio of each eviction policy at each cache size.",
        discussion: """
            TRACE is a file or a synthetic workload specification:
              zipf:s=0.9,keys=1000000,requests=10000000[,seed=42][,sizes=100-10000]
              scan:s=0.9,keys=1000000,requests=10000000,length=100000[,scans=1][,seed=42][,sizes=MIN-MAX]
            `scan` is the same Zipf workload with `scans` one-off passes over `length` new keys spread through
            it; scan requests do not count in its hit ratio, so compare it with the `zipf` of the same
            parameters to see what a scan costs each policy. `sizes=MIN-MAX` gives each key a fixed size in
            bytes, log-uniform in the range, and makes --sizes byte limits.

            File formats (a `.zst` file is decompressed with the zstd command):
              arc    the ARC paper's traces: `start count ignored request`, count consecutive pages a line
              lines  one key per line
              csv    `key,size[,ttl]`: size in bytes (--sizes are then byte limits), ttl in seconds on a
                     virtual clock that advances 1 ms per request

            Sizes are in entries (bytes for csv and sized workloads). `opt` is Belady's offline optimum with
            bypass (greedy approximation for variable sizes), the upper bound for every figure.
            """
    )

    @Argument(help: "A trace file, or a synthetic workload such as zipf:s=0.9,keys=1000000,requests=10000000.")
    var trace: String

    @Option(help: "The file format: arc, lines or csv. Default: arc for .lis/.lis.zst files, csv for .csv, else lines.")
    var format: String?

    @Option(help: "Comma-separated cache sizes (entries, or bytes for sized traces). Default: 0.5%, 1%, 2%, 5% and 10% of the distinct keys.")
    var sizes: String?

    @Option(help: "all, or a comma-separated list of: lru, expiry, arc, s3fifo, tinylfu, opt (and tinylfu-static).")
    var policy: String = "all"

    @Option(help: "Replay only the first N requests.")
    var limit: Int?

    @Flag(help: "Print one JSON object instead of a table.")
    var json = false

    @Option(help: "Write an SVG chart of hit ratio against cache size to this file.")
    var plot: String?

    @Option(help: .hidden)
    var tune: String?

    @Flag(help: "Do not draw the progress bar on standard error.")
    var quiet = false

    func run() async throws {
        Self.makeHashingDeterministic()
        let policies = try parsePolicies()
        var trace = try loadTrace()
        if let limit { trace = trace.prefix(limit) }
        let cacheSizes = try parseSizes(trace)
        let tuning = try tune.map { try ReplayTuning($0) } ?? ReplayTuning()

        let progress = ProgressBar(enabled: !quiet, total: trace.count * policies.count * cacheSizes.count)
        var results: [ReplayResult] = []
        for size in cacheSizes {
            for policy in policies {
                progress.label = "\(policy.rawValue) \(size)"
                let done = progress.completed
                results.append(Replayer.replay(trace, policy: policy, size: size, tuning: tuning) { progress.update(done + $0) })
            }
        }
        progress.finish()

        let requests = results.first?.requests ?? trace.count
        if json {
            printJSON(trace: trace, requests: requests, results: results)
        } else {
            printTable(trace: trace, requests: requests, policies: policies, sizes: cacheSizes, results: results)
        }
        if let plot {
            let chart = HitRatioChart(title: "Hit ratio: \(trace.name)", policies: policies, results: results)
            try chart.svg().write(toFile: plot, atomically: true, encoding: .utf8)
            if !json { print("chart written to \(plot)") }
        }
    }

    /// String hashes are seeded per process, and the policies' sketches and samples follow the hashes, so
    /// two runs could differ by a few tenths of a point. Replay runs itself again with Swift's
    /// deterministic hashing, so that every run of the same command prints the same figures.
    static func makeHashingDeterministic() {
        let variable = "SWIFT_DETERMINISTIC_HASHING"
        guard ProcessInfo.processInfo.environment[variable] == nil else { return }
        setenv(variable, "1", 1)
        let arguments = CommandLine.arguments.map { strdup($0) } + [nil]
        execv("/proc/self/exe", arguments)
        // Only reached when exec failed: go on, with figures that may vary a little between runs.
        for argument in arguments { free(argument) }
    }

    private func parsePolicies() throws -> [ReplayPolicy] {
        if policy == "all" { return ReplayPolicy.all }
        return try policy.split(separator: ",").map { name in
            guard let policy = ReplayPolicy(rawValue: String(name)) else {
                throw ValidationError("unknown policy \(name); expected all or lru, expiry, arc, s3fifo, tinylfu, opt, tinylfu-static")
            }
            return policy
        }
    }

    private func loadTrace() throws -> Trace {
        if SyntheticWorkload.isSpecification(trace) {
            do {
                return try SyntheticWorkload(specification: trace).makeTrace()
            } catch let error as SyntheticWorkload.SpecificationError {
                throw ValidationError(error.description)
            }
        }
        let resolvedFormat: TraceReader.Format
        if let format {
            guard let parsed = TraceReader.Format(rawValue: format) else {
                throw ValidationError("unknown format \(format); expected arc, lines or csv")
            }
            resolvedFormat = parsed
        } else if trace.hasSuffix(".lis") || trace.hasSuffix(".lis.zst") {
            resolvedFormat = .arc
        } else if trace.hasSuffix(".csv") || trace.hasSuffix(".csv.zst") {
            resolvedFormat = .csv
        } else {
            resolvedFormat = .lines
        }
        do {
            return try TraceReader.read(path: trace, format: resolvedFormat)
        } catch let error as TraceReader.ReadError {
            throw ValidationError(error.description)
        }
    }

    private func parseSizes(_ trace: Trace) throws -> [Int] {
        if let sizes {
            return try sizes.split(separator: ",").map { text in
                guard let size = Int(text.replacingOccurrences(of: "_", with: "")), size > 0 else {
                    throw ValidationError("cache size \(text) is not a positive integer")
                }
                return size
            }
        }
        // Without sizes, a spread around the working set: the interesting part of the curve.
        let distinct = trace.distinctKeys
        let unit: Double
        if let entrySizes = trace.sizes {
            unit = Double(entrySizes.reduce(0) { $0 + Int($1) }) / Double(max(1, entrySizes.count))
        } else {
            unit = 1
        }
        return [0.005, 0.01, 0.02, 0.05, 0.1].map { max(1, Int(Double(distinct) * $0 * unit)) }
    }

    private func printTable(trace: Trace, requests: Int, policies: [ReplayPolicy], sizes: [Int], results: [ReplayResult]) {
        print("trace \(trace.name): \(requests) requests, \(trace.distinctKeys) distinct keys; hit ratio %, default policy: \(ReplayPolicy.default.rawValue)")
        let header = ["size".padding(toLength: 12, withPad: " ", startingAt: 0)]
            + policies.map { $0.rawValue.leftPadded(15) }
        print(header.joined())
        for size in sizes {
            var row = String(size).padding(toLength: 12, withPad: " ", startingAt: 0)
            for policy in policies {
                let ratio = results.first { $0.policy == policy && $0.size == size }?.hitRatio ?? 0
                row += String(format: "%.2f", ratio * 100).leftPadded(15)
            }
            print(row)
        }
    }

    private func printJSON(trace: Trace, requests: Int, results: [ReplayResult]) {
        // `jsonLine` writes the names in snake case: `default_policy`, `hit_ratio`.
        struct Output: Encodable {
            struct Row: Encodable {
                var policy: String, size: Int, hitRatio: Double
            }
            var trace: String, requests: Int, defaultPolicy: String, results: [Row]
        }
        let output = Output(
            trace: trace.name,
            requests: requests,
            defaultPolicy: ReplayPolicy.default.rawValue,
            results: results.map {
                // Four decimals, as a percentage with two: more would be noise across runs.
                Output.Row(policy: $0.policy.rawValue, size: $0.size, hitRatio: ($0.hitRatio * 10_000).rounded() / 10_000)
            }
        )
        print((try? jsonLine(output)) ?? "{}")
    }
}

extension String {
    fileprivate func leftPadded(_ width: Int) -> String {
        count >= width ? " " + self : String(repeating: " ", count: width - count) + self
    }
}

/// A progress bar on standard error, redrawn at most ten times a second.
///
/// The replay loop calls it synchronously on one thread; `@unchecked Sendable` is safe because nothing else
/// touches it.
final class ProgressBar: @unchecked Sendable {
    private let enabled: Bool
    private let total: Int
    private(set) var completed = 0
    var label = ""
    private var lastDraw = ContinuousClock.now

    init(enabled: Bool, total: Int) {
        // Only draw on a terminal: a bar in a log file is noise.
        self.enabled = enabled && isatty(STDERR_FILENO) == 1
        self.total = max(total, 1)
    }

    func update(_ completed: Int) {
        self.completed = completed
        guard enabled else { return }
        let now = ContinuousClock.now
        guard now - lastDraw >= .milliseconds(100) else { return }
        lastDraw = now
        draw()
    }

    func finish() {
        guard enabled else { return }
        completed = total
        draw()
        FileHandle.standardError.write(Data("\n".utf8))
    }

    private func draw() {
        let fraction = min(1, Double(completed) / Double(total))
        let width = 40
        let filled = Int(fraction * Double(width))
        let bar = String(repeating: "█", count: filled) + String(repeating: "·", count: width - filled)
        let line = "\r\(bar) \(String(format: "%5.1f", fraction * 100))% \(label)\u{1B}[K"
        FileHandle.standardError.write(Data(line.utf8))
    }
}
