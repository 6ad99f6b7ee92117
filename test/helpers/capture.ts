/**
 * A real SMTP server (smtp-server) playing the upstream provider: records what it receives and
 * can be scripted to answer 4xx/5xx per recipient, at MAIL FROM or DATA, or to be down.
 */
import { SMTPServer, type SMTPServerOptions } from 'smtp-server';
import { adaptSmtpServer } from '../../src/intake/smtp-server-adapter.js';

// Scripted replies carry their own enhanced code ("5.1.1 no such user"), as real servers send them.
adaptSmtpServer();

export interface Captured {
  sender: string;
  recipients: string[];
  raw: Buffer;
  user?: string;
  /** The MAIL FROM parameters, as smtp-server parsed them (e.g. { BODY: '8BITMIME', SIZE: '1234' }). */
  mailArgs: Record<string, string>;
}

export interface CaptureScript {
  /** recipient → reply error (e.g. [550, '5.1.1 no such user']) */
  rcpt?: Map<string, [number, string]>;
  mail?: [number, string];
  data?: [number, string];
  /** A slow upstream: awaited after the message data arrived and before the reply to DATA. */
  beforeDataReply?: () => Promise<void>;
}

class ScriptedError extends Error {
  constructor(
    readonly responseCode: number,
    message: string,
  ) {
    super(message);
  }
}

export interface Capture {
  port: number;
  messages: Captured[];
  script: CaptureScript;
  /** The smtp-server instance (its options are read per command, e.g. hide8BITMIME at each EHLO). */
  server: SMTPServer;
  close(): Promise<void>;
  /** Resolves when at least `count` messages have arrived. */
  waitFor(count: number, timeoutMs?: number): Promise<Captured[]>;
}

/**
 * What a strict provider refuses at the end of DATA (as Amazon SES, Gmail and Exchange Online do
 * for some of it): a line over 998 octets (RFC 5322 §2.1.1), a CR or LF outside CRLF (RFC 5321
 * §2.3.8), NUL, and 8-bit octets without MAIL FROM BODY=8BITMIME (RFC 6152 §3). Returns the reply.
 */
export function strictRefusal(raw: Buffer, body: string | undefined): [number, string] | undefined {
  let lineStart = 0;
  for (let i = 0; i < raw.length; i++) {
    const b = raw[i]!;
    if (b === 0) return [554, '5.6.0 NUL character in message'];
    if (b === 0x0d && raw[i + 1] !== 0x0a) return [554, '5.6.0 bare CR in message'];
    if (b === 0x0a && raw[i - 1] !== 0x0d) return [554, '5.6.0 bare LF in message'];
    if (b === 0x0a) {
      if (i - 1 - lineStart > 998) return [554, '5.6.0 line longer than 998 octets'];
      lineStart = i + 1;
    }
    if (b >= 0x80 && body?.toUpperCase() !== '8BITMIME') return [554, '5.6.1 8-bit content without BODY=8BITMIME'];
  }
  if (raw.length - lineStart > 998) return [554, '5.6.0 line longer than 998 octets'];
  return undefined;
}

export async function startCapture(options: Partial<SMTPServerOptions> & { port?: number; users?: Record<string, string>; strict?: boolean } = {}): Promise<Capture> {
  const messages: Captured[] = [];
  const script: CaptureScript = {};
  const waiters: Array<() => void> = [];
  const { port: wantedPort, users, strict, ...serverOptions } = options;
  const server = new SMTPServer({
    disabledCommands: users ? [] : ['AUTH'],
    authOptional: !users,
    allowInsecureAuth: true,
    hideENHANCEDSTATUSCODES: false,
    disableReverseLookup: true,
    logger: false,
    ...serverOptions,
    onAuth(auth, _session, callback) {
      if (users && users[auth.username ?? ''] === auth.password) return callback(null, { user: auth.username });
      callback(new ScriptedError(535, 'Authentication credentials invalid'));
    },
    onMailFrom(_address, _session, callback) {
      if (script.mail) return callback(new ScriptedError(script.mail[0], script.mail[1]));
      callback();
    },
    onRcptTo(address, _session, callback) {
      const reply = script.rcpt?.get(address.address);
      if (reply) return callback(new ScriptedError(reply[0], reply[1]));
      callback();
    },
    onData(stream, session, callback) {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      // The listener is fire-and-forget: a failing beforeDataReply hook becomes the DATA reply instead of an
      // unhandled rejection and a client left waiting; the rest is synchronous.
      stream.on(
        'end',
        () =>
          void (async () => {
            try {
              await script.beforeDataReply?.();
            } catch (error) {
              return callback(error instanceof Error ? error : new Error(String(error)));
            }
            if (script.data) return callback(new ScriptedError(script.data[0], script.data[1]));
            const raw = Buffer.concat(chunks);
            const from = session.envelope.mailFrom as { args?: Record<string, string> } | false;
            const refusal = strict ? strictRefusal(raw, from ? from.args?.BODY : undefined) : undefined;
            if (refusal) return callback(new ScriptedError(refusal[0], refusal[1]));
            messages.push({
              sender: session.envelope.mailFrom ? session.envelope.mailFrom.address : '',
              recipients: session.envelope.rcptTo.map((r) => r.address),
              raw,
              user: typeof session.user === 'string' ? session.user : undefined,
              mailArgs: { ...(from ? from.args : {}) },
            });
            for (const wake of waiters.splice(0)) wake();
            callback(null, `2.0.0 Ok: queued as CAP${messages.length}`);
          })(),
      );
    },
  });
  // Clients that hang up mid-handshake (e.g. plain text to an implicit-TLS server) are expected in tests.
  server.on('error', () => {});
  await new Promise<void>((resolve) => server.listen(wantedPort ?? 0, '127.0.0.1', () => resolve()));
  const port = (server.server.address() as { port: number }).port;
  return {
    port,
    messages,
    script,
    server,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
    async waitFor(count, timeoutMs = 15_000) {
      const deadline = Date.now() + timeoutMs;
      while (messages.length < count) {
        if (Date.now() > deadline) throw new Error(`capture: expected ${count} message(s), got ${messages.length}`);
        await new Promise<void>((resolve) => {
          waiters.push(resolve);
          setTimeout(resolve, 200);
        });
      }
      return messages;
    },
  };
}
