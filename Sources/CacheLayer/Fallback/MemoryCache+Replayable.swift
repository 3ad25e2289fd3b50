extension MemoryCache {
    /// The live value under `key` with its remaining time to live, for replaying writes made during an
    /// outage to the backend. Counts neither a hit nor a miss.
    package func replayableEntry(_ key: String) throws -> (value: any Codable & Sendable, ttl: Duration?)? {
        guard let (value, remainingNanoseconds) = try peekValue(key) else { return nil }
        let ttl = remainingNanoseconds.map { Duration.nanoseconds(Int64(clamping: $0)) }
        // Replayed as itself, so the backend frames it as an envelope and plain reads there still see through it.
        if let envelope = value as? any AnyCacheEnvelope { return (envelope, ttl) }
        // Bytes from `setBytes` go back as they are (the fallback cache writes them with `setBytes`).
        if let bytes = value as? StoredBytes { return (bytes, ttl) }
        guard let encodable = value as? any Encodable else {
            // Only `set`, which requires Codable, stores values the fallback cache replays.
            throw CacheError(code: .encodingFailed, key: key, message: "The value in memory is not Encodable, so it cannot be written to the backend.")
        }
        return (ReplayedValue(base: encodable), ttl)
    }
}

/// A stored value on its way back to the backend: encodes exactly as the value itself.
///
/// `@unchecked Sendable` is safe: `base` was stored as `any Sendable` by `set` (which requires `Sendable`);
/// only the dynamic cast to `Encodable` lost that fact, because `Sendable` cannot be part of a cast.
private struct ReplayedValue: Codable, @unchecked Sendable {
    let base: any Encodable

    init(base: any Encodable) { self.base = base }

    func encode(to encoder: any Encoder) throws { try base.encode(to: encoder) }

    init(from decoder: any Decoder) throws {
        throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "A replayed value is only ever encoded."))
    }
}
