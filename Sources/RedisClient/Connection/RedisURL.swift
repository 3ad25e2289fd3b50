/// A parsed Redis URL: `redis://[[user]:password@]host[:port][/db][?option=value&…]`, or `rediss://…` for TLS.
///
/// The one parser of Redis URLs in this package: ``RedisConnectionConfiguration/init(url:tls:)-(String,_)`` and the cache's
/// configuration both read URLs through it, so a URL means the same everywhere.
///
/// - User name and password may be percent-encoded (`p%40ss` is `p@ss`); a `%` not followed by two hex digits
///   is an error rather than a guess.
/// - `redis://secret@host` (no colon) is the historical form of a password without a user.
/// - IPv6 hosts are written in brackets: `redis://[::1]:6379`.
/// - The path, if any, is the database number; the `db` option says the same.
/// - Options: `db`, `connect_timeout` and `command_timeout` (a number followed by `ms` or `s`, e.g. `250ms`).
///   An unknown option is an error, so a misspelt one does not silently do nothing.
///
/// Errors never contain the password: messages show the URL with it replaced by `***`.
///
/// ```swift
/// let url = try RedisURL("rediss://app:s3cr%21t@cache.internal:6380/2?command_timeout=500ms")
/// // url.host == "cache.internal", url.port == 6380, url.password == "s3cr!t", url.database == 2
/// ```
public struct RedisURL: Sendable, Hashable {
    /// Whether the scheme is `rediss` (TLS).
    public var tls: Bool
    /// The host name or IP address, without brackets for IPv6.
    public var host: String
    /// The TCP port; 6379 when the URL gives none.
    public var port: Int
    /// The ACL user name, if any.
    public var username: String?
    /// The password, if any.
    public var password: String?
    /// The database number; 0 when the URL gives none.
    public var database: Int
    /// The `connect_timeout` option, if given.
    public var connectTimeout: Duration?
    /// The `command_timeout` option, if given.
    public var commandTimeout: Duration?

    /// The options a URL may carry after `?`.
    public static let supportedOptions = ["db", "connect_timeout", "command_timeout"]

    /// Parses `text`.
    ///
    /// - Throws: ``RedisError/Code/invalidConfiguration`` saying what is wrong, with the password redacted.
    public init(_ text: String) throws(RedisError) {
        func invalid(_ why: String) -> RedisError {
            RedisError(
                code: .invalidConfiguration,
                message: "invalid Redis URL \"\(Self.redacted(text))\": \(why). Use redis://[user:password@]host[:port][/db] or rediss://… for TLS"
            )
        }
        var rest = Substring(text)
        if rest.hasPrefix("redis://") {
            tls = false
            rest = rest.dropFirst("redis://".count)
        } else if rest.hasPrefix("rediss://") {
            tls = true
            rest = rest.dropFirst("rediss://".count)
        } else {
            throw invalid("the scheme must be redis:// or rediss://")
        }

        var query: Substring = ""
        if let mark = rest.firstIndex(of: "?") {
            query = rest[rest.index(after: mark)...]
            rest = rest[..<mark]
        }
        var path: Substring = ""
        if let slash = rest.firstIndex(of: "/") {
            path = rest[rest.index(after: slash)...]
            rest = rest[..<slash]
        }

        username = nil
        password = nil
        if let at = rest.lastIndex(of: "@") {
            let userInfo = rest[..<at]
            rest = rest[rest.index(after: at)...]
            guard let decoded = Self.decodeUserInfo(userInfo) else {
                throw invalid("the user name or password has a % that is not followed by two hex digits; encode % as %25")
            }
            (username, password) = decoded
        }

        var host = rest
        port = 6379
        if rest.hasPrefix("[") {
            guard let close = rest.firstIndex(of: "]") else { throw invalid("the IPv6 address has no closing ]") }
            host = rest[rest.index(after: rest.startIndex)..<close]
            let after = rest[rest.index(after: close)...]
            if !after.isEmpty {
                guard after.hasPrefix(":") else { throw invalid("expected :port after the IPv6 address") }
                port = try Self.port(after.dropFirst(), or: invalid("the port must be a number from 1 to 65535"))
            }
        } else if let colon = rest.lastIndex(of: ":") {
            host = rest[..<colon]
            port = try Self.port(rest[rest.index(after: colon)...], or: invalid("the port must be a number from 1 to 65535"))
        }
        guard !host.isEmpty else { throw invalid("the host is missing") }
        self.host = String(host)

        database = 0
        if !path.isEmpty {
            guard Self.isDigits(path), let number = Int(path) else { throw invalid("the path \"/\(path)\" must be a database number from 0") }
            database = number
        }

        connectTimeout = nil
        commandTimeout = nil
        for pair in query.split(separator: "&", omittingEmptySubsequences: true) {
            let name: Substring
            let value: Substring
            if let equals = pair.firstIndex(of: "=") {
                name = pair[..<equals]
                value = pair[pair.index(after: equals)...]
            } else {
                name = pair
                value = ""
            }
            switch name {
            case "db":
                guard Self.isDigits(value), let number = Int(value) else { throw invalid("db=\(value) must be a database number from 0") }
                database = number
            case "connect_timeout", "command_timeout":
                guard let duration = Self.duration(value) else {
                    throw invalid("\(name)=\(value) must be a positive number followed by ms or s, e.g. 500ms")
                }
                if name == "connect_timeout" { connectTimeout = duration } else { commandTimeout = duration }
            default:
                throw invalid("unknown option \"\(name)\"; supported: \(Self.supportedOptions.joined(separator: ", "))")
            }
        }
    }

