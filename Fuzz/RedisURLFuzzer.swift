// libFuzzer entry point for the Redis URL parser; built by `scripts/fuzz url` together with RedisURL.swift,
// RedisError.swift and the RESP files RedisError needs.
//
// For every input (as UTF-8 text) it checks that RedisURL
// - never crashes or traps (ASan + libFuzzer),
// - accepts only what it can stand behind: port 1…65535, database ≥ 0, a non-empty host, positive timeouts,
// - never repeats the password in the URL an error message quotes,
// - parses its own canonical rendering of an accepted URL to the same value.

private let unreserved = Set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~".utf8)

private func percentEncoded(_ text: String) -> String {
    var out = ""
    for byte in text.utf8 {
        if unreserved.contains(byte) {
            out.unicodeScalars.append(Unicode.Scalar(byte))
        } else {
            let hex = String(byte, radix: 16, uppercase: true)
            out += "%" + (hex.count == 1 ? "0" + hex : hex)
        }
    }
    return out
}

/// The URL as this fuzzer writes it: every field explicit, user information percent-encoded.
private func rendered(_ url: RedisURL) -> String {
    var text = url.tls ? "rediss://" : "redis://"
    if url.username != nil || url.password != nil {
        text += percentEncoded(url.username ?? "")
        if let password = url.password { text += ":" + percentEncoded(password) }
        text += "@"
    }
    text += url.host.contains(":") ? "[\(url.host)]" : url.host
    text += ":\(url.port)/\(url.database)"
    var options: [String] = []
    if let timeout = url.connectTimeout { options.append("connect_timeout=\(timeout.components.seconds * 1000 + timeout.components.attoseconds / 1_000_000_000_000_000)ms") }
    if let timeout = url.commandTimeout { options.append("command_timeout=\(timeout.components.seconds * 1000 + timeout.components.attoseconds / 1_000_000_000_000_000)ms") }
    if !options.isEmpty { text += "?" + options.joined(separator: "&") }
    return text
}

/// The raw (still percent-encoded) password of `text`, if it has user information with a colon, and the rest of `text`.
private func rawPassword(_ text: String) -> (password: Substring, rest: String)? {
    guard let scheme = text.firstRange(of: "://") else { return nil }
    let afterScheme = text[scheme.upperBound...]
    let authorityEnd = afterScheme.firstIndex { $0 == "/" || $0 == "?" } ?? text.endIndex
    guard let at = text[scheme.upperBound..<authorityEnd].lastIndex(of: "@") else { return nil }
    let userInfo = text[scheme.upperBound..<at]
    guard let colon = userInfo.firstIndex(of: ":") else { return nil }
    let password = userInfo[userInfo.index(after: colon)...]
    return (password, String(text[..<password.startIndex]) + String(text[password.endIndex...]))
}

/// Whether the UTF-8 bytes of `text` contain those of `part` (byte-wise: no grapheme boundaries to hide behind).
private func containsBytes(_ text: some StringProtocol, _ part: some StringProtocol) -> Bool {
    let haystack = Array(text.utf8)
    let needle = Array(part.utf8)
    guard !needle.isEmpty, haystack.count >= needle.count else { return needle.isEmpty }
    for start in 0...(haystack.count - needle.count) where haystack[start..<(start + needle.count)].elementsEqual(needle) {
        return true
    }
    return false
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzRedisURL(_ start: UnsafeRawPointer?, _ count: Int) -> CInt {
    guard let start else { return 0 }
    let text = String(decoding: UnsafeRawBufferPointer(start: start, count: count), as: UTF8.self)
    do {
        let url = try RedisURL(text)
        precondition((1...65535).contains(url.port), "accepted port \(url.port)")
        precondition(url.database >= 0, "accepted database \(url.database)")
        precondition(!url.host.isEmpty, "accepted an empty host")
        precondition((url.connectTimeout ?? .seconds(1)) > .zero && (url.commandTimeout ?? .seconds(1)) > .zero, "accepted a timeout ≤ 0")
        let again = try RedisURL(rendered(url))
        precondition(again == url, "\(rendered(url)) parses to \(again), not \(url)")
    } catch {
        precondition(error.code == .invalidConfiguration, "unexpected error code \(error.code)")
        // Messages quote the URL as `RedisURL.redacted` shows it; that is what is checked (their fixed help text,
        // "[user:password@]", may happen to contain a short password). The password may legitimately appear
        // elsewhere in the URL (in the user name, the host…): only check when not.
        if let (password, rest) = rawPassword(text), password.utf8.count >= 4, !containsBytes(rest, password) {
            let shown = RedisURL.redacted(text)
            precondition(!containsBytes(shown, password), "the error repeats the password: \(shown)")
        }
    }
    return 0
}

// SwiftPM links executables with `main` aliased to `<module>_main`, so libFuzzer's own `main` is not used:
// provide that entry point and hand control to libFuzzer's driver.
@_silgen_name("LLVMFuzzerRunDriver")
private func LLVMFuzzerRunDriver(
    _ argc: UnsafeMutablePointer<CInt>,
    _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
    _ callback: @convention(c) (UnsafeRawPointer?, Int) -> CInt
) -> CInt

@_cdecl("RedisURLFuzzer_main")
public func fuzzerMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    var argc = argc
    var argv = argv
    return LLVMFuzzerRunDriver(&argc, &argv) { fuzzRedisURL($0, $1) }
}
