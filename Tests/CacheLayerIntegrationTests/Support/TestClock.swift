import CommonSupport
import RedisClient
@testable import CacheLayer
import Foundation
import Synchronization

/// A wall clock that only moves when a test moves it.
final class TestClock: Sendable {
    private let current: Locked<Date>

    init(_ start: Date = Date(timeIntervalSince1970: 1_700_000_000)) {
        current = Locked(start)
    }

    var now: Date { current.withLock { $0 } }

    func advance(by duration: Duration) {
        let seconds = Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
        current.withLock { $0 += seconds }
    }
}

/// The memory cache reading a ``TestClock``, so plain TTLs and `getOrSet` envelopes expire together.
struct TestCacheClock: CacheClock {
    let clock: TestClock

    func now() -> UInt64 { UInt64(clock.now.timeIntervalSince1970 * 1_000_000_000) }
}
