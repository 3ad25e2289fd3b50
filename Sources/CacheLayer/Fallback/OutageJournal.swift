/// What a ``FallbackCache`` changed in memory while its backend did not get the change: the keys written or deleted,
/// `clear()`, and tag and prefix invalidations, to be replayed (or invalidated) in the backend on recovery.
///
/// A value type driven by events, testable without a backend; the fallback cache keeps it behind its lock.
///
/// - Every record carries a version from one counter, so a replay can tell whether the entry changed while it was in
///   flight: ``completeKeys(_:)`` and friends forget an entry only if its version is the one replayed.
/// - Bounded: past ``maxKeys`` distinct keys, the journal forgets them and records a clear of the whole namespace
///   instead (``overflowed`` says so once, for one log line). Clearing on recovery removes every value the backend
///   kept from before the outage, so none can be newer-looking than a write made meanwhile; the keys are a miss after
///   recovery, never an older value.
package struct OutageJournal: Sendable, Equatable {
    /// A tag or prefix invalidation to replay.
    package enum Invalidation: Sendable, Equatable {
        case tag(String)
        case prefix(String)
    }

    /// A key to replay, with the version of its latest record.
    package struct KeyRecord: Sendable, Equatable {
        package let key: String
        package let version: UInt64
        /// The tags of the writes recorded for the key (their union, as the backend's tag sets would have grown).
        package let tags: Set<String>
    }

    /// A journaled invalidation with the version of its record.
    package struct InvalidationRecord: Sendable, Equatable {
        package let version: UInt64
        package let invalidation: Invalidation
    }

    /// One pass of replay, in the order it must run: the clear, the invalidations in call order, then the keys in
    /// batches (keys last: they carry memory's latest state, which already reflects the clear and invalidations).
    package struct Plan: Sendable, Equatable {
        package var clear: UInt64?
        package var invalidations: [InvalidationRecord]
        package var batches: [[KeyRecord]]
    }

    /// The most distinct keys remembered before degrading to a clear of the namespace.
    package let maxKeys: Int
    private var keys: [String: UInt64] = [:]
    private var tags: [String: Set<String>] = [:]
    /// The version of a `clear()` (or overflow) the backend has not seen yet.
    package private(set) var clearVersion: UInt64? = nil
    private var invalidations: [InvalidationRecord] = []
    private var version: UInt64 = 0
    /// Whether the bound was passed since the last ``takeOverflowNotice()``.
    package private(set) var overflowed = false

    package init(maxKeys: Int) {
        precondition(maxKeys >= 1, "the journal must hold at least one key")
        self.maxKeys = maxKeys
    }

    /// Nothing to replay.
    package var isEmpty: Bool { keys.isEmpty && clearVersion == nil && invalidations.isEmpty }

    /// Keys awaiting replay.
    package var keyCount: Int { keys.count }

    /// Whether every key must stay in memory until the replay: a clear or invalidation awaits it (any key may be
    /// concerned).
    package var concernsEveryKey: Bool { clearVersion != nil || !invalidations.isEmpty }

    /// Whether `key` has a record awaiting replay.
    package func contains(_ key: String) -> Bool { keys[key] != nil }

    /// The version of `key`'s latest record.
    package func version(of key: String) -> UInt64? { keys[key] }

    /// Records a write (or a delete: the replay reads memory to know which) of `key`.
    package mutating func record(_ key: String, tags newTags: Set<String> = []) {
        if keys[key] == nil, keys.count >= maxKeys {
            recordClear()
            overflowed = true
        }
        version += 1
        keys[key] = version
        if !newTags.isEmpty { tags[key, default: []].formUnion(newTags) }
    }

    /// Records `clear()`: it supersedes every key and invalidation recorded so far.
    package mutating func recordClear() {
        version += 1
        clearVersion = version
        keys.removeAll()
        tags.removeAll()
        invalidations.removeAll()
    }

    /// Records a tag or prefix invalidation.
    package mutating func recordInvalidation(_ invalidation: Invalidation) {
        version += 1
        invalidations.append(InvalidationRecord(version: version, invalidation: invalidation))
    }

    /// What to replay now, keys in batches of at most `batchSize` (sorted, so a plan is deterministic).
    package func plan(batchSize: Int) -> Plan {
        precondition(batchSize >= 1)
        let records = keys.keys.sorted().map { KeyRecord(key: $0, version: keys[$0]!, tags: tags[$0] ?? []) }
        var batches: [[KeyRecord]] = []
        batches.reserveCapacity(records.count / batchSize + 1)
        var start = 0
        while start < records.count {
            let end = min(start + batchSize, records.count)
            batches.append(Array(records[start..<end]))
            start = end
        }
        return Plan(clear: clearVersion, invalidations: invalidations, batches: batches)
    }

    /// The clear of `version` reached the backend.
    package mutating func completeClear(_ version: UInt64) {
        if clearVersion == version { clearVersion = nil }
    }

    /// The invalidation of `version` reached the backend.
    package mutating func completeInvalidation(_ version: UInt64) {
        invalidations.removeAll { $0.version == version }
    }

    /// The keys reached the backend; returns those forgotten (a key recorded again meanwhile stays, for the next pass).
    @discardableResult
    package mutating func completeKeys(_ records: [KeyRecord]) -> [String] {
        var completed: [String] = []
        for record in records where keys[record.key] == record.version {
            keys.removeValue(forKey: record.key)
            tags.removeValue(forKey: record.key)
            completed.append(record.key)
        }
        return completed
    }

    /// Whether the bound was passed since the last call (so the caller logs it once), and forgets that it was.
    package mutating func takeOverflowNotice() -> Bool {
        defer { overflowed = false }
        return overflowed
    }
}
