import ArgumentParser

@main
struct CacheLayerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cachelayer",
        abstract: "Demonstrates and benchmarks swift-cache-layer.",
        discussion: "Without a subcommand, runs the demonstration on the embedded memory backend.",
        subcommands: [
            DemoCommand.self, BenchCommand.self, CompareCommand.self, BatchBenchCommand.self, ReplayCommand.self, ReplaySuiteCommand.self, RedisBenchCommand.self, OutageDemoCommand.self, ClusterDemoCommand.self, CoherenceCommand.self,
        ],
        defaultSubcommand: DemoCommand.self
    )
}
