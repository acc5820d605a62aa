/**
 * The HTTP side of a runner's metrics (docs/metrics.md): GET /metrics, the exposition
 * text, and GET /healthz, a small JSON document for liveness/readiness probes.
 */
import http from 'node:http';
import type { Metrics } from './registry.js';

/** The metrics HTTP server; close() also ends open keep-alive connections. */
export interface MetricsServer {
  port: number;
  close(): Promise<void>;
}

/**
 * Serves GET /metrics and GET /healthz on every interface (like other exporters: scrapers
 * run elsewhere), port 0: any free port.
 */
export function serveMetrics(metrics: Metrics, port: number, host?: string): Promise<MetricsServer> {
  const server = http.createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD' });
      res.end();
    } else if (path === '/metrics' || path === '/') {
      const head = req.method === 'HEAD';
      (head ? Promise.resolve(undefined) : metrics.render()).then(
        (text) => {
          res.writeHead(200, { 'content-type': metrics.contentType });
          res.end(text);
        },
        (e: unknown) => {
          res.writeHead(500, { 'content-type': 'text/plain' });
          res.end(`cannot render the metrics: ${e instanceof Error ? e.message : String(e)}\n`);
        },
      );
    } else if (path === '/healthz') {
      const h = metrics.health();
      res.writeHead(h.code, { 'content-type': 'application/json' });
      res.end(req.method === 'HEAD' ? undefined : `${JSON.stringify(h.body)}\n`);
    } else {
      res.writeHead(404, { 'content-type': 'text/plain' });
      res.end('not found: try /metrics or /healthz\n');
    }
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      const addr = server.address();
      resolve({
        port: typeof addr === 'object' && addr ? addr.port : port,
        close: () =>
          new Promise<void>((done) => {
            server.close(() => done());
            server.closeAllConnections();
          }),
      });
    });
  });
}
