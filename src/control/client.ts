/** The CLI side of the control socket (see server.ts). */
import { request } from 'node:http';
import { ControlError } from '../errors.js';
import type { QueueAction, QueueActionResult } from '../delivery/queue-actions.js';
import type { StatusReport } from './types.js';

async function call<T>(socketPath: string, method: 'GET' | 'POST', path: string, timeoutMs: number, body?: unknown): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const headers = body === undefined ? {} : { 'content-type': 'application/json' };
    const req = request({ socketPath, method, path, timeout: timeoutMs, headers }, (response) => {
      const chunks: Buffer[] = [];
      response.on('data', (c: Buffer) => chunks.push(c));
      response.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        if (response.statusCode !== 200) return reject(new ControlError('ECONTROL', `daemon answered ${response.statusCode}: ${text}`));
        try {
          resolve(JSON.parse(text) as T);
        } catch (error) {
          reject(new ControlError('ECONTROL', `unreadable answer from the daemon: ${text.slice(0, 200)}`, { cause: error }));
        }
      });
    });
    req.on('timeout', () => req.destroy(new ControlError('ECONTROL', `the daemon did not answer on ${socketPath} within ${timeoutMs} ms`)));
    req.on('error', (error: NodeJS.ErrnoException) => {
      if (error instanceof ControlError) return reject(error);
      if (error.code === 'ENOENT' || error.code === 'ECONNREFUSED') {
        return reject(new ControlError('EDAEMONDOWN', `the daemon is not running (no answer on ${socketPath}: ${error.code})`, { cause: error }));
      }
      reject(new ControlError('ECONTROL', `cannot reach the daemon on ${socketPath}: ${error.code ?? error.message}`, { cause: error }));
    });
    req.end(body === undefined ? undefined : JSON.stringify(body));
  });
}

export class ControlClient {
  constructor(
    private readonly socketPath: string,
    private readonly timeoutMs = 5000,
  ) {}

  status(): Promise<StatusReport> {
    return call<StatusReport>(this.socketPath, 'GET', '/status', this.timeoutMs);
  }

  async reload(): Promise<boolean> {
    return (await call<{ reloaded: boolean }>(this.socketPath, 'POST', '/reload', this.timeoutMs)).reloaded;
  }

  /** Has the daemon apply a queue change; it answers once done (after the message's in-flight attempt returned). */
  queue(action: QueueAction): Promise<QueueActionResult> {
    return call<QueueActionResult>(this.socketPath, 'POST', '/queue', this.timeoutMs, { ...action, operatorUid: process.getuid?.() });
  }

  async flush(): Promise<void> {
    await call<{ woken: boolean }>(this.socketPath, 'POST', '/flush', this.timeoutMs);
  }
}
