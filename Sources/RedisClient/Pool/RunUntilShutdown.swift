import ServiceLifecycle

/// Runs `body` (a client's `run()` loop) and calls `shutdown` when the calling task is cancelled or the service
/// group shuts down gracefully; `shutdown` must make `body` end.
func runUntilShutdown(shutdown: @escaping @Sendable () -> Void, _ body: () async -> Void) async {
    await withGracefulShutdownHandler {
        await withTaskCancellationHandler {
            await body()
        } onCancel: {
            shutdown()
        }
    } onGracefulShutdown: {
        shutdown()
    }
}
