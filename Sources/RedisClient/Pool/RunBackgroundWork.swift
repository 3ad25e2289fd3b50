import ServiceLifecycle

/// What a client's `run()` loop does with one of its events.
enum BackgroundEventAction: Sendable {
    /// Run this work in the loop's task group.
    case start(@Sendable () async -> Void)
    /// Cancel every task of the group (the client is shutting down); the loop ends when `events` finishes.
    case cancelAll
}

/// A client's `run()` loop (the pool's, the cluster client's): runs `background` and the work each event asks for in
/// one task group until `events` finishes, and calls `shutdown` when the calling task is cancelled or the service
/// group shuts down gracefully; `shutdown` must finish `events`.
func runBackgroundWork<Event: Sendable>(
    events: AsyncStream<Event>,
    shutdown: @escaping @Sendable () -> Void,
    background: @escaping @Sendable () async -> Void,
    action: (Event) -> BackgroundEventAction
) async {
    await withGracefulShutdownHandler {
        await withTaskCancellationHandler {
            await withDiscardingTaskGroup { group in
                group.addTask { await background() }
                for await event in events {
                    switch action(event) {
                    case .start(let work): group.addTask { await work() }
                    case .cancelAll: group.cancelAll()
                    }
                }
            }
        } onCancel: {
            shutdown()
        }
    } onGracefulShutdown: {
        shutdown()
    }
}
