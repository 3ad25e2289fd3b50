import CommonSupport
import ServiceLifecycle

/// The background work of one cache and who runs it: tasks of the cache's own while nobody calls ``run()``, the task
/// of ``run()`` (a `ServiceGroup`, through ``CacheService``) while somebody does.
///
/// Two kinds of work:
/// - loops (``addLoop(_:)``), which run for the cache's lifetime and move to ``run()`` when it starts (and back to
///   tasks of the cache's own when it returns while the cache is open);
/// - one-off jobs (``spawn(_:)``), such as a health probe during an outage, which run where the work is owned at the
///   moment they start.
///
/// Work must return when its task is cancelled, and must capture its cache weakly (re-acquiring it for each round):
/// a task of the cache's own must never keep an abandoned cache alive. The cache's `deinit` calls
/// ``cancelOwnTasks()``; ``close()`` ends everything.
package final class CacheBackgroundWork: Sendable {
    package typealias Work = @Sendable () async -> Void

    private enum Owner {
        /// Tasks of the cache's own run the work.
        case cache
        /// ``run()`` runs it; new jobs are queued and their ids go through this continuation to its task group.
        case service(AsyncStream<Int>.Continuation)
        case closed
    }

    private struct State {
        var owner: Owner = .cache
        var loops: [Work] = []
        /// Whether loops run in tasks of the cache's own while ``run()`` does not run.
        var startsOwnLoops: Bool
        var loopTasks: [Task<Void, Never>] = []
        var jobTasks: [Int: Task<Void, Never>] = [:]
        /// Jobs handed to ``run()`` that it has not started yet; whatever it leaves is started elsewhere.
        var queuedJobs: [Int: Work] = [:]
        var nextJob = 0
    }

    private let state: Locked<State>

    /// - Parameter startsOwnLoops: Whether loops start in tasks of the cache's own (the cache works without a
    ///   service group). When `false`, loops run only inside ``run()``.
    package init(startsOwnLoops: Bool = true) {
        state = Locked(State(startsOwnLoops: startsOwnLoops))
    }

    /// Adds a loop that runs until cancelled, starting it now in a task of the cache's own (if it starts its own
    /// loops) or in ``run()`` the next time it starts. Caches add their loops when they are created.
    package func addLoop(_ loop: @escaping Work) {
        state.withLock { state in
            state.loops.append(loop)
            if case .cache = state.owner, state.startsOwnLoops {
                state.loopTasks.append(Task(operation: loop))
            }
        }
    }

    /// Where a job went.
    package enum Placement: Sendable, Equatable {
        /// A task of the cache's own.
        case ownTask
        /// The task group of ``run()``.
        case service
        /// Nowhere: the work is closed.
        case dropped
    }

    /// Runs `job` once: inside ``run()`` when it runs, else in a task of the cache's own. Dropped once closed.
    @discardableResult
    package func spawn(_ job: @escaping Work) -> Placement {
        state.withLock { state -> Placement in
            switch state.owner {
            case .closed:
                return .dropped
            case .service(let jobs):
                let id = state.nextJob
                state.nextJob += 1
                if case .terminated = jobs.yield(id) {
                    // run() is returning (graceful shutdown): the job runs in a task of the cache's own instead.
                    return Self.startOwnJob(job, in: &state, work: self)
                }
                state.queuedJobs[id] = job
                return .service
            case .cache:
                return Self.startOwnJob(job, in: &state, work: self)
            }
        }
    }

    private static func startOwnJob(_ job: @escaping Work, in state: inout State, work: CacheBackgroundWork) -> Placement {
        let id = state.nextJob
        state.nextJob += 1
        // The task removes itself under the lock, which is held until it is registered.
        state.jobTasks[id] = Task { [weak work] in
            await job()
            work?.state.withLock { _ = $0.jobTasks.removeValue(forKey: id) }
        }
        return .ownTask
    }

    /// Runs the loops, and jobs spawned meanwhile, until graceful shutdown, cancellation or ``close()``.
    ///
    /// Loops running in tasks of the cache's own are stopped first and run here instead; when this returns and the
    /// cache is still open, they go back to tasks of the cache's own. Jobs already running in tasks of the cache's
    /// own finish there. Returns at once when the cache is closed or another `run()` is running.
    ///
    /// - Parameter onStart: Called once this call owns the work, before the loops start; jobs it spawns run here.
    package func run(onStart: () -> Void = {}) async {
        let (jobs, jobSink) = AsyncStream.makeStream(of: Int.self)
        let taken = state.withLock { state -> (loops: [Work], tasks: [Task<Void, Never>])? in
            guard case .cache = state.owner else { return nil }
            state.owner = .service(jobSink)
            defer { state.loopTasks = [] }
            return (state.loops, state.loopTasks)
        }
        guard let taken else { return }
        onStart()
        for task in taken.tasks { task.cancel() }
        for task in taken.tasks { await task.value }
        await withDiscardingTaskGroup { group in
            for loop in taken.loops { group.addTask(operation: loop) }
            await withGracefulShutdownHandler {
                // Ends when close() finishes the stream, on graceful shutdown, or when this task is cancelled.
                for await id in jobs {
                    if let job = state.withLock({ $0.queuedJobs.removeValue(forKey: id) }) { group.addTask(operation: job) }
                }
            } onGracefulShutdown: {
                jobSink.finish()
            }
            group.cancelAll()
        }
        state.withLock { state in
            // Jobs queued while run() was ending (cancelled before it took them) must not be lost.
            let leftovers = state.queuedJobs.values
            state.queuedJobs = [:]
            guard case .service = state.owner else { return }
            state.owner = .cache
            if state.startsOwnLoops {
                state.loopTasks = state.loops.map { Task(operation: $0) }
            }
            for job in leftovers { _ = Self.startOwnJob(job, in: &state, work: self) }
        }
    }

    /// Whether any loop runs, in a task of the cache's own or in ``run()``.
    package var isRunningLoops: Bool {
        state.withLock { state in
            switch state.owner {
            case .cache: !state.loopTasks.isEmpty
            case .service: !state.loops.isEmpty
            case .closed: false
            }
        }
    }

    /// Stops all work for good: cancels the cache's own tasks and waits for them, and makes ``run()`` return.
    package func close() async {
        let tasks = takeAll()
        for task in tasks { task.cancel() }
        for task in tasks { await task.value }
    }

    /// Cancels the cache's own tasks without waiting, for a cache's `deinit`.
    package func cancelOwnTasks() {
        for task in takeAll() { task.cancel() }
    }

    private func takeAll() -> [Task<Void, Never>] {
        let (tasks, jobSink) = state.withLock { state -> ([Task<Void, Never>], AsyncStream<Int>.Continuation?) in
            var jobSink: AsyncStream<Int>.Continuation?
            if case .service(let sink) = state.owner { jobSink = sink }
            state.owner = .closed
            defer {
                state.loopTasks = []
                state.jobTasks = [:]
                state.queuedJobs = [:]
            }
            return (state.loopTasks + state.jobTasks.values, jobSink)
        }
        jobSink?.finish()
        return tasks
    }
}
