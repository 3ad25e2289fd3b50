import CommonSupport
import Metrics
import Synchronization

/// The hook through which a built-in backend reports the latency of a sample of its `get` and `set` calls to the timers of
/// a running ``CacheMetricsReporter``.
///
/// Timing every call would cost two clock reads per operation, too much on the memory cache's ~100 ns `get`.
/// Backends time one call in ``sampleInterval`` instead:
///
/// ```swift
/// let sampler = patterns.latency
/// let start: ContinuousClock.Instant? = sampler.shouldSample() ? .now : nil
/// defer { if let start { sampler.recordGet(.now - start) } }
/// ```
///
/// While no reporter is running, ``shouldSample()`` is one relaxed atomic load that returns `false`.
/// While one runs it also increments a shared atomic counter; a sharded backend may instead count in its shards
/// (under their locks) and check ``isEnabled`` only.
package final class CacheLatencySampler: Sendable {
    /// One call in this many is timed by ``shouldSample()``.
    package let sampleInterval: UInt64 = 64

    private let enabled = Atomic<Bool>(false)
    private let tick = Atomic<UInt64>(0)
    private let timers = Locked<(get: Metrics.Timer, set: Metrics.Timer)?>(nil)

    /// Created by ``CachePatternsState``.
    init() {}

    /// Whether a reporter is collecting latencies.
    package var isEnabled: Bool { enabled.load(ordering: .relaxed) }

    /// Whether to time this call: true for one call in ``sampleInterval`` while a reporter runs.
    package func shouldSample() -> Bool {
        guard enabled.load(ordering: .relaxed) else { return false }
        return tick.wrappingAdd(1, ordering: .relaxed).oldValue % sampleInterval == 0
    }

    /// Reports the duration of a sampled `get`.
    package func recordGet(_ duration: Duration) {
        timers.withLock { $0 }?.get.recordNanoseconds(duration.nanoseconds)
    }

    /// Reports the duration of a sampled `set`.
    package func recordSet(_ duration: Duration) {
        timers.withLock { $0 }?.set.recordNanoseconds(duration.nanoseconds)
    }

    /// Starts sending samples to these timers (called by the reporter when it starts).
    func install(get: Metrics.Timer, set: Metrics.Timer) {
        timers.withLock { $0 = (get, set) }
        enabled.store(true, ordering: .relaxed)
    }

    /// Stops sampling (called by the reporter when it stops).
    func uninstall() {
        enabled.store(false, ordering: .relaxed)
        timers.withLock { $0 = nil }
    }
}

extension Duration {
    /// The duration in whole nanoseconds, saturating at `Int64.max`.
    var nanoseconds: Int64 {
        let (seconds, attoseconds) = components
        let (secondsPart, overflow) = seconds.multipliedReportingOverflow(by: 1_000_000_000)
        if overflow { return seconds < 0 ? .min : .max }
        return secondsPart &+ attoseconds / 1_000_000_000
    }

    /// The duration in whole milliseconds, saturating at `Int64.max`.
    var milliseconds: Int64 {
        let (seconds, attoseconds) = components
        let (secondsPart, overflow) = seconds.multipliedReportingOverflow(by: 1000)
        if overflow { return seconds < 0 ? .min : .max }
        return secondsPart &+ attoseconds / 1_000_000_000_000_000
    }
}
