extension EvictionStrategy.Kind {
    /// Storage whose shards use this strategy's policy.
    ///
    /// The one place that maps a strategy to its ``EvictionPolicy`` type: a new strategy is one new case
    /// here. Each case instantiates the generic storage with a concrete policy, so the hot path calls the
    /// policy directly, without an existential or an enum switch per call.
    func makeStorage(maxMemorySize: Int, shardCount: Int) -> any MemoryCacheStorage {
        switch self {
        case .expiry: ShardedMemoryStorage<ExpiryOrderPolicy>(maxMemorySize: maxMemorySize, shardCount: shardCount)
        case .lru: ShardedMemoryStorage<LRUPolicy>(maxMemorySize: maxMemorySize, shardCount: shardCount)
        case .tinyLFU: ShardedMemoryStorage<WTinyLFUPolicy>(maxMemorySize: maxMemorySize, shardCount: shardCount)
        case .s3fifo: ShardedMemoryStorage<S3FIFOPolicy>(maxMemorySize: maxMemorySize, shardCount: shardCount)
        }
    }
}
