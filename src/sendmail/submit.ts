/**
 * The sendmail command's side of submission: hand the message to the running daemon over its
 * unix socket; when the daemon is not running (or cannot spool right now), apply the local
 * policy here and leave the message in the maildrop. Either way we return only once the message
 * is on disk. The fallback modules are loaded lazily: the usual path never reads the aliases.
 */
import { connect } from 'node:net';
import type { ClientConfig } from '../config/local.js';
import { SubmitError } from '../errors.js';
import type { SendmailDsn } from '../intake/dsn-params.js';
import { encodeFrame, type Reply, type Request, type SubmitRequest } from '../intake/submission-protocol.js';
import type { QueueEntry, QueueFilter } from '../spool/listing.js';

export type DaemonAnswer = { kind: 'down'; reason: string } | { kind: 'broken'; reason: string } | { kind: 'reply'; reply: Reply };

/** Sends one request; `down` when nothing listens on the socket, `broken` when the connection failed midway. */
export async function askDaemon(socketPath: string, frame: Buffer, timeoutMs = 120_000): Promise<DaemonAnswer> {
  return await new Promise<DaemonAnswer>((resolve) => {
    const socket = connect(socketPath);
    let connected = false;
    let data = '';
    const finish = (answer: DaemonAnswer) => {
      socket.destroy();
      resolve(answer);
    };
    socket.setTimeout(timeoutMs, () => finish({ kind: 'broken', reason: 'timed out waiting for the daemon' }));
    socket.once('connect', () => {
      connected = true;
      socket.write(frame); // the frame carries its size; the reply comes on the same connection
    });
    socket.on('data', (chunk: Buffer) => {
      data += chunk.toString('utf8');
      const newline = data.indexOf('\n');
      if (newline === -1) return;
      try {
        finish({ kind: 'reply', reply: JSON.parse(data.slice(0, newline)) as Reply });
      } catch {
        finish({ kind: 'broken', reason: 'malformed reply from the daemon' });
      }
    });
    socket.once('error', (error: NodeJS.ErrnoException) => finish({ kind: connected ? 'broken' : 'down', reason: error.code ?? error.message }));
    socket.once('close', () => finish({ kind: connected ? 'broken' : 'down', reason: 'connection closed' }));
  });
}

/** A control request (flush, list, reload-aliases): the daemon's reply, or undefined when it is not running. */
export async function control(config: ClientConfig, request: Request): Promise<Reply | undefined> {
  const answer = await askDaemon(config.submission.socket, encodeFrame(request), 600_000);
  if (answer.kind === 'reply') return answer.reply;
  if (answer.kind === 'down') return undefined;
  throw new SubmitError('ETEMPFAIL', `lost the connection to the daemon: ${answer.reason}`);
}

/**
 * The daemon's queue listing as it streams in (see the `list` request), or undefined when no
 * daemon listens. Lines are read as the caller consumes them, so a slow consumer slows the daemon
 * down instead of buffering the queue here.
 */
export async function listFromDaemon(config: ClientConfig, filter: QueueFilter): Promise<AsyncGenerator<QueueEntry> | undefined> {
  // Loaded here, not at the top: this module is on every submission's path, readline only on mailq's.
  const { createInterface } = await import('node:readline');
  const socket = connect(config.submission.socket);
  socket.on('error', () => undefined); // a broken stream shows as a listing without its end line
  const connected = await new Promise<boolean>((resolve) => {
    socket.once('connect', () => resolve(true));
    socket.once('error', () => resolve(false));
  });
  if (!connected) {
    socket.destroy();
    return undefined;
  }
  socket.write(encodeFrame({ op: 'list', filter }));
  return (async function* () {
    try {
      for await (const line of createInterface({ input: socket, crlfDelay: Infinity })) {
        let reply: Reply;
        try {
          reply = JSON.parse(line) as Reply;
        } catch {
          throw new SubmitError('ETEMPFAIL', 'malformed reply from the daemon');
        }
        if (!reply.ok) throw new SubmitError(reply.code, reply.error);
        if (reply.end === true) return;
        yield reply.entry as QueueEntry;
      }
    } finally {
      socket.destroy();
    }
    throw new SubmitError('ETEMPFAIL', 'lost the connection to the daemon in the middle of the listing');
  })();
}

export interface Submission {
  /** Idempotency token (newSubmitToken): the socket try and the maildrop fallback queue one message. */
  token: string;
  sender: string;
  recipients: string[];
  user: string;
  uid: number;
  bytes: Buffer;
  dsn?: SendmailDsn;
}

export interface Submitted {
  /** The queue id; unknown for the maildrop (the daemon picks it when it imports the file). */
  id?: string;
  via: 'daemon' | 'maildrop';
  /** Why the maildrop was used, for -v. */
  reason?: string;
  notes: string[];
}

export async function submit(config: ClientConfig, s: Submission): Promise<Submitted> {
  const request: SubmitRequest & { token: string } = {
    op: 'submit',
    token: s.token,
    sender: s.sender,
    recipients: s.recipients,
    user: s.user,
    uid: s.uid,
    size: s.bytes.length,
    ...(s.dsn ? { dsn: s.dsn } : {}),
  };
  const answer = await askDaemon(config.submission.socket, encodeFrame(request, s.bytes));
  if (answer.kind === 'reply') {
    const reply = answer.reply;
    if (reply.ok) return { id: typeof reply.id === 'string' ? reply.id : undefined, via: 'daemon', notes: [] };
    if (reply.code !== 'ETEMPFAIL') throw new SubmitError(reply.code, reply.error);
    return await toMaildrop(config, request, s.bytes, `daemon could not spool: ${reply.error}`, 'ETEMPFAIL');
  }
  // Down: not running. Broken: it may or may not have spooled; the maildrop file carries the same
  // token, and the spool queues one message per token (the importer drops the file as a duplicate).
  // Tested by test/e2e-spool-integrity.test.ts ("…the maildrop fallback of the same submission is dropped").
  return await toMaildrop(config, request, s.bytes, `daemon ${answer.kind === 'down' ? 'not running' : 'connection failed'} (${answer.reason})`, answer.kind === 'down' ? 'ECANTCREAT' : 'ETEMPFAIL');
}

async function toMaildrop(config: ClientConfig, request: SubmitRequest & { token: string }, bytes: Buffer, reason: string, failCode: 'ECANTCREAT' | 'ETEMPFAIL'): Promise<Submitted> {
  const [{ loadAliases, emptyAliases }, { localize }, { writeMaildrop }] = await Promise.all([import('../local/aliases.js'), import('../local/localize.js'), import('../intake/maildrop.js')]);
  const notes: string[] = [];
  let aliases;
  try {
    aliases = loadAliases(config.local.aliases);
  } catch (error) {
    notes.push(`cannot read ${config.local.aliases}: ${(error as NodeJS.ErrnoException).code ?? String(error)}; no aliases used`);
    aliases = emptyAliases(config.local.aliases);
  }
  // Run here only so that its errors (no such user, bad address) reach the caller now; the file
  // holds the message as submitted, and the daemon applies the policy when it imports it.
  const localized = localize({ sender: request.sender, recipients: request.recipients }, bytes, { hostname: config.hostname, local: config.local, aliases });
  notes.push(...localized.notes);
  try {
    writeMaildrop(config.submission.maildrop, request, bytes);
  } catch (error) {
    throw new SubmitError(failCode, `${reason}, and ${(error as Error).message}; message not accepted`, { cause: error });
  }
  return { via: 'maildrop', reason, notes };
}