    /// `host:port`, with brackets around an IPv6 host.
    public var address: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }

    /// `text` with the password (or the lone secret of `redis://secret@host`) replaced by `***`, for messages.
    public static func redacted(_ text: String) -> String {
        guard let scheme = text.firstRange(of: "://") else {
            // Not a URL (no scheme), but it may still hold credentials: keep only what follows the last `@`.
            guard let at = text.lastIndex(of: "@") else { return text }
            return "***" + text[at...]
        }
        let authorityEnd = text[scheme.upperBound...].firstIndex { $0 == "/" || $0 == "?" } ?? text.endIndex
        guard let at = text[scheme.upperBound..<authorityEnd].lastIndex(of: "@") else { return text }
        let userInfo = text[scheme.upperBound..<at]
        if let colon = userInfo.firstIndex(of: ":") {
            return text[..<scheme.upperBound] + userInfo[..<colon] + ":***" + text[at...]
        }
        return text[..<scheme.upperBound] + "***" + text[at...]
    }

    private static func decodeUserInfo(_ userInfo: Substring) -> (username: String?, password: String?)? {
        if let colon = userInfo.firstIndex(of: ":") {
            guard let user = percentDecoded(userInfo[..<colon]), let secret = percentDecoded(userInfo[userInfo.index(after: colon)...]) else {
                return nil
            }
            return (user.isEmpty ? nil : user, secret)
        }
        if userInfo.isEmpty { return (nil, nil) }
        guard let secret = percentDecoded(userInfo) else { return nil }
        return (nil, secret)
    }

    /// Decodes `%XX` escapes; `nil` when a `%` is not followed by two hex digits.
    static func percentDecoded(_ text: Substring) -> String? {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(text.utf8.count)
        var iterator = text.utf8.makeIterator()
        while let byte = iterator.next() {
            guard byte == UInt8(ascii: "%") else {
                bytes.append(byte)
                continue
            }
            guard let high = iterator.next().flatMap(hexValue), let low = iterator.next().flatMap(hexValue) else { return nil }
            bytes.append(high << 4 | low)
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    private static func isDigits(_ text: Substring) -> Bool {
        !text.isEmpty && text.utf8.allSatisfy { (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) }
    }

    private static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
        default: nil
        }
    }

    private static func port(_ text: Substring, or error: RedisError) throws(RedisError) -> Int {
        guard isDigits(text), let port = Int(text), (1...65535).contains(port) else { throw error }
        return port
    }

    private static func duration(_ text: Substring) -> Duration? {
        let (digits, scale): (Substring, Int64) =
            if text.hasSuffix("ms") { (text.dropLast(2), 1) } else if text.hasSuffix("s") { (text.dropLast(1), 1000) } else { ("", 0) }
        guard scale > 0, isDigits(digits), let amount = Int64(digits), amount > 0, amount <= Int64.max / 1000 else { return nil }
        return .milliseconds(amount * scale)
    }
}
