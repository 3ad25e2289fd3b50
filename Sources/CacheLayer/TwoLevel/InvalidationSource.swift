/// Where a ``NearCache``'s invalidations from other instances come from: Redis client tracking
/// (``InvalidationTracker``) or the pub/sub backplane (``InvalidationBackplane``). Both keep the same rules: L1 may be
/// filled only while the source is connected, and is emptied whenever an invalidation may have been missed.
protocol InvalidationSource: AnyObject, Sendable {
    /// Connects and applies invalidations until ``shutdown()`` or cancellation, reconnecting with backoff.
    func run() async
    /// Ends ``run()`` and closes the connection.
    func shutdown()
    /// How many times the source was set up (1 after the first connection; each reconnection adds one).
    var establishments: UInt64 { get }
    /// Invalidation messages received and applied.
    var invalidations: UInt64 { get }
    /// Keys named by the invalidation messages applied.
    var invalidationKeys: UInt64 { get }
    /// The `CLIENT ID` of the source's connection while set up.
    var clientID: Int? { get }
    /// Why the last attempt to set up failed, and whether Redis refused it rather than being unreachable.
    var failure: (description: String, refusedByServer: Bool)? { get }
}

extension InvalidationTracker: InvalidationSource {}
