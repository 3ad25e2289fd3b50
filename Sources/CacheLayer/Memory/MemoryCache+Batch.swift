// Batches on the memory cache: a memory cache has no round trip to save, so a batch is a plain loop of the
// synchronous single-key operations, with no tasks started (the protocol's defaults run up to 16 calls at once,
// which on memory costs more than the calls themselves).

extension MemoryCache {
    /// The live values stored under `keys`, by key; absent, expired and duplicate keys are left out.
    ///
    /// Throws ``CacheError/Code/typeMismatch`` when a value of another type is stored under one of them.
    public func getMany<Value: Codable & Sendable>(_ keys: [String], as type: Value.Type) async throws -> [String: Value] {
        var found: [String: Value] = [:]
        found.reserveCapacity(keys.count)
        for key in distinct(keys) {
            if let value = try getValue(key, as: Value.self) { found[key] = value }
        }
        return found
    }

    /// Stores every value of `entries`, all with the same time to live; stops at the first entry that cannot be stored
    /// (the entries before it stay stored).
    public func setMany<Value: Codable & Sendable>(_ entries: [String: Value], ttl: Duration?) async throws {
        for (key, value) in entries { try setValue(key, value, ttl: ttl) }
    }

    /// Removes every key of `keys`; absent keys are not an error.
    public func deleteMany(_ keys: [String]) async throws {
        for key in keys { try deleteValue(key) }
    }
}
