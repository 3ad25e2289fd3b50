import NIOCore

/// A Swift `TaskExecutor` that runs tasks on a NIO event loop.
///
/// Run a task that talks to one connection on that connection's event loop, and each command skips two
/// thread hops (into the event loop to write, and back to the concurrency pool with the reply):
///
/// ```swift
/// try await withTaskExecutorPreference(EventLoopTaskExecutor(connection.eventLoop)) {
///     for key in keys { _ = try await connection.get(key) }
/// }
/// ```
///
/// Only for short, non-blocking work: everything on the event loop waits while such a task runs.
public final class EventLoopTaskExecutor: TaskExecutor {
    /// The event loop the tasks run on.
    public let eventLoop: any EventLoop

    /// An executor for `eventLoop`.
    public init(_ eventLoop: any EventLoop) {
        self.eventLoop = eventLoop
    }

    /// Schedules the job on the event loop (never runs it inline, so enqueuing from the loop is safe).
    public func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        self.eventLoop.execute {
            job.runSynchronously(on: self.asUnownedTaskExecutor())
        }
    }
}
