import ArgumentParser

/// The defaults a command gives its ``WorkloadOptions``.
protocol WorkloadDefaults {
    static var keys: Int { get }
    static var zipf: Double { get }
    static var concurrency: Int { get }
    static var maxMemory: Int { get }
}

/// The options of the commands that run a generated workload on a memory-limited cache (`bench`, `demo`): how many
/// keys, how skewed their popularity, how many concurrent callers, and the memory cache's limit. One set of help
/// texts and limits; each command gives its own defaults.
struct WorkloadOptions<Defaults: WorkloadDefaults>: ParsableArguments {
    @Option(help: "Distinct keys in the workload.")
    var keys: Int = Defaults.keys

    @Option(help: "Zipf exponent of key popularity (0 = uniform).")
    var zipf: Double = Defaults.zipf

    @Option(help: "Concurrent callers (worker tasks).")
    var concurrency: Int = Defaults.concurrency

    @Option(name: .customLong("max-memory"), help: "Memory limit of the memory cache, in bytes.")
    var maxMemory: Int = Defaults.maxMemory

    func validate() throws {
        guard (1...50_000_000).contains(keys) else { throw ValidationError("--keys must be between 1 and 50,000,000.") }
        guard zipf >= 0, zipf <= 10 else { throw ValidationError("--zipf must be between 0 and 10.") }
        guard (1...4096).contains(concurrency) else { throw ValidationError("--concurrency must be between 1 and 4096.") }
        guard maxMemory > 0 else { throw ValidationError("--max-memory must be positive.") }
    }
}
