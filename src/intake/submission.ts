/**
 * The daemon's local submission socket (default /run/mailshim/submit.sock, mode 0666): how the
 * sendmail command, running as any user (www-data for PHP), hands a message to the daemon.
 * Protocol in submission-protocol.ts. Each submission is localized (aliases, masquerading), then
 * spooled; the reply is written only after `spool.accept()` has fsynced (tested by
 * test/faults/durability-order.test.ts, "the sendmail socket…").
 *
 * Trust: node cannot read SO_PEERCRED, so the user/uid in a request are as the client claims
 * them (logged as such). That grants nothing: any local user can already submit over SMTP on
 * localhost with any sender, and local senders are masqueraded anyway.
 *
 * Idempotency: a request may carry a token (128 random bits, made by the sendmail command); the
 * same (uid, token) queues one message however often it arrives — here or as a maildrop file,
 * whose uid is the file owner (fstat), not a claim. Since the socket's uid is only claimed, the
 * token's safety rests on its secrecy: it is random, travels only over this socket and as a file
 * name in the maildrop, which nobody can list (mode 1733), and is never logged. To make another
 * user's message be dropped as a "duplicate" one would have to guess 128 bits. A token can never
 * touch a queued message either: it only ever makes a new submission return the earlier id.
 *
 * Resources (issue 10 item 8): at most `max_connections` connections, `max_connections_per_uid`
 * per claimed uid (a client can lie about its uid, so the total cap is the real bound; the per-uid
 * cap stops one well-behaved but runaway program from taking every slot), a whole-request deadline,
 * and bodies over `stream_threshold` staged on disk. A refused client gets ETEMPFAIL, on which the
 * sendmail command falls back to the maildrop, so nothing is lost.
 */
import { once } from 'node:events';
import { chmodSync, mkdirSync, unlinkSync } from 'node:fs';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { dirname, join } from 'node:path';
import type { SubmissionConfig } from '../config/types.js';
import { MailshimError, SubmitError } from '../errors.js';
import type { Logger } from '../log.js';
import { localize, logLocalized, type LocalPolicy } from '../local/localize.js';
import { asQueueFilter, queueEntries } from '../spool/listing.js';
import type { Spool } from '../spool/spool.js';
import { acceptLocal } from './local-accept.js';
import { ConnectionCounter } from './limits.js';
import { BodySink, prepareIncoming } from './submission-body.js';
import { asRequest, isSubmitRequest, MAX_HEADER, type Reply, type Request, type SubmitRequest } from './submission-protocol.js';

/** What the control requests (sendmail -q, -bp, -bi) ask of the daemon. */
export interface SubmissionHooks {
  policy(): LocalPolicy;
  maxMessageSize(): number;
  flush(): Promise<number>;
  reloadAliases(): { entries: number; problems: string[] };
  /** Connection caps, request deadline and staging threshold ([submission]; re-read per connection). */
  limits(): Pick<SubmissionConfig, 'maxConnections' | 'maxConnectionsPerUid' | 'requestTimeout' | 'streamThreshold'>;
}

const noop = () => undefined;

async function socketInUse(path: string): Promise<boolean> {
  return await new Promise<boolean>((resolve) => {
    const probe = connect(path);
    probe.once('connect', () => {
      probe.destroy();
      resolve(true);
    });
    probe.once('error', () => resolve(false));
  });
}

export class SubmissionServer {
  private server: Server | undefined;
  private readonly sockets = new Set<Socket>();
  /** Connections whose request is still arriving, with how to cut them off. */
  private readonly receiving = new Map<Socket, () => void>();
  private readonly perUid = new ConnectionCounter();
  /** Connections counted against max_connections: from accept until answered or gone. */
  private active = 0;
  /** The chain that reads staged bodies back one at a time. */
  private staged: Promise<unknown> = Promise.resolve();

  constructor(
    readonly path: string,
    private readonly spool: Spool,
    private readonly hooks: SubmissionHooks,
    private readonly log: Logger,
    /** Private directory for bodies larger than stream_threshold while they arrive. */
    private readonly incoming = join(spool.path, 'incoming'),
  ) {}

