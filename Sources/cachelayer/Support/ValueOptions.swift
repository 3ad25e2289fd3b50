import ArgumentParser

/// `--value-size`, for the commands that store generated string values (`bench`, `batch-bench`): one help text and
/// one limit.
struct ValueOptions: ParsableArguments {
    @Option(name: .customLong("value-size"), help: "Bytes per value (a string of this length).")
    var size: Int = 100

    func validate() throws {
        guard (0...64 * 1024 * 1024).contains(size) else { throw ValidationError("--value-size must be between 0 and 64 MiB.") }
    }
}
