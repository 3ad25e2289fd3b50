import CommonSupport
import RedisClient
import CacheLayer
import Foundation
import Synchronization

/// A small, complete ``Cache`` over a dictionary behind a lock, with TTLs on an injected ``TestClock``, tags and
/// prefix invalidation. The reference backend for pattern tests until the real backends join the list.
final class DictionaryCache: Cache {
    private struct Entry {
        var value: any Sendable
        var size: Int
        var expiresAt: Date?
        var tags: Set<String>
    }

    private struct State {
        var entries: [String: Entry] = [:]
        var tagIndex: [String: Set<String>] = [:]
        var stats = CacheStats()
        var closed = false
    }

    let clock: TestClock
    let defaultTTL: Duration?
    let patterns: CachePatternsState
    private let state = Locked(State())

    init(clock: TestClock = TestClock(), name: String = "dictionary", defaultTTL: Duration? = .seconds(3600)) {
        self.clock = clock
        self.defaultTTL = defaultTTL
        self.patterns = CachePatternsState(name: name, backend: "dictionary", defaultTTL: defaultTTL, wallClock: { clock.now })
    }

    func get<Value: Codable & Sendable>(_ key: String, as type: Value.Type) async throws -> Value? {
        let sampler = patterns.latency
        let start: ContinuousClock.Instant? = sampler.shouldSample() ? .now : nil
        defer { if let start { sampler.recordGet(.now - start) } }
        try CacheKey.validate(key)
        let now = clock.now
        return try state.withLock { state throws(CacheError) -> Value? in
            guard !state.closed else { throw CacheError.closed(key: key) }
            guard let entry = state.entries[key] else {
                state.stats.misses += 1
                return nil
            }
            if let expiresAt = entry.expiresAt, expiresAt <= now {
                Self.remove(key, from: &state)
                state.stats.expirations += 1
                state.stats.misses += 1
                return nil
            }
            guard let value = entry.value as? Value else {
                // A value fail-safe or early refresh stored with its times reads as itself (or a miss once stale).
                guard let value = try patterns.value(in: entry.value, as: Value.self, key: key) else {
                    state.stats.misses += 1
                    return nil
                }
                state.stats.hits += 1
                return value
            }
            state.stats.hits += 1
            return value
        }
    }

    func set<Value: Codable & Sendable>(_ key: String, to value: Value, ttl: Duration?) async throws {
        try await set(key, to: value, ttl: ttl, tags: [])
    }

    func set<Value: Codable & Sendable>(_ key: String, to value: Value, ttl: Duration?, tags: Set<String>) async throws {
        let sampler = patterns.latency
        let start: ContinuousClock.Instant? = sampler.shouldSample() ? .now : nil
        defer { if let start { sampler.recordSet(.now - start) } }
        try CacheKey.validate(key)
        let expiresAt = try expiry(key, ttl: ttl)
        let size = (try? JSONCacheCodec().encode(value).count) ?? 0
        try state.withLock { state throws(CacheError) in
            guard !state.closed else { throw CacheError.closed(key: key) }
            Self.remove(key, from: &state)
            state.entries[key] = Entry(value: value, size: size, expiresAt: expiresAt, tags: tags)
            for tag in tags { state.tagIndex[tag, default: []].insert(key) }
            state.stats.sets += 1
        }
    }

    func delete(_ key: String) async throws {
        try CacheKey.validate(key)
        try state.withLock { state throws(CacheError) in
            guard !state.closed else { throw CacheError.closed(key: key) }
            Self.remove(key, from: &state)
            state.stats.deletes += 1
        }
    }

    func exists(_ key: String) async throws -> Bool {
        try CacheKey.validate(key)
        let now = clock.now
        return try state.withLock { state throws(CacheError) in
            guard !state.closed else { throw CacheError.closed(key: key) }
            guard let entry = state.entries[key] else { return false }
            return entry.expiresAt.map { $0 > now } ?? true
        }
    }

    func clear() async throws {
        try state.withLock { state throws(CacheError) in
            guard !state.closed else { throw CacheError.closed() }
            state.entries = [:]
            state.tagIndex = [:]
        }
    }

    func stats() async -> CacheStats {
        state.withLock { state in
            var stats = state.stats
            stats.entryCount = state.entries.count
            stats.size = state.entries.values.reduce(0) { $0 + $1.size }
            return stats
        }
    }

    func close() async throws {
        state.withLock { $0.closed = true }
    }

    var isClosed: Bool { state.withLock { $0.closed } }

    /// Calls of ``run()``.
    let runCalls = CallCounter()

    /// Background work of a third-party conformance: here none but counting, until cancelled.
    func run() async throws {
        runCalls.increment()
        while !Task.isCancelled {
            try? await Task.sleep(for: .seconds(3600))
        }
    }

    func invalidate(tag: String) async throws {
        try state.withLock { state throws(CacheError) in
            guard !state.closed else { throw CacheError.closed() }
            for key in state.tagIndex[tag] ?? [] where state.entries[key]?.tags.contains(tag) == true {
                Self.remove(key, from: &state)
            }
            state.tagIndex[tag] = nil
        }
    }

    func invalidate(prefix: String) async throws {
        try state.withLock { state throws(CacheError) in
            guard !state.closed else { throw CacheError.closed() }
            for key in state.entries.keys where key.utf8.starts(with: prefix.utf8) {
                Self.remove(key, from: &state)
            }
        }
    }

    private func expiry(_ key: String, ttl: Duration?) throws(CacheError) -> Date? {
        guard let ttl = ttl ?? defaultTTL else { return nil }
        if ttl <= .zero { throw CacheError.invalidTTL(key: key, ttl: ttl) }
        if ttl.isNoExpiry { return nil }
        let seconds = Double(ttl.components.seconds) + Double(ttl.components.attoseconds) / 1e18
        return clock.now.addingTimeInterval(seconds)
    }

    private static func remove(_ key: String, from state: inout State) {
        guard let entry = state.entries.removeValue(forKey: key) else { return }
        for tag in entry.tags { state.tagIndex[tag]?.remove(key) }
    }
}
