extension Cache {
    /// The default implementation: one ``get(_:as:)`` per distinct key, at most 16 at a time.
    public func getMany<Value: Codable & Sendable>(_ keys: [String], as type: Value.Type) async throws -> [String: Value] {
        var result: [String: Value] = [:]
        try await forEachConcurrently(distinct(keys), limit: defaultBatchConcurrency) { key in
            (key, try await self.get(key, as: Value.self))
        } onResult: { key, value in
            if let value { result[key] = value }
        }
        return result
    }

    /// The default implementation: one ``set(_:to:ttl:)`` per entry, at most 16 at a time.
    public func setMany<Value: Codable & Sendable>(_ entries: [String: Value], ttl: Duration?) async throws {
        try await forEachConcurrently(entries, limit: defaultBatchConcurrency) { entry in
            try await self.set(entry.key, to: entry.value, ttl: ttl)
        } onResult: { _ in }
    }

    /// The default implementation: one ``delete(_:)`` per distinct key, at most 16 at a time.
    public func deleteMany(_ keys: [String]) async throws {
        try await forEachConcurrently(distinct(keys), limit: defaultBatchConcurrency) { key in
            try await self.delete(key)
        } onResult: { _ in }
    }

    /// The values under `keys`, their type inferred from the context.
    public func getMany<Value: Codable & Sendable>(_ keys: [String]) async throws -> [String: Value] {
        try await getMany(keys, as: Value.self)
    }

    /// Stores every value of `entries` with the configured default TTL.
    public func setMany<Value: Codable & Sendable>(_ entries: [String: Value]) async throws {
        try await setMany(entries, ttl: nil)
    }
}

/// How many single-key operations the default batch implementations run at once.
let defaultBatchConcurrency = 16

/// `keys` without repetitions, in their first order.
func distinct(_ keys: [String]) -> [String] {
    var seen = Set<String>()
    seen.reserveCapacity(keys.count)
    return keys.filter { seen.insert($0).inserted }
}

/// Runs `operation` for every item with at most `limit` running at once, handing each result to `onResult` in the
/// calling task (in completion order). The first error cancels the rest and is rethrown.
func forEachConcurrently<Items: Sequence, Output: Sendable>(
    _ items: Items,
    limit: Int,
    operation: @escaping @Sendable (Items.Element) async throws -> Output,
    onResult: (Output) throws -> Void
) async throws where Items.Element: Sendable {
    try await withThrowingTaskGroup(of: Output.self) { group in
        var iterator = items.makeIterator()
        var running = 0
        while running < max(limit, 1), let item = iterator.next() {
            group.addTask { try await operation(item) }
            running += 1
        }
        while let output = try await group.next() {
            try onResult(output)
            if let item = iterator.next() {
                group.addTask { try await operation(item) }
            }
        }
    }
}
