/**
 * Prometheus metrics of a runner (`bucardo run --metrics-port N`) and its health endpoint,
 * on prom-client. Three parts, each a file of engine/runner/metrics/:
 *
 *   registry.ts  Metrics: the runner's own Registry, fed after every run (record), by the
 *                log entries that count (observeLog) and by the poller (setPending);
 *                /healthz's answer (health)
 *   poller.ts    PendingPoller: pending changes and lag, one query per source database
 *   server.ts    serveMetrics: GET /metrics and GET /healthz
 *
 * docs/metrics.md lists every metric with its labels and an example alert.
 */
export { Metrics, DURATION_BUCKETS, type Health, type HealthState } from './metrics/registry.js';
export { PendingPoller, REFRESH_MS } from './metrics/poller.js';
export { serveMetrics, type MetricsServer } from './metrics/server.js';
