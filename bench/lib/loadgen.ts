/**
 * The load generator used against every target (mailshim, Postfix, the bare capture server).
 * Hand-written rather than Postfix's smtp-source because the relay figures need the time of each
 * 250 per message (p50/p99 from 250 to upstream acceptance), which smtp-source does not report;
 * one generator for all targets keeps the comparison fair. Each session is one raw socket that
 * sends MAIL/RCPT/DATA for one message at a time and reuses the connection (RSET-free, like
 * smtp-source -d), or opens a new connection per message (`connectionPerMessage`, like
 * smtp-source without -d). bench/compare.ts drives the same targets with smtp-source itself.
 */
import { connect, type Socket } from 'node:net';

export interface LoadOptions {
  port: number;
  sessions: number;
  messages: number;
  /** Body size in bytes (approximate; headers are added). */
  size: number;
  /** Prefix of the per-message token carried in Message-ID (`<token@bench>`). */
  tag: string;
  sender?: string;
  recipient?: string;
  /** Give up on the run after this long (ms). */
  timeoutMs?: number;
  /** On a 4xx/5xx or a dropped connection, retry the same message (soak) instead of counting a failure. */
  retry?: boolean;
  /** Called for every 250 to DATA with the token and the server's queue id text. */
  onAccepted?: (token: string, reply: string, at: number) => void;
  /** +1 when a session starts waiting for its reply to the message data, -1 when it has it. */
  onData?: (delta: number) => void;
  /**
   * One connection per message (connect, EHLO, one transaction, QUIT), as cron jobs, PHP and
   * monitoring agents do, like smtp-source without -d. Default: keep the connection (smtp-source -d).
   */
  connectionPerMessage?: boolean;
  /** UTF-8 text declared `Content-Transfer-Encoding: 8bit` (cron, PHP, git) instead of ASCII. */
  eightBit?: boolean;
}

export interface LoadResult {
  accepted: number;
  refused: number;
  /** Reply text → count, for refusals and connection errors. */
  failures: Record<string, number>;
  elapsedMs: number;
  /** performance.now() of each 250, by token. */
  acceptedAt: Map<string, number>;
  /** Connect → 220 banner (ms), one entry per connection opened. */
  bannerMs: number[];
  /** Connect (or, on a kept connection, MAIL FROM) → 250 to the message data (ms), per accepted message. */
  messageMs: number[];
}

/** A body of `size` bytes of 76-column text lines (no dots at line starts); UTF-8 German text for `eightBit`. */
export function bodyOf(size: number, eightBit = false): string {
  const line = eightBit ? 'Sicherung für Größe und Prüfsumme abgeschlossen, nächster Lauf um 03:00 Uhr.\r\n' : 'abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmn\r\n';
  return line.repeat(Math.max(1, Math.ceil(size / Buffer.byteLength(line))));
}

const EIGHT_BIT_HEADERS = 'MIME-Version: 1.0\r\nContent-Type: text/plain; charset=UTF-8\r\nContent-Transfer-Encoding: 8bit\r\n';

class Session {
  private buffer = '';
  private wake: (() => void) | undefined;
  closed = false;

  constructor(private readonly socket: Socket) {
    socket.setNoDelay(true);
    socket.on('data', (d: Buffer) => {
      this.buffer += d.toString('latin1');
      this.wake?.();
    });
    socket.on('close', () => {
      this.closed = true;
      this.wake?.();
    });
    socket.on('error', () => {});
  }

  /** performance.now() when the TCP connection was established. */
  openedAt = 0;

  static open(port: number): Promise<Session> {
    return new Promise((resolve, reject) => {
      const socket = connect({ port, host: '127.0.0.1' });
      socket.once('connect', () => {
        const session = new Session(socket);
        session.openedAt = performance.now();
        resolve(session);
      });
      socket.once('error', reject);
    });
  }

  async reply(timeoutMs = 120_000): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const match = /^(?:\d{3}-[^\n]*\n)*(\d{3}(?: [^\n]*)?)\r?\n/.exec(this.buffer);
      if (match) {
        this.buffer = this.buffer.slice(match[0].length);
        return match[1]!.replace(/\r/g, '');
      }
      if (this.closed) return '000 connection closed';
      if (Date.now() > deadline) return '000 timeout';
      await new Promise<void>((resolve) => {
        this.wake = resolve;
        setTimeout(resolve, 1000).unref();
      });
      this.wake = undefined;
    }
  }

  write(data: string | Buffer): void {
    if (!this.closed) this.socket.write(data);
  }

  close(): void {
    this.socket.destroy();
  }
}

