import ArgumentParser
import CacheLayer
import Foundation
import Logging

/// `cachelayer batch-bench`: what batching and warming buy on a real backend.
struct BatchBenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "batch-bench",
        abstract: "Compare getMany with a loop of get, and measure warming, on a cache backend.",
        discussion: "Stores --keys values, then times one getMany of all of them against a loop of get, --rounds times each; then warms --warm-entries entries."
    )

    @OptionGroup var target: BackendOptions

    @Option(help: "Keys read per batch.")
    var keys: Int = 1_000

    @Option(help: "Batches timed for each of getMany and the loop of get.")
    var rounds: Int = 20

    @Option(name: .customLong("warm-entries"), help: "Entries written by warm(entries:); 0 skips warming.")
    var warmEntries: Int = 100_000

    @OptionGroup var values: ValueOptions

    func validate() throws {
        guard keys >= 1, rounds >= 1, warmEntries >= 0 else {
            throw ValidationError("--keys and --rounds must be at least 1; --warm-entries 0 or more.")
        }
    }

    func run() async throws {
        var configuration = try target.configuration()
        configuration.name = "batch-bench"
        configuration.namespace = target.backend == .redis ? "batch-bench" : nil
        configuration.maxMemorySize = 1 << 30
        let cache = try await makeCache(configuration, logger: Logger(label: "cachelayer.batch-bench"))
        let value = String(repeating: "v", count: values.size)
        let names = (0..<keys).map { "batch:\($0)" }
        try await cache.setMany(Dictionary(uniqueKeysWithValues: names.map { ($0, value) }), ttl: .seconds(600))

        let clock = ContinuousClock()
        var batched = Duration.zero
        var looped = Duration.zero
        for _ in 0..<rounds {
            var start = clock.now
            let found = try await cache.getMany(names, as: String.self)
            batched += clock.now - start
            guard found.count == keys else { throw DemoError("getMany found \(found.count) of \(keys) keys") }
            start = clock.now
            for name in names { _ = try await cache.get(name, as: String.self) }
            looped += clock.now - start
        }
        let batchMs = Double(batched / .microseconds(1)) / 1000 / Double(rounds)
        let loopMs = Double(looped / .microseconds(1)) / 1000 / Double(rounds)
        let comparison = loopMs >= batchMs
            ? String(format: "getMany is %.1fx faster", loopMs / batchMs)
            : String(format: "getMany takes %.1fx the loop's time (no round trips to save on this backend)", batchMs / loopMs)
        print(String(format: "getMany of %d keys: %.3f ms; loop of get: %.3f ms; ", keys, batchMs, loopMs) + comparison)

        if warmEntries > 0 {
            let entries = (0..<warmEntries).lazy.map { (key: "warm:\($0)", value: value) }
            let report = await cache.warm(entries: entries, ttl: .seconds(600))
            print(String(format: "warmed %d entries (%d failed) in %.2f s: %.0f entries/s", report.succeeded, report.failed, Double(report.duration / .milliseconds(1)) / 1000, report.entriesPerSecond))
        }
        try await cache.clear()
        try await cache.close()
    }
}
