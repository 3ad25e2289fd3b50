import Histogram

/// Operation counts and a latency histogram (nanoseconds) for one kind of operation.
struct LatencyRecorder: Sendable {
    private(set) var histogram = Histogram<UInt64>(highestTrackableValue: 60_000_000_000, numberOfSignificantValueDigits: .three)
    private(set) var count = 0

    /// Records `operations` operations that each took `duration` (a pipelined batch counts once per command).
    mutating func record(_ duration: Duration, operations: Int = 1) {
        let (seconds, attoseconds) = duration.components
        let nanoseconds = UInt64(max(0, seconds)) * 1_000_000_000 + UInt64(max(0, attoseconds) / 1_000_000_000)
        _ = histogram.record(max(1, min(nanoseconds, 60_000_000_000)), count: UInt64(operations))
        count += operations
    }

    mutating func merge(_ other: LatencyRecorder) {
        histogram.add(other.histogram)
        count += other.count
    }

    /// The latency at `percentile` (0…100) in milliseconds.
    func milliseconds(atPercentile percentile: Double) -> Double {
        count == 0 ? 0 : Double(histogram.valueAtPercentile(percentile)) / 1_000_000
    }
}

/// Prints a progress line that rewrites itself on a terminal (stderr), so stdout stays clean for `--json`.
struct ProgressLine {
    private let total: Int
    private let label: String

    init(total: Int, label: String) {
        self.total = total
        self.label = label
    }

    func update(done: Int, detail: String) {
        let fraction = total == 0 ? 1 : min(1, Double(done) / Double(total))
        let width = 30
        let filled = Int(fraction * Double(width))
        let bar = String(repeating: "#", count: filled) + String(repeating: ".", count: width - filled)
        let percent = Int(fraction * 100)
        writeStandardError("\r\(label) [\(bar)] \(percent)% \(detail)\u{1B}[K")
    }

    func finish() { writeStandardError("\n") }
}