/** Sends one message on an open session; returns the final reply (or the first refusal). */
async function sendOne(s: Session, from: string, to: string, data: Buffer, onData?: (delta: number) => void): Promise<string> {
  s.write(`MAIL FROM:<${from}>\r\n`);
  let r = await s.reply();
  if (!r.startsWith('2')) return r;
  s.write(`RCPT TO:<${to}>\r\n`);
  r = await s.reply();
  if (!r.startsWith('2')) {
    s.write('RSET\r\n');
    await s.reply();
    return r;
  }
  s.write('DATA\r\n');
  r = await s.reply();
  if (!r.startsWith('3')) return r;
  s.write(data);
  onData?.(1);
  try {
    return await s.reply();
  } finally {
    onData?.(-1);
  }
}

export async function runLoad(o: LoadOptions): Promise<LoadResult> {
  const from = o.sender ?? 'bench@client.test';
  const to = o.recipient ?? 'sink@upstream.test';
  const body = bodyOf(o.size, o.eightBit);
  const acceptedAt = new Map<string, number>();
  const bannerMs: number[] = [];
  const messageMs: number[] = [];
  const failures: Record<string, number> = {};
  let next = 0;
  let refused = 0;
  const started = performance.now();
  const deadline = Date.now() + (o.timeoutMs ?? 300_000);
  const fail = (reply: string) => {
    const key = reply.slice(0, 60);
    failures[key] = (failures[key] ?? 0) + 1;
  };

  async function worker(): Promise<void> {
    let session: Session | undefined;
    let pending: number | undefined;
    while (Date.now() < deadline) {
      const n = pending ?? next++;
      pending = undefined;
      if (n >= o.messages) break;
      if (!session || session.closed) {
        try {
          session = await Session.open(o.port);
          const greeting = await session.reply(30_000);
          if (!greeting.startsWith('220')) throw new Error(greeting);
          bannerMs.push(performance.now() - session.openedAt);
          session.write('EHLO loadgen.test\r\n');
          const ehlo = await session.reply(30_000);
          if (!ehlo.startsWith('250')) throw new Error(ehlo);
        } catch (error) {
          session?.close();
          session = undefined;
          fail(`connect: ${(error as Error).message}`);
          if (o.retry) {
            pending = n;
            await new Promise((r) => setTimeout(r, 200));
            continue;
          }
          refused++;
          continue;
        }
      }
      const token = `${o.tag}.${n}`;
      const mime = o.eightBit ? EIGHT_BIT_HEADERS : '';
      const data = Buffer.from(
        `From: <${from}>\r\nTo: <${to}>\r\nSubject: bench ${n}\r\nMessage-ID: <${token}@bench.test>\r\nDate: ${new Date().toUTCString()}\r\n${mime}\r\n${body}.\r\n`,
        o.eightBit ? 'utf8' : 'latin1',
      );
      const begun = o.connectionPerMessage ? session.openedAt : performance.now();
      const reply = await sendOne(session, from, to, data, o.onData);
      if (reply.startsWith('250')) {
        const at = performance.now();
        acceptedAt.set(token, at);
        messageMs.push(at - begun);
        o.onAccepted?.(token, reply, at);
        if (o.connectionPerMessage) {
          await quit(session);
          session = undefined;
        }
        continue;
      }
      fail(reply);
      if (reply.startsWith('000') || reply.startsWith('421')) {
        session.close();
        session = undefined;
      }
      if (o.retry) {
        pending = n;
        await new Promise((r) => setTimeout(r, reply.startsWith('4') ? 100 : 200));
      } else refused++;
    }
    if (session) await quit(session);
  }

  await Promise.all(Array.from({ length: o.sessions }, () => worker()));
  return { accepted: acceptedAt.size, refused, failures, elapsedMs: performance.now() - started, acceptedAt, bannerMs, messageMs };
}

async function quit(session: Session): Promise<void> {
  if (!session.closed) {
    session.write('QUIT\r\n');
    await session.reply(2000);
  }
  session.close();
}
