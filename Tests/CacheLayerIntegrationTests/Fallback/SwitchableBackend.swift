import CommonSupport
import RedisClient
import CacheLayer
import Foundation
import Synchronization

/// A backend double for the fallback logic: stores JSON bytes like Redis does, and can be switched off
/// to fail every call with `unavailable`. Real Redis faults are tested in the Redis fault-injection suite;
/// this double makes the replay and breaker decisions deterministic.
final class SwitchableBackend: Cache {
    private struct State {
        var values: [String: [UInt8]] = [:]
        var isUp = true
        var calls = 0
        var stats = CacheStats()
        var onSet: (@Sendable (String) async -> Void)? = nil
        var onGet: (@Sendable (String) async -> Void)? = nil
        var onDelete: (@Sendable (String) async -> Void)? = nil
    }

    private let state = Locked(State())
    let patterns = CachePatternsState(backend: "switchable")

    var isUp: Bool {
        get { state.withLock { $0.isUp } }
        set { state.withLock { $0.isUp = newValue } }
    }

    /// The raw stored bytes, bypassing availability.
    func storedBytes(_ key: String) -> [UInt8]? {
        state.withLock { $0.values[key] }
    }

    /// Calls that reached the backend (successful or not).
    var calls: Int { state.withLock { $0.calls } }

    /// The raw stored value, bypassing availability (what "Redis" holds).
    func stored(_ key: String) -> String? {
        state.withLock { $0.values[key].map { String(decoding: $0, as: UTF8.self) } }
    }

    /// Runs `hook` in every `set`, after the availability check and before the value is stored, so a test can act
    /// while a write is in flight.
    func setOnSet(_ hook: (@Sendable (String) async -> Void)?) {
        state.withLock { $0.onSet = hook }
    }

    /// Runs `hook` in every `get` after the value was read and before it is returned, so a test can act while a
    /// read is in flight.
    func setOnGet(_ hook: (@Sendable (String) async -> Void)?) {
        state.withLock { $0.onGet = hook }
    }

    /// Runs `hook` in every `delete` before the key is removed.
    func setOnDelete(_ hook: (@Sendable (String) async -> Void)?) {
        state.withLock { $0.onDelete = hook }
    }

    private func enter() throws {
        try state.withLock { state in
            state.calls += 1
            guard state.isUp else { throw CacheError.unavailable("backend switched off") }
        }
    }

    func get<Value: Codable & Sendable>(_ key: String, as type: Value.Type) async throws -> Value? {
        try enter()
        let bytes = state.withLock { $0.values[key] }
        if let hook = state.withLock({ $0.onGet }) { await hook(key) }
        guard let bytes else { return nil }
        // As a byte-storing conformance should: values fail-safe stored with their times read through.
        return try patterns.decode(type, from: bytes, with: JSONCacheCodec())
    }

    func set<Value: Codable & Sendable>(_ key: String, to value: Value, ttl: Duration?) async throws {
        try enter()
        let bytes = try patterns.encode(value, with: JSONCacheCodec())
        if let hook = state.withLock({ $0.onSet }) { await hook(key) }
        state.withLock { $0.values[key] = bytes }
    }

    func delete(_ key: String) async throws {
        try enter()
        if let hook = state.withLock({ $0.onDelete }) { await hook(key) }
        state.withLock { _ = $0.values.removeValue(forKey: key) }
    }

    func exists(_ key: String) async throws -> Bool {
        try enter()
        return state.withLock { $0.values[key] != nil }
    }

    func clear() async throws {
        try enter()
        state.withLock { $0.values.removeAll() }
    }

    func setIfAbsent<Value: Codable & Sendable>(_ key: String, to value: Value, ttl: Duration?) async throws -> Bool {
        try enter()
        let bytes = try patterns.encode(value, with: JSONCacheCodec())
        return state.withLock { state in
            guard state.values[key] == nil else { return false }
            state.values[key] = bytes
            return true
        }
    }

    /// Raw bytes, kept as they are (as Redis keeps them).
    func setBytes(_ key: String, to bytes: [UInt8], ttl: Duration?) async throws {
        try enter()
        state.withLock { $0.values[key] = bytes }
    }

    func getBytes(_ key: String) async throws -> [UInt8]? {
        try enter()
        return state.withLock { $0.values[key] }
    }

    func stats() async -> CacheStats { state.withLock { $0.stats } }

    func close() async throws {}

    func ping() async throws { try enter() }
}
