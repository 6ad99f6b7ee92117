/**
 * The daemon's local submission socket (default /run/mailshim/submit.sock, mode 0666): how the
 * sendmail command, running as any user (www-data for PHP), hands a message to the daemon.
 * Protocol in submission-protocol.ts. Each submission is localized (aliases, masquerading), then
 * spooled; the reply is written only after `spool.accept()` has fsynced.
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
 */
import { once } from 'node:events';
import { chmodSync, mkdirSync, unlinkSync } from 'node:fs';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { dirname } from 'node:path';
import { MailshimError, SubmitError } from '../errors.js';
import type { Logger } from '../log.js';
import { localize, type LocalPolicy } from '../local/localize.js';
import { findBareLineBreak } from './message-check.js';
import { asQueueFilter, queueEntries } from '../spool/listing.js';
import type { Spool } from '../spool/spool.js';
import { acceptLocal } from './local-accept.js';
import { asRequest, isSubmitRequest, MAX_HEADER, type Reply, type Request, type SubmitRequest } from './submission-protocol.js';

/** What the control requests (sendmail -q, -bp, -bi) ask of the daemon. */
export interface SubmissionHooks {
  policy(): LocalPolicy;
  maxMessageSize(): number;
  flush(): Promise<number>;
  reloadAliases(): { entries: number; problems: string[] };
}

const IDLE_MS = 60_000;

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

  constructor(
    readonly path: string,
    private readonly spool: Spool,
    private readonly hooks: SubmissionHooks,
    private readonly log: Logger,
  ) {}

  async start(): Promise<void> {
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
    for (const socket of this.sockets) socket.end();
    await closed;
  }

  private onConnection(socket: Socket): void {
    this.sockets.add(socket);
    socket.setTimeout(IDLE_MS, () => socket.destroy());
    socket.on('close', () => this.sockets.delete(socket));
    socket.on('error', () => undefined);
    const chunks: Buffer[] = [];
    let size = 0;
    let request: Request | undefined;
    let headerLength = 0;
    let done = false;
    const reply = (r: Reply) => {
      done = true;
      socket.end(JSON.stringify(r) + '\n');
    };
    socket.on('data', (chunk: Buffer) => {
      if (done) return;
      chunks.push(chunk);
      size += chunk.length;
      if (!request) {
        const data = Buffer.concat(chunks, size);
        const newline = data.indexOf(0x0a);
        if (newline === -1) {
          if (size > MAX_HEADER) reply({ ok: false, code: 'EUSAGE', error: 'request header too long' });
          return;
        }
        let parsed: unknown;
        try {
          parsed = JSON.parse(data.subarray(0, newline).toString('utf8'));
        } catch {
          return reply({ ok: false, code: 'EUSAGE', error: 'malformed request' });
        }
        request = asRequest(parsed);
        if (!request) return reply({ ok: false, code: 'EUSAGE', error: 'malformed request' });
        headerLength = newline + 1;
        if (request.op === 'submit' && !(typeof request.size === 'number' && request.size <= this.hooks.maxMessageSize())) {
          return reply({ ok: false, code: 'EDATAERR', error: `message too big (limit ${this.hooks.maxMessageSize()} bytes)` });
        }
      }
      const needed = request.op === 'submit' ? headerLength + request.size : headerLength;
      if (size < needed) return;
      const body = Buffer.concat(chunks, size).subarray(headerLength, needed);
      chunks.length = 0;
      done = true;
      if (request.op === 'list') {
        this.streamList(socket, request.filter).catch((error: unknown) => {
          this.log.error({ err: error }, 'queue listing failed');
          reply({ ok: false, code: 'ETEMPFAIL', error: (error as Error).message });
        });
        return;
      }
      this.handle(request, body).then(reply, (error: unknown) => {
        const code = error instanceof SubmitError ? error.code : 'ETEMPFAIL';
        if (!(error instanceof SubmitError)) this.log.error({ err: error }, 'local submission failed');
        reply({ ok: false, code, error: (error as Error).message });
      });
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
   * the event loop is yielded regularly so intake is not held up by a long listing.
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
    socket.end(JSON.stringify({ ok: true, end: true }) + '\n');
  }

  private async submit(request: SubmitRequest, body: Buffer): Promise<{ id: string; duplicate: boolean }> {
    if (!isSubmitRequest(request, body.length)) throw new SubmitError('EUSAGE', 'malformed submit request');
    if (findBareLineBreak(body) !== -1) throw new SubmitError('EDATAERR', 'message contains bare CR or LF line endings');
    const policy = this.hooks.policy();
    const localized = localize({ sender: request.sender, recipients: request.recipients }, body, policy);
    for (const note of localized.notes) this.log.warn({ event: 'aliases', note }, note);
    return await acceptLocal(this.spool, policy.hostname, this.log, {
      envelope: localized.envelope,
      bytes: localized.bytes,
      user: request.user,
      uid: request.uid,
      via: 'socket',
      token: request.token,
    });
  }
}
