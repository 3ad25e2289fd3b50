// Wiring a cache's metrics to Prometheus through swift-metrics.
//
// In a Hummingbird or Vapor app you would bootstrap the metrics system once at start-up, add
// `CacheService(cache: cache)` to the ServiceGroup (it runs the reporter and closes the cache on shutdown),
// and serve `registry.emitToString()` on a `/metrics` route. Here the reporter is called directly.
import CacheLayer
import Metrics
import Prometheus

let registry = PrometheusCollectorRegistry()
MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry))

var configuration = CacheConfiguration.development
configuration.name = "catalog"
let cache = try await makeCache(configuration)
let reporter = CacheMetricsReporter(cache: cache, interval: .seconds(10))

for id in 0..<100 {
    _ = try await cache.getOrSet("product:\(id % 40)", ttl: .seconds(60)) { "Product \(id % 40)" }
}
await reporter.report()
try await cache.close()

print(registry.emitToString())
