/// One kind of operation in a benchmark's report: how many ran, how fast, and the latency percentiles.
/// Printed as a table row or, with `--json`, as `{"name", "operations", "ops_per_sec", "p50_ms", "p99_ms"}`.
struct OperationSummary: Encodable {
    var name: String
    var operations: Int
    var opsPerSec: Double
    var p50Ms: Double
    var p99Ms: Double

    /// The summary of `recorder`'s operations, which ran for `seconds` in all.
    init(name: String, recorder: LatencyRecorder, seconds: Double) {
        self.name = name
        operations = recorder.count
        opsPerSec = seconds > 0 ? Double(recorder.count) / seconds : 0
        p50Ms = recorder.milliseconds(atPercentile: 50)
        p99Ms = recorder.milliseconds(atPercentile: 99)
    }
}
