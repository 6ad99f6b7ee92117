/**
 * The upstream every target relays to: a real smtp-server that keeps no bodies, only the time
 * each message's token (from its Message-ID) arrived, and — for the soak — can answer 4xx/5xx at
 * random, drop connections, or be switched off. DSNs (multipart/report; report-type=delivery-status)
 * are credited to the original Message-ID they quote.
 */
import { SMTPServer } from 'smtp-server';

export interface FaultPlan {
  /** Probability of a 4xx reply to DATA. */
  tempfail: number;
  /** Probability of a 5xx reply to DATA (bounce expected). */
  permfail: number;
  /** Probability of dropping the connection at DATA end without replying. */
  drop: number;
}

export interface BenchCapture {
  port: number;
  /** token → arrival times (performance.now()); more than one entry = duplicate. */
  delivered: Map<string, number[]>;
  /** Tokens quoted by DSNs received for the bench sender. */
  bounced: Map<string, number>;
  /** Tokens that were answered 5xx (so a DSN is expected). */
  permfailed: Set<string>;
  total: number;
  faults: FaultPlan | undefined;
  /** Stops listening and cuts every open connection (true), or listens again on the same port (false). */
  setDown(down: boolean): Promise<void>;
  waitFor(count: number, timeoutMs: number): Promise<boolean>;
  close(): Promise<void>;
}

class Reply extends Error {
  constructor(
    readonly responseCode: number,
    message: string,
  ) {
    super(message);
  }
}

const TOKEN = /Message-ID:\s*<([^@>\s]+)@bench\.test>/i;

export async function startBenchCapture(port = 0, options: { hide8BITMIME?: boolean } = {}): Promise<BenchCapture> {
  const delivered = new Map<string, number[]>();
  const bounced = new Map<string, number>();
  const permfailed = new Set<string>();
  let waiter: (() => void) | undefined;
  const state: BenchCapture = {
    port: 0,
    delivered,
    bounced,
    permfailed,
    total: 0,
    faults: undefined,
    setDown: async (down) => {
      if (down) {
        const closed = new Promise<void>((resolve) => server.server.close(() => resolve()));
        const connections = (server as unknown as { connections: Set<{ _socket: { destroy(): void } }> }).connections;
        for (const c of connections) c._socket.destroy();
        await closed;
      } else {
        await new Promise<void>((resolve) => server.server.listen(state.port, '127.0.0.1', () => resolve()));
      }
    },
    waitFor: async (count, timeoutMs) => {
      const deadline = Date.now() + timeoutMs;
      while (state.total < count && Date.now() < deadline) {
        await new Promise<void>((resolve) => {
          waiter = resolve;
          setTimeout(resolve, 250).unref();
        });
      }
      return state.total >= count;
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
  const server = new SMTPServer({
    disabledCommands: ['AUTH', 'STARTTLS'],
    authOptional: true,
    disableReverseLookup: true,
    hideENHANCEDSTATUSCODES: false,
    logger: false,
    size: 50 * 1024 * 1024,
    hide8BITMIME: options.hide8BITMIME ?? false,
    onData(stream, session, callback) {
      let head = '';
      stream.on('data', (chunk: Buffer) => {
        if (head.length < 16384) head += chunk.toString('latin1', 0, Math.min(chunk.length, 16384));
      });
      stream.on('end', () => {
        // mailshim sends DSNs from bounce_from (providers refuse the null sender), so recognise them by content.
        const isDsn = /report-type="?delivery-status/i.test(head);
        // A DSN quotes the original headers; the bounced message's token is the last Message-ID in it.
        const tokens = [...head.matchAll(new RegExp(TOKEN.source, 'gi'))].map((m) => m[1]!);
        const token = isDsn ? tokens[tokens.length - 1] : tokens[0];
        const f = state.faults;
        if (f) {
          // DSNs meet the same weather except 5xx (a refused bounce is dropped by design, never bounced again).
          const roll = Math.random();
          if (roll < f.drop) {
            // Hang up without a reply: the sender cannot know whether we took it.
            dropConnection(session.id);
            return;
          }
          if (!isDsn && roll < f.drop + f.permfail) {
            if (token) permfailed.add(token);
            return callback(new Reply(554, '5.7.1 scripted permanent failure'));
          }
          if (roll < f.drop + f.permfail + f.tempfail) return callback(new Reply(451, '4.3.0 scripted temporary failure'));
        }
        const at = performance.now();
        if (isDsn) {
          if (token) bounced.set(token, (bounced.get(token) ?? 0) + 1);
        } else if (token) {
          const seen = delivered.get(token);
          if (seen) seen.push(at);
          else delivered.set(token, [at]);
        }
        state.total++;
        waiter?.();
        callback(null, `2.0.0 Ok: queued as CAP${state.total}`);
      });
    },
  });
  /** smtp-server has no public way to cut one session; its connection set holds the sockets. */
  function dropConnection(id: string): void {
    const connections = (server as unknown as { connections: Set<{ id: string; _socket: { destroy(): void } }> }).connections;
    for (const c of connections) if (c.id === id) c._socket.destroy();
  }
  server.on('error', () => {});
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', () => resolve()));
  state.port = (server.server.address() as { port: number }).port;
  return state;
}
