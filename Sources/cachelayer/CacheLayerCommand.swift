import ArgumentParser

@main
struct CacheLayerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cachelayer",
        abstract: "Demonstrates and benchmarks swift-cache-layer.",
        subcommands: [ReplayCommand.self]
    )

    func run() async throws {
        print("cachelayer: the demonstration is being built; see the README.")
    }
}
