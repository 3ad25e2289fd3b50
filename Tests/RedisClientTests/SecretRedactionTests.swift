import RedisClient
import Testing

/// Passwords never appear in errors or descriptions.
@Suite("Secrets are redacted")
struct SecretRedactionTests {
    static let password = "Sup3r-Secret-pw"

    @Test("an invalid URL's error does not repeat the password", arguments: [
        "redis://user:Sup3r-Secret-pw@cache.internal:notaport/0",
        "redis://:Sup3r-Secret-pw@cache.internal:6379/notadb",
        "redis://Sup3r-Secret-pw@cache.internal:99999",
        "rediss://user:Sup3r-Secret-pw@[::1/0",
        "http://user:Sup3r-Secret-pw@cache.internal:6379",
        "user:Sup3r-Secret-pw@cache.internal:6379",
        "redis:/user:Sup3r-Secret-pw@cache.internal:6379",
    ])
    func urlErrorsAreRedacted(url: String) {
        do {
            _ = try RedisConnectionConfiguration(url: url)
            Issue.record("expected the URL to be refused")
        } catch {
            #expect(!"\(error)".contains(Self.password), "\(error)")
            #expect(!String(reflecting: error).contains(Self.password))
        }
    }

    @Test("a configuration's description, debug description and dump do not show the password")
    func configurationDescriptionsAreRedacted() throws {
        let configuration = try RedisConnectionConfiguration(url: "redis://user:\(Self.password)@cache.internal:6379/2")
        #expect(configuration.password == Self.password)
        var dumped = ""
        dump(configuration, to: &dumped)
        for text in ["\(configuration)", String(reflecting: configuration), dumped] {
            #expect(!text.contains(Self.password), "\(text)")
            #expect(text.contains("cache.internal"))
        }
    }
}
