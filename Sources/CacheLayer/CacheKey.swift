/// Rules for cache keys.
///
/// A key is any non-empty string of at most ``maximumLength`` bytes in UTF-8. Keys are compared byte for byte.
/// Use structured keys such as `"user:123:profile"`; they make prefix and tag invalidation easy.
public enum CacheKey {
    /// The longest key accepted, in UTF-8 bytes (1 KiB). Redis accepts longer keys, but long keys waste memory
    /// and bandwidth on every operation; hash a long identifier before using it as a key.
    public static let maximumLength = 1024

    /// Throws ``CacheError/Code/invalidKey`` when `key` is empty or too long.
    @inlinable
    public static func validate(_ key: String) throws(CacheError) {
        let length = key.utf8.count
        if length == 0 || length > maximumLength {
            throw invalid(key, length: length)
        }
    }

    @usableFromInline
    static func invalid(_ key: String, length: Int) -> CacheError {
        if length == 0 {
            return CacheError(code: .invalidKey, key: key, message: "The key is empty. Use a non-empty key such as \"user:123\".")
        }
        return CacheError(
            code: .invalidKey, key: String(key.prefix(64)) + "…",
            message: "The key is \(length) bytes long; the limit is \(maximumLength). Hash long identifiers into a shorter key."
        )
    }
}
