/**
 * Timed building blocks for `mailshim test-upstream` checks, shared by the SMTP and REST
 * upstreams: run a step and time it, and one probe connection (DNS + TCP, optionally STARTTLS,
 * optionally a TLS handshake) used both to tell "nothing listens", "a firewall drops packets"
 * and "TLS fails" apart from what the server or API answers afterwards, and to fetch a
 * certificate that failed verification so that the advice can name what it carries.
 */
import { once } from 'node:events';
import { connect as tcpConnect, isIP, type Socket } from 'node:net';
import { connect as tlsConnect, type ConnectionOptions, type PeerCertificate, type TLSSocket } from 'node:tls';
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

export interface ProbeOptions {
  host: string;
  port: number;
  /** For the whole probe: connect, STARTTLS and handshake. */
  timeoutMs: number;
  /** Negotiate TLS too (SNI = servername when it is a host name). */
  tls?: {
    servername?: string;
    ca?: string;
    /** false: complete the handshake whatever the certificate (only to show it); default true. */
    verify?: boolean;
    /** Read the greeting, EHLO with this name and STARTTLS first, instead of TLS from the first byte. */
    starttls?: string;
  };
}

/** Reads one SMTP reply (possibly multi-line) from a plain socket. */
function readReply(socket: Socket): Promise<string> {
  return new Promise((resolve, reject) => {
    let buffer = '';
    const done = (error?: Error) => {
      socket.off('data', onData).off('error', done).off('close', onClose);
      if (error) reject(error);
      else resolve(buffer);
    };
    const onData = (d: Buffer) => {
      buffer += d.toString('latin1');
      if (/(^|\n)\d{3} [^\n]*\r?\n$/.test(buffer)) done();
    };
    const onClose = () => done(Object.assign(new Error('connection closed before the SMTP reply'), { code: 'ECONNRESET' }));
    socket.on('data', onData).once('error', done).once('close', onClose);
  });
}

/** Opens one probe connection; resolves with the connected (with `tls`, handshaken) socket, which the caller destroys. */
export async function openProbe(options: ProbeOptions): Promise<Socket> {
  const { host, port, timeoutMs, tls } = options;
  let socket: Socket | undefined;
  const timer = setTimeout(() => socket?.destroy(Object.assign(new Error(`no answer within ${timeoutMs} ms`), { code: 'ETIMEDOUT' })), timeoutMs);
  try {
    const secure: ConnectionOptions | undefined = tls && {
      minVersion: 'TLSv1.2',
      rejectUnauthorized: tls.verify !== false,
      ...(tls.servername ? { servername: tls.servername } : {}),
      ...(tls.ca ? { ca: tls.ca } : {}),
    };
    if (!secure || tls?.starttls !== undefined) {
      socket = tcpConnect({ host, port });
      await once(socket, 'connect');
      if (!secure) return socket;
      await readReply(socket);
      socket.write(`EHLO ${tls!.starttls}\r\n`);
      await readReply(socket);
      socket.write('STARTTLS\r\n');
      const reply = await readReply(socket);
      if (!reply.startsWith('220')) throw Object.assign(new Error(`STARTTLS refused: ${reply.trim()}`), { code: 'ESTARTTLS' });
      socket = tlsConnect({ ...secure, socket });
    } else {
      socket = tlsConnect({ ...secure, host, port });
    }
    await once(socket, 'secureConnect');
    return socket;
  } catch (error) {
    socket?.destroy();
    throw error;
  } finally {
    clearTimeout(timer);
  }
}

/** Connects (and with `tls` completes the verified handshake), then closes; resolves with what was negotiated. */
export async function connectProbe(options: ProbeOptions): Promise<string> {
  const socket = await openProbe(options);
  const detail = options.tls ? `${(socket as TLSSocket).getProtocol() ?? 'TLS'}, certificate trusted` : 'connected';
  socket.destroy();
  return detail;
}

export interface PeerCertificateSummary {
  /** Subject alternative names ("DNS:mail.example.com"), or the subject CN when there are none. */
  names: string[];
  issuer: string;
  validTo: string;
}

function summarize(cert: PeerCertificate): PeerCertificateSummary | undefined {
  if (!cert || Object.keys(cert).length === 0) return undefined;
  const names = cert.subjectaltname ? cert.subjectaltname.split(/,\s*/) : cert.subject?.CN ? [`CN=${String(cert.subject.CN)}`] : [];
  const issuer = cert.issuer
    ? Object.entries(cert.issuer)
        .map(([k, v]) => `${k}=${String(v)}`)
        .join(', ')
    : 'unknown';
  return { names, issuer, validTo: cert.valid_to };
}

/**
 * After verification failed: the server's certificate, fetched *without* verifying it, to show
 * which names it carries and who issued it. Nothing is sent but EHLO/STARTTLS; the connection is
 * closed as soon as the certificate is seen. Undefined when it cannot be had.
 */
export async function peekCertificate(options: { host: string; port: number; starttls: boolean; timeoutMs: number; hostname: string }): Promise<PeerCertificateSummary | undefined> {
  const servername = isIP(options.host) ? undefined : options.host;
  try {
    const socket = (await openProbe({
      host: options.host,
      port: options.port,
      timeoutMs: options.timeoutMs,
      tls: { verify: false, ...(servername ? { servername } : {}), ...(options.starttls ? { starttls: options.hostname } : {}) },
    })) as TLSSocket;
    const summary = summarize(socket.getPeerCertificate());
    socket.destroy();
    return summary;
  } catch {
    return undefined;
  }
}

export const networkFailure = (error: Failure): AttemptResult => ({ kind: 'network', errorCode: error.code ?? 'EUNKNOWN', message: error.message });
