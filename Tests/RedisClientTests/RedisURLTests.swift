import Testing

@testable import RedisClient

@Suite("RedisURL")
struct RedisURLTests {
    @Test func aFullURLGivesEveryPart() throws {
        let url = try RedisURL("rediss://bob:p%40ss@cache.local:6380/4?connect_timeout=2s&command_timeout=250ms")
        #expect(url.tls)
        #expect(url.host == "cache.local" && url.port == 6380 && url.database == 4)
        #expect(url.username == "bob" && url.password == "p@ss")
        #expect(url.connectTimeout == .seconds(2))
        #expect(url.commandTimeout == .milliseconds(250))
        #expect(url.address == "cache.local:6380")
    }

    @Test func defaultsApplyWhenPartsAreMissing() throws {
        let url = try RedisURL("redis://cache.local")
        #expect(!url.tls && url.port == 6379 && url.database == 0)
        #expect(url.username == nil && url.password == nil)
        #expect(url.connectTimeout == nil && url.commandTimeout == nil)
    }

    @Test func aLoneSecretIsAPasswordAndAnEmptyUserIsNone() throws {
        let lone = try RedisURL("redis://secret@h")
        #expect(lone.username == nil && lone.password == "secret")
        let empty = try RedisURL("redis://:secret@h")
        #expect(empty.username == nil && empty.password == "secret")
        let userOnly = try RedisURL("redis://app:@h")
        #expect(userOnly.username == "app" && userOnly.password == "")
    }

    @Test func percentEscapesAreDecodedByteForByte() throws {
        // Multi-byte UTF-8, an encoded colon and at-sign, and upper- and lower-case hex.
        let url = try RedisURL("redis://us%3Aer:p%C3%A9%40%2f%2F@h")
        #expect(url.username == "us:er")
        #expect(url.password == "pé@//")
        // The last @ separates the credentials from the host, so a raw @ in a password still works.
        #expect(try RedisURL("redis://:a@b@h").password == "a@b")
    }

    @Test(arguments: ["redis://:p%zz@h", "redis://:p%4@h", "redis://:p%@h", "redis://u%g1:x@h"])
    func anInvalidEscapeIsAnErrorThatHidesThePassword(text: String) {
        let error = #expect(throws: RedisError.self) { try RedisURL(text) }
        #expect(error?.code == .invalidConfiguration)
        #expect(error?.message.contains("%25") == true, "the message says how to encode a %")
        #expect(error?.message.contains("p%") == false, "the password is redacted: \(error?.message ?? "")")
    }

    @Test func ipv6HostsAreBracketed() throws {
        let url = try RedisURL("redis://[::1]:7000/2")
        #expect(url.host == "::1" && url.port == 7000 && url.database == 2)
        #expect(url.address == "[::1]:7000")
        let noPort = try RedisURL("redis://[fe80::1]")
        #expect(noPort.host == "fe80::1" && noPort.port == 6379)
    }

    @Test func theDatabaseComesFromThePathOrTheOption() throws {
        #expect(try RedisURL("redis://h/7").database == 7)
        #expect(try RedisURL("redis://h?db=5").database == 5)
        #expect(try RedisURL("redis://h/?db=3").database == 3)
    }

    @Test(arguments: [
        "http://x", "redis://", "redis://h:0", "redis://h:99999", "redis://h:x", "redis://h:+80", "redis:///1",
        "redis://h/abc", "redis://h/-1", "redis://[::1", "redis://[::1]x", "redis://h?timeout=1s", "redis://h?db=x",
        "redis://h?command_timeout=5", "redis://h?connect_timeout=0ms", "redis://h?command_timeout=-1s",
    ])
    func malformedURLsAreInvalidConfiguration(text: String) {
        let error = #expect(throws: RedisError.self) { try RedisURL(text) }
        #expect(error?.code == .invalidConfiguration)
    }

    @Test func passwordsNeverAppearInMessages() {
        let error = #expect(throws: RedisError.self) { try RedisURL("redis://app:hunter2@h:0") }
        #expect(error?.message.contains("hunter2") == false)
        #expect(error?.message.contains("app:***@h:0") == true)
        #expect(RedisURL.redacted("redis://hunter2@h/1?db=2") == "redis://***@h/1?db=2")
        #expect(RedisURL.redacted("redis://h/1?x=a@b") == "redis://h/1?x=a@b", "an @ after the host is not a credential")
    }

    @Test func theConnectionConfigurationUsesTheParser() throws {
        let configuration = try RedisConnectionConfiguration(url: "redis://bob:p%40ss@[::1]:6380/4?command_timeout=1s")
        #expect(configuration.host == "::1" && configuration.port == 6380 && configuration.database == 4)
        #expect(configuration.username == "bob" && configuration.password == "p@ss")
        #expect(configuration.commandTimeout == .seconds(1))
        #expect(configuration.tls == nil)
        #expect(try RedisConnectionConfiguration(url: "rediss://h").tls != nil)
        #expect(throws: RedisError.self) { try RedisConnectionConfiguration(url: "redis://:p%zz@h") }
    }
}
