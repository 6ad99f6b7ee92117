/** HTTP endpoint for [metrics]: GET /metrics (Prometheus text) and GET /healthz (for load balancers). */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Metrics } from './metrics.js';

export class MetricsServer {
  private constructor(private readonly server: Server) {}

  static async start(metrics: Metrics, host: string, port: number): Promise<MetricsServer> {
    const server = createServer((request, response) => {
      const path = (request.url ?? '/').split('?')[0];
      if (request.method !== 'GET' && request.method !== 'HEAD') {
        response.writeHead(405, { allow: 'GET, HEAD' }).end();
      } else if (path === '/metrics') {
        metrics.text().then(
          (text) => response.writeHead(200, { 'content-type': metrics.contentType }).end(text),
          (error: Error) => response.writeHead(500, { 'content-type': 'text/plain' }).end(`metrics collection failed: ${error.message}\n`),
        );
      } else if (path === '/healthz') {
        // The process is up and serving; per-upstream health is in /metrics and `mailshim status`.
        response.writeHead(200, { 'content-type': 'text/plain' }).end('ok\n');
      } else {
        response.writeHead(404, { 'content-type': 'text/plain' }).end('not found; try /metrics or /healthz\n');
      }
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    return new MetricsServer(server);
  }

  get address(): AddressInfo {
    return this.server.address() as AddressInfo;
  }

  async close(): Promise<void> {
    await new Promise<void>((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }
}
