/// Distributed single flight for ``Cache/getOrSet(_:as:ttl:options:factory:)``: on a cache backed by Redis
/// (``RedisCache``, ``TwoLevelCache``, a ``FallbackCache`` over Redis), one instance in the whole deployment runs the
/// factory for a key while the others wait for its value, instead of one per instance.
///
/// ```swift
/// let options = GetOrSetOptions(distributed: DistributedSingleFlightOptions(lockTTL: .seconds(5)))
/// let report = try await cache.getOrSet("report:today", ttl: .seconds(600), options: options) {
///     try await warehouse.expensiveReport()
/// }
/// ```
///
/// How it works: the instance whose local flight misses takes a lock key with `SET <lock> <token> NX PX lockTTL`.
/// The owner reads the key once more (a previous owner may just have stored it), runs the factory, stores the value
/// if it still holds the lock, and releases the lock with a compare-and-delete script (it never deletes a lock another
/// instance took after its own expired). The other instances poll the key with backoff (from
/// ``initialPollInterval``, doubling up to ``maxPollInterval``; a ``TwoLevelCache`` polls again as soon as the owner's
/// write arrives as an invalidation) and return the value once it is stored; each poll also tries to take the lock,
/// so:
///
/// - an owner that dies (the process crashes, its connection to Redis is lost) holds the lock for at most
///   ``lockTTL``; then a waiting instance takes it and runs the factory;
/// - a factory error releases the lock at once (and reaches the owner's callers); a waiter then takes it;
/// - a waiter that has waited ``maxWait`` gives up and runs the factory itself (logged as a warning), so a lock
///   that is never released (an owner whose factory hangs, a lock set by hand) costs at most that wait.
///
/// While its factory runs, the owner renews the lock every third of ``lockTTL`` (a compare-and-`PEXPIRE` script), so
/// a factory slower than ``lockTTL`` keeps the lock and the others keep waiting for its value. The renewal stops
/// after ``maxWait``, when the waiters run the factory themselves anyway. An owner that lost its lock (Redis failed
/// during a renewal, or the factory outlived ``maxWait`` and the lock expired) does not store its value, which may be
/// older than the one another instance stored meanwhile. Within one instance, concurrent callers share one flight as
/// always.
///
/// On caches not backed by Redis (``MemoryCache``, a cache of your own) the option is ignored: single flight stays
/// per process. Lock keys are named `__flight__:<namespace>:<key>`, outside the namespace, so `clear()` and client
/// tracking do not see them.
public struct DistributedSingleFlightOptions: Sendable, Hashable {
    /// How long a lock lives without its owner's renewal: the longest the others wait for an owner that died.
    /// Default: 10 s.
    public var lockTTL: Duration
    /// The longest a waiting instance waits before it runs the factory itself. Default: 15 s.
    public var maxWait: Duration
    /// The first pause between two polls of the key. Default: 5 ms.
    public var initialPollInterval: Duration
    /// The longest pause between two polls. Default: 100 ms.
    public var maxPollInterval: Duration

    /// Creates the options.
    public init(
        lockTTL: Duration = .seconds(10),
        maxWait: Duration = .seconds(15),
        initialPollInterval: Duration = .milliseconds(5),
        maxPollInterval: Duration = .milliseconds(100)
    ) {
        self.lockTTL = lockTTL
        self.maxWait = maxWait
        self.initialPollInterval = initialPollInterval
        self.maxPollInterval = maxPollInterval
    }

    /// Throws ``CacheError/Code/invalidConfiguration`` naming the field that makes no sense.
    public func validate() throws(CacheError) {
        if lockTTL < .milliseconds(1) || lockTTL.isNoExpiry {
            throw .invalidConfiguration("distributed.lockTTL is \(lockTTL). Use a finite duration of at least 1 ms, longer than the factory takes, e.g. .seconds(10).")
        }
        if maxWait <= .zero {
            throw .invalidConfiguration("distributed.maxWait is \(maxWait). Use a positive duration, e.g. .seconds(15).")
        }
        if initialPollInterval <= .zero || maxPollInterval < initialPollInterval {
            throw .invalidConfiguration("distributed.initialPollInterval is \(initialPollInterval) and maxPollInterval \(maxPollInterval). Use positive durations, the maximum at least the initial one.")
        }
    }
}