  async start(): Promise<void> {
    prepareIncoming(this.incoming);
    mkdirSync(dirname(this.path), { recursive: true, mode: 0o755 });
    if (await socketInUse(this.path)) throw new MailshimError('EADDRINUSE', `${this.path}: another mailshim daemon is listening`);
    try {
      unlinkSync(this.path); // stale socket of a daemon that did not exit cleanly
    } catch {
      /* none */
    }
    const server = createServer({ allowHalfOpen: true }, (socket) => this.onConnection(socket));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.path, () => {
        server.off('error', reject);
        resolve();
      });
    });
    chmodSync(this.path, 0o666); // any local user may submit, like /usr/sbin/sendmail
    this.server = server;
  }

  async close(): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.server = undefined;
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    // Requests still arriving are cut off (sendmail falls back to the maildrop); answers being prepared are sent.
    for (const abort of this.receiving.values()) abort();
    for (const socket of this.sockets) if (!this.receiving.has(socket)) socket.end();
    await closed;
  }

  /**
   * One request per connection. Memory per connection is bounded: the header line by MAX_HEADER,
   * a body by `stream_threshold` (larger ones go to a temporary file, see BodySink). The whole
   * request must arrive within `request_timeout` — a deadline, not an idle timer, so a client
   * trickling a byte at a time cannot hold a slot (Postfix's smtpd_per_request_deadline).
   */
  private onConnection(socket: Socket): void {
    socket.on('error', () => undefined);
    const limits = this.hooks.limits();
    if (this.active >= limits.maxConnections) {
      this.log.warn({ event: 'refused', via: 'socket', reason: 'max_connections', limit: limits.maxConnections }, 'too many local submissions at once');
      socket.end(JSON.stringify({ ok: false, code: 'ETEMPFAIL', error: 'too many local submissions at once; try again later' } satisfies Reply) + '\n');
      socket.resume(); // discard whatever the client still sends
      return;
    }
    this.sockets.add(socket);
    this.active++;
    let state: 'header' | 'body' | 'handling' | 'done' = 'header';
    let head: Buffer = Buffer.alloc(0);
    let request: Request | undefined;
    let uidSlot: string | undefined;
    let sink: BodySink | undefined;
    const deadline = setTimeout(() => {
      this.log.warn({ event: 'timeout', via: 'socket', claimedUid: uidSlot, stage: state }, `local submission not received within ${limits.requestTimeout} ms; connection closed`);
      socket.destroy();
    }, limits.requestTimeout);
    this.receiving.set(socket, () => socket.destroy());
    // The slots are given back as soon as the answer is written, not when the client gets round to closing.
    const release = () => {
      if (state === 'done') return;
      state = 'done';
      this.active--;
      if (uidSlot !== undefined) this.perUid.close(uidSlot);
      clearTimeout(deadline);
      this.receiving.delete(socket);
      sink?.discard();
    };
    const reply = (r: Reply) => {
      if (state === 'done') return;
      release();
      socket.setTimeout(limits.requestTimeout, () => socket.destroy()); // a client that never reads its answer
      socket.end(JSON.stringify(r) + '\n');
      socket.resume();
    };
    socket.on('close', () => {
      release();
      this.sockets.delete(socket);
    });
    socket.on('end', () => {
      if (state === 'header' || state === 'body') reply({ ok: false, code: 'EUSAGE', error: 'request ended before it was complete' });
    });
    const complete = (r: Request, body: () => Promise<Buffer>, staged: boolean) => {
      state = 'handling';
      clearTimeout(deadline);
      this.receiving.delete(socket);
      const task = async () => {
        if (socket.destroyed) return undefined; // the client gave up while waiting its turn
        return await this.handle(r, await body());
      };
      // Staged (large) bodies are read back into memory one at a time.
      const result = staged ? this.staged.then(task) : task();
      if (staged) this.staged = result.then(noop, noop);
      result.then(
        (answer) => {
          if (answer) reply(answer);
        },
        (error: unknown) => {
          const code = error instanceof SubmitError ? error.code : 'ETEMPFAIL';
          if (!(error instanceof SubmitError)) this.log.error({ err: error }, 'local submission failed');
          reply({ ok: false, code, error: (error as Error).message });
        },
      );
    };
    socket.on('data', (chunk: Buffer) => {
      if (state === 'header') {
        head = head.length === 0 ? chunk : Buffer.concat([head, chunk]);
        const newline = head.indexOf(0x0a);
        if (newline === -1) {
          if (head.length > MAX_HEADER) reply({ ok: false, code: 'EUSAGE', error: 'request header too long' });
          return;
        }
        let parsed: unknown;
        try {
          parsed = JSON.parse(head.subarray(0, newline).toString('utf8'));
        } catch {
          return reply({ ok: false, code: 'EUSAGE', error: 'malformed request' });
        }
        request = asRequest(parsed);
        if (!request) return reply({ ok: false, code: 'EUSAGE', error: 'malformed request' });
        chunk = head.subarray(newline + 1);
        head = Buffer.alloc(0);
        if (request.op === 'list') {
          state = 'handling';
          clearTimeout(deadline);
          this.receiving.delete(socket);
          this.streamList(socket, request.filter).then(
            () => {
              release();
              socket.end(JSON.stringify({ ok: true, end: true }) + '\n');
            },
            (error: unknown) => {
              this.log.error({ err: error }, 'queue listing failed');
              reply({ ok: false, code: 'ETEMPFAIL', error: (error as Error).message });
            },
          );
          return;
        }
        if (request.op !== 'submit') return complete(request, async () => Buffer.alloc(0), false);
        const size = request.size;
        if (!Number.isSafeInteger(size) || size < 0) return reply({ ok: false, code: 'EUSAGE', error: 'malformed submit request' });
        if (size > this.hooks.maxMessageSize()) return reply({ ok: false, code: 'EDATAERR', error: `message too big (limit ${this.hooks.maxMessageSize()} bytes)` });
        // Per uid as the client claims it: node cannot read SO_PEERCRED (see the header comment).
        const slot = String(request.uid);
        if (!this.perUid.open(slot, limits.maxConnectionsPerUid)) {
          this.log.warn({ event: 'refused', via: 'socket', reason: 'max_connections_per_uid', claimedUid: request.uid }, 'too many local submissions at once from one uid');
          return reply({ ok: false, code: 'ETEMPFAIL', error: 'too many submissions at once from this user; try again later' });
        }
        uidSlot = slot;
        sink = new BodySink(size, limits.streamThreshold, this.incoming, socket, (error) =>
          reply({ ok: false, code: 'ETEMPFAIL', error: `cannot stage the message: ${(error as NodeJS.ErrnoException).code ?? error.message}` }),
        );
        state = 'body';
      }
      if (state === 'body' && request && sink) {
        const body = sink;
        if (body.push(chunk)) complete(request, () => body.body(), body.staged);
      }
    });
  }

  private async handle(request: Request, body: Buffer): Promise<Reply> {
    switch (request.op) {
      case 'submit':
        return { ok: true, ...(await this.submit(request, body)) };
      case 'flush':
        return { ok: true, due: await this.hooks.flush() };
      case 'reload-aliases':
        return { ok: true, ...this.hooks.reloadAliases() };
      default:
        throw new SubmitError('EUSAGE', 'unknown request');
    }
  }

  /**
   * Writes the queue one entry per line as the spool is read a page at a time, waiting whenever
   * the client is slower than the spool (`mailq | less`): memory stays bounded at any depth, and
   * the event loop is yielded regularly so intake is not held up by a long listing. The caller
   * writes the end line.
   */
  private async streamList(socket: Socket, filter: unknown): Promise<void> {
    socket.setTimeout(0); // a reader paused by its pager is not idle; nothing is held open for it
    let written = 0;
    for (const entry of queueEntries(this.spool.list(), asQueueFilter(filter))) {
      if (socket.destroyed) return;
      if (!socket.write(JSON.stringify({ ok: true, entry }) + '\n')) {
        await Promise.race([once(socket, 'drain').catch(() => undefined), once(socket, 'close')]);
      } else if (++written % 256 === 0) {
        await new Promise((resolve) => setImmediate(resolve));
      }
    }
  }

  private async submit(request: SubmitRequest, body: Buffer): Promise<{ id: string; duplicate: boolean }> {
    if (!isSubmitRequest(request, body.length)) throw new SubmitError('EUSAGE', 'malformed submit request');
    const policy = this.hooks.policy();
    const localized = localize({ sender: request.sender, recipients: request.recipients }, body, policy);
    logLocalized(this.log, localized, { user: request.user });
    return await acceptLocal(this.spool, policy.hostname, this.log, {
      envelope: localized.envelope,
      bytes: localized.bytes,
      user: request.user,
      uid: request.uid,
      via: 'socket',
      token: request.token,
      dsn: request.dsn,
    });
  }
}
