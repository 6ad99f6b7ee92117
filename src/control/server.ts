/**
 * The daemon's control socket: a tiny HTTP/1.1 API on a unix socket, so `mailshim status`,
 * `queue flush` and `reload` can ask the running daemon. Separate from the sendmail submission
 * path on purpose: this one is for the administrator (mode 0600/0660), that one for every user.
 *   GET  /status  → StatusReport (JSON)
 *   POST /reload  → {"reloaded": bool}   (same as SIGHUP)
 *   POST /flush   → {"woken": true}      (forget upstream cool-downs and look at the queue now)
 *   POST /queue   ← {"op": "hold"|"release"|"retry"|"delete"|"bounce", "id": ID} or {"op": "retry-all"}
 *                 → QueueActionResult: an operator's queue change, applied by the daemon (after the
 *                   message's in-flight attempt returns) and written to its log (the journal)
 * Plain node:http rather than a framework: four routes, one small JSON body.
 */
import { chmod, lstat, unlink } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { connect } from 'node:net';
import { asQueueAction, type QueueAction, type QueueActionResult } from '../delivery/queue-actions.js';
import { ControlError } from '../errors.js';
import type { StatusReport } from './types.js';

export interface ControlHandlers {
  status(): StatusReport;
  reload(): Promise<boolean>;
  flush(): void;
  /** `operatorUid` is the uid the queue command says it runs as (for the log; the socket's mode is the check). */
  queue(action: QueueAction, operatorUid: number | undefined): Promise<QueueActionResult>;
}

const MAX_BODY = 16 * 1024;

function readJson(request: IncomingMessage): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    request.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_BODY) return request.destroy(new Error('request body too large'));
      chunks.push(chunk);
    });
    request.on('end', () => {
      try {
        resolve(JSON.parse(Buffer.concat(chunks).toString('utf8')));
      } catch (error) {
        reject(error);
      }
    });
    request.on('error', reject);
  });
}

/** True when something answers on the socket path (another daemon owns it). */
function inUse(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(path);
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

export class ControlServer {
  private constructor(
    private readonly server: Server,
    readonly path: string,
  ) {}

  static async start(path: string, mode: number, handlers: ControlHandlers): Promise<ControlServer> {
    const existing = await lstat(path).catch(() => undefined);
    if (existing) {
      if (!existing.isSocket()) throw new ControlError('ECONTROL', `control socket path ${path} exists and is not a socket`);
      if (await inUse(path)) throw new ControlError('ECONTROL', `another mailshim daemon answers on ${path}`);
      await unlink(path); // left behind by a crash
    }
    const server = createServer((request, response) => void route(handlers, request, response));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(path, () => {
        server.off('error', reject);
        resolve();
      });
    });
    await chmod(path, mode);
    return new ControlServer(server, path);
  }

  async close(): Promise<void> {
    await new Promise<void>((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }
}

async function route(handlers: ControlHandlers, request: IncomingMessage, response: ServerResponse): Promise<void> {
  const send = (status: number, body: unknown) => {
    response.writeHead(status, { 'content-type': 'application/json' });
    response.end(JSON.stringify(body));
  };
  try {
    const route = `${request.method} ${request.url}`;
    if (route === 'GET /status') return send(200, handlers.status());
    if (route === 'POST /reload') return send(200, { reloaded: await handlers.reload() });
    if (route === 'POST /flush') {
      handlers.flush();
      return send(200, { woken: true });
    }
    if (route === 'POST /queue') {
      const body = await readJson(request);
      const action = asQueueAction(body);
      if (!action) return send(400, { error: 'expected {"op": "hold"|"release"|"retry"|"delete"|"bounce", "id": QUEUE_ID} or {"op": "retry-all"}' });
      const uid = (body as { operatorUid?: unknown }).operatorUid;
      return send(200, await handlers.queue(action, typeof uid === 'number' ? uid : undefined));
    }
    send(404, { error: `unknown request ${route}` });
  } catch (error) {
    send(500, { error: (error as Error).message });
  }
}
