/**
 * Timed building blocks for `mailshim test-upstream` checks, shared by the SMTP and REST
 * upstreams: run a step and time it, and a bare connect (DNS + TCP, optionally + TLS) so that
 * "nothing listens", "a firewall drops packets" and "TLS fails" are told apart from what the
 * server or API answers afterwards.
 */
import { connect as tcpConnect, type Socket } from 'node:net';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import type { AttemptResult, CheckStep } from './types.js';

export type Failure = Error & { code?: string };

export async function timed(name: string, run: () => Promise<string>, fail: (error: Failure) => AttemptResult): Promise<CheckStep> {
  const started = performance.now();
  try {
    const detail = await run();
    return { name, ok: true, durationMs: Math.round(performance.now() - started), detail };
  } catch (error) {
    const failure = fail(error as Failure);
    return { name, ok: false, durationMs: Math.round(performance.now() - started), detail: (error as Error).message, failure };
  }
}

export interface ConnectOptions {
  host: string;
  port: number;
  timeoutMs: number;
  /** Negotiate TLS too (SNI = servername when it is a host name). */
  tls?: { servername?: string; ca?: string };
}

/** Connects (and with `tls` completes the handshake), then closes; resolves with what was negotiated. */
export function connectProbe(options: ConnectOptions): Promise<string> {
  return new Promise((resolve, reject) => {
    const { host, port, timeoutMs, tls } = options;
    const socket: Socket = tls
      ? tlsConnect({ host, port, minVersion: 'TLSv1.2', ...(tls.servername ? { servername: tls.servername } : {}), ...(tls.ca ? { ca: tls.ca } : {}) })
      : tcpConnect({ host, port });
    socket.setTimeout(timeoutMs, () => socket.destroy(Object.assign(new Error(`no answer within ${timeoutMs} ms`), { code: 'ETIMEDOUT' })));
    socket.once(tls ? 'secureConnect' : 'connect', () => {
      const detail = tls ? `${(socket as TLSSocket).getProtocol() ?? 'TLS'}, certificate trusted` : 'connected';
      socket.destroy();
      resolve(detail);
    });
    socket.once('error', reject);
  });
}

export const networkFailure = (error: Failure): AttemptResult => ({ kind: 'network', errorCode: error.code ?? 'EUNKNOWN', message: error.message });
