/**
 * The LMDB queue: the only module that touches LMDB.
 *
 * Layout (one LMDB environment, file `queue.mdb` in the spool directory):
 *   messages  id → MessageRecord (envelope, per-recipient state)
 *   bodies    id → raw message bytes, stored once, for bodies under BODY_FILE_MIN (64 KiB); a
 *             larger body is the file bodies/<id> beside queue.mdb, named by its record's
 *             `bodyFile`, written and synced before that record is committed (body-files.ts)
 *   due       [nextAttemptAt, id] → null, the index the scheduler scans
 *   tokens    "uid:token" → {id, expiresAt}: a submitter's idempotency token and the message it
 *             queued; kept as a tombstone for `tombstoneMs` after the message is delivered,
 *             bounced or deleted, so a late duplicate (the sendmail maildrop fallback of a socket
 *             submission whose reply was lost) is recognised and never queued twice
 *             (tested by test/spool-integrity.test.ts "the same (uid, token)…" and the
 *             tombstone tests, test/e2e-spool-integrity.test.ts "…with one token…")
 *   expiry    [expiresAt, "uid:token"] → null, so expired tombstones are pruned a few at a time
 *             inside ordinary write transactions (bounded work, no sweeper)
 *   sent      id → SentRecord: what is kept of a message after an upstream accepted recipients
 *             with a provider message id (events.retention; sent.ts), written in the same
 *             transaction as that outcome, so a later provider event can be matched to it
 *   sentIds   "upstream\0providerMessageId" → id, the index provider events are matched by
 *   sentTime  [retainedAt, id] → null: retained records oldest first, pruned a few at a time
 *             inside ordinary write transactions once older than the retention or over its count
 *
 * Ids are the daemon's: an insert checks, inside the same write transaction, that the id is free
 * and fails with SpoolError('EIDEXISTS') otherwise; nothing here ever overwrites a record.
 *
 * All-or-nothing. lmdb-js runs every `transaction()` callback of one event-loop turn in one LMDB
 * transaction, and a callback that throws keeps the writes it already made (lmdb-js write.js,
 * executeTxnCallbacks). So each mutation here runs as a `childTransaction()`: a nested LMDB
 * transaction that is aborted when its callback throws, leaving the batch's other callbacks and
 * the spool as they were. Mutations also compute everything that can throw (the new record, the
 * DSN) before their first write. Tested by test/spool-integrity.test.ts (a DSN builder, an index
 * update and an outcome write that throw; a sibling write in the same batch still commits).
 *
 * Durability. lmdb-js batches every write issued in the same event turn into one transaction
 * (group commit), and on Linux defaults to `overlappingSync`: the write promise resolves when the
 * transaction is *committed and visible*, while the fsync of that commit completes later. So
 * `accept()` awaits the commit and then `root.flushed` as taken when its transaction was queued,
 * which resolves only after the OS reports that batch synced to storage. Only then does the caller
 * (SMTP 250, sendmail exit 0) acknowledge (tested by test/faults/durability-order.test.ts: under
 * strace, the pages, then a completed fdatasync, then the 250, also for sessions in one batch).
 * LMDB's copy-on-write B-tree plus meta-page switch makes each commit atomic: after a crash at
 * any moment a message is either wholly present (record, body and index) or absent. That is
 * LMDB's property, not tested here; what the daemon does with a damaged or
 * truncated file is (test/faults/damaged-spool.test.ts).
 *
 * One writer: the daemon holds the spool lock (lock.ts) while it runs; queue commands send their
 * changes to it, and write here themselves only while no daemon runs, holding the same lock.
 * Readers (mailq, queue show, status) open the environment concurrently; LMDB gives them a
 * consistent snapshot. Every read-modify-write still runs inside one transaction.
 */
import { EventEmitter } from 'node:events';
import { accessSync, constants, existsSync, mkdirSync, statSync, statfsSync } from 'node:fs';
import { join } from 'node:path';
import { open, type Database, type RootDatabase } from 'lmdb';
import { SpoolError } from '../errors.js';
import { bufferBody, type MessageBody } from '../message/body.js';
import { BODY_FILE_MIN, BodyFiles, type BodyFileWriter } from './body-files.js';
import { bodyChecksum, bodyProblem } from './checksum.js';
import { commitCause, ignoreOrphanCommitRejections } from './commit-errors.js';
import { spoolFileProblem } from './file-check.js';
import { newQueueId } from './ids.js';
import { DiskReserve } from './reserve.js';
import { newlyAccepted, retained, sentKey, type Retention } from './sent.js';
import { allowed, assertAllowed, deliveryState, transition, type MessageState } from './states.js';
import { count, sameStats, statsOf, type SpoolStats } from './stats.js';
import { SENT_HEADERS_LIMIT, type AcceptMeta, type Envelope, type MessageRecord, type RecipientDsn, type SentRecord } from './types.js';

type DueKey = [number, string];
type ExpiryKey = [number, string];
type SentTimeKey = [number, string];

/** A recipient accepted with a provider message id, as sentSince() lists them (for polling per-message status APIs). */
export interface SentRecipientRef {
  queueId: string;
  address: string;
  providerMessageId: string;
  acceptedAt: number;
}

/** An idempotency token's entry: the message it queued; `expiresAt` is set once that message is gone. */
interface TokenEntry {
  id: string;
  expiresAt: number | null;
}

/** A client's idempotency token, scoped to the uid that submitted it (see intake/submission.ts). */
export interface SubmitToken {
  uid: number;
  token: string;
}

/** What accept() did: a new message, or the one already queued (or delivered) under the same token. */
export interface Accepted {
  id: string;
  duplicate: boolean;
}

/** Postfix's maximal_queue_lifetime default: how long tombstones live when the caller names no max_age. */
const DEFAULT_TOMBSTONE_MS = 5 * 86_400_000;
/** Expired tombstones removed per write transaction. */
const PRUNE_BATCH = 32;
/** Stale due entries looked at (and queued for removal) per scan. */
const STALE_SCAN = 1000;
/** How long a measurement of the disk's room (statfs, stat, LMDB page counts) serves the min_free check. */
const ROOM_TTL_MS = 500;
/**
 * What a new message is charged against the last room measurement until the next one: its bytes
 * rounded up to whole 4 KB pages, plus 16 KB for its record, index entries and the copy-on-write
 * pages of the commit. More than a message uses, so between two measurements the estimate of
 * the room only errs low.
 */
const footprint = (size: number) => Math.ceil(size / 4096) * 4096 + 16 * 1024;

export interface SpoolCounts {
  messages: number;
  held: number;
  /** Messages by state: held, deferred (some recipient failed transiently), pending (not tried yet). */
  byState: Record<MessageState, number>;
  recipientsByStatus: Record<string, number>;
  oldestReceivedAt: number | null;
}

/** Result of an operator action on one message. */
export type ActionResult = 'done' | 'unchanged' | 'not-found';

/** A new message produced while recording an outcome (a DSN), committed in the same transaction. */
export interface NewMessage {
  envelope: Envelope;
  bytes: Buffer;
  meta: AcceptMeta;
}

/** What went wrong with the spool's storage lately; shown by `status` (CRITICAL) until resolved. */
export interface SpoolFault {
  code: SpoolError['code'];
  message: string;
  at: number;
  /** For a refusal of new mail: true once a message of the refused size would fit again. */
  resolved?: () => boolean;
}

/** The limits a config sets; `setLimits` changes them on reload. */
export interface SpoolLimits {
  maxSize?: number;
  minFree?: number;
  tombstoneMs?: number;
  retention?: Retention;
}

/** Called when a commit became visible but was not made durable: the process must stop (never returns). */
export type FailStop = (error: SpoolError) => void;

/** A message's body for one delivery attempt; `close()` when the attempt is over. `damage` is set once a read found it damaged. */
export interface OpenedBody extends MessageBody {
  readonly damage: string | undefined;
  close(): void;
}

/** The key of the counters record in the `stats` database. */
const COUNTERS = 'counters';
/** The key of the retained-record count in the `stats` database. */
const RETAINED = 'retained';

export class Spool extends EventEmitter {
  private readonly root: RootDatabase;
  private readonly messages: Database<MessageRecord, string>;
  private readonly bodies: Database<Buffer, string>;
  /** Bodies of BODY_FILE_MIN bytes or more, as files (body-files.ts). */
  private readonly bodyFiles: BodyFiles;
  /** Body files whose records the transaction body now running removes: unlinked once that commit is synced. */
  private unlinksInTxn: MessageRecord[] = [];
  private readonly due: Database<null, DueKey>;
  private readonly tokens: Database<TokenEntry, string>;
  private readonly expiry: Database<null, ExpiryKey>;
  private readonly sent: Database<SentRecord, string>;
  private readonly sentIds: Database<string, string>;
  private readonly sentTime: Database<null, SentTimeKey>;
  /** The queue's counters (stats.ts), one record under COUNTERS, written in the transactions that change them. */
  private readonly stats: Database<SpoolStats, string>;
  /** The counters as changed so far by the transaction body now running; written at its end. */
  private statsInTxn: SpoolStats | undefined;
  private closed = false;
  private readonly reserve: DiskReserve | undefined;
  private fault: SpoolFault | undefined;
  /**
   * No tombstone expires before this time (ms): pruneTombstonesSync skips its range scan until
   * then. Undefined until the first scan and after a transaction that failed (its prune was
   * undone); lowered whenever a tombstone is written.
   */
  private tombstonesDueAt: number | undefined;
  /** The last room measurement (roomBytes) and what accepts since have been charged against it (hasRoom). */
  private room: { bytes: number; at: number; charged: number } | undefined;
  /** Set by the daemon; without it (the CLI) a durability failure is thrown as ESPOOLSYNC. */
  failStop: FailStop | undefined;
  private healing = false;

  private constructor(
    readonly path: string,
    private maxSize: number,
    private minFree: number,
    reserveBytes: number,
    private tombstoneMs: number,
    private retention: Retention | undefined,
  ) {
    super();
    mkdirSync(path, { recursive: true, mode: 0o700 });
    ignoreOrphanCommitRejections();
    // Never let LMDB map a damaged file: it would crash with SIGBUS/SIGSEGV and no message.
    const file = Spool.file(path);
    const problem = existsSync(file) ? spoolFileProblem(file) : undefined;
    if (problem) throw new SpoolError('ESPOOLDAMAGED', problem);
    if (reserveBytes > 0) {
      // Never more than an eighth of the file system: a small dedicated spool disk keeps most of its room.
      const disk = statfsSync(path);
      this.reserve = new DiskReserve(path, Math.min(reserveBytes, Math.floor((disk.blocks * disk.bsize) / 8)));
      this.reserve.ensure();
    }
    this.bodyFiles = new BodyFiles(path);
    this.root = open({
      path: Spool.file(path),
      maxDbs: 12,
      compression: false,
      // File mode of queue.mdb and its lock file (mdb_env_open's mode; lmdb-js passes it through,
      // default 0664): mail is nobody else's business, whatever the directory's mode.
      permissionsMode: 0o600,
    } as Parameters<typeof open>[0]);
    this.messages = this.root.openDB<MessageRecord, string>({ name: 'messages', encoding: 'msgpack' });
    this.bodies = this.root.openDB<Buffer, string>({ name: 'bodies', encoding: 'binary' });
    this.due = this.root.openDB<null, DueKey>({ name: 'due', encoding: 'msgpack' });
    this.tokens = this.root.openDB<TokenEntry, string>({ name: 'tokens', encoding: 'msgpack' });
    this.expiry = this.root.openDB<null, ExpiryKey>({ name: 'expiry', encoding: 'msgpack' });
    this.stats = this.root.openDB<SpoolStats, string>({ name: 'stats', encoding: 'msgpack' });
    this.sent = this.root.openDB<SentRecord, string>({ name: 'sent', encoding: 'msgpack' });
    this.sentIds = this.root.openDB<string, string>({ name: 'sentIds', encoding: 'msgpack' });
    this.sentTime = this.root.openDB<null, SentTimeKey>({ name: 'sentTime', encoding: 'msgpack' });
  }

  /** A config reload's limits (see `open`); they apply from the next message and transaction on. */
  setLimits(limits: SpoolLimits): void {
    this.maxSize = limits.maxSize ?? Infinity;
    this.minFree = limits.minFree ?? 0;
    this.tombstoneMs = limits.tombstoneMs ?? DEFAULT_TOMBSTONE_MS;
    this.retention = limits.retention;
  }

  private static file(path: string): string {
    return join(path, 'queue.mdb');
  }

  /**
   * For the CLI: opens the spool only if the daemon created it. Creating it here (say as root,
   * before the daemon's first start) would leave files the daemon's own user cannot open.
   */
  static openExisting(path: string, options: { tombstoneMs?: number; retention?: Retention } = {}): Spool {
    try {
      accessSync(Spool.file(path), constants.R_OK | constants.W_OK);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      // A spool this user may not enter is not a missing one (mailq as a user: exit 77, not 75).
      if (code === 'EACCES' || code === 'EPERM') throw new SpoolError('EACCES', `${path}: Permission denied (the spool belongs to the daemon's user; run this as that user or root)`, { cause: error });
    }
    if (!existsSync(Spool.file(path))) {
      throw new SpoolError('ENOTFOUND', `no spool at ${path}: the daemon has not run yet with this config, or spool.path is wrong`);
    }
    return Spool.open(path, options);
  }

  /**
   * `maxSize` caps the live data (messages, bodies, index); the LMDB map itself grows on demand.
   * `minFree` is the room (free disk plus pages LMDB freed and will reuse) a new message must leave
   * behind: LMDB writes copy-on-write, so recording deliveries and deleting messages needs free
   * pages too — without this reserve a full disk would stop the queue from ever draining.
   * `tombstoneMs` is how long an idempotency token outlives its message (the daemon passes max_age).
   * `retention`: how long and how many sent records are kept (events.retention, events.max_retained);
   * absent, nothing is retained (and `sent()` finds nothing).
   */
  static open(path: string, options: SpoolLimits & { reserve?: number } = {}): Spool {
    try {
      return new Spool(path, options.maxSize ?? Infinity, options.minFree ?? 0, options.reserve ?? 0, options.tombstoneMs ?? DEFAULT_TOMBSTONE_MS, options.retention);
    } catch (error) {
      if (error instanceof SpoolError && error.code === 'ESPOOLDAMAGED') {
        throw new SpoolError('ESPOOLDAMAGED', `spool at ${path} is damaged: ${error.message}`, { cause: error });
      }
      const damaged = /MDB_INVALID|MDB_CORRUPTED|MDB_VERSION_MISMATCH|MDB_PAGE_NOTFOUND/.test((error as Error).message);
      throw new SpoolError(damaged ? 'ESPOOLDAMAGED' : 'ESPOOLIO', `cannot open spool at ${path}: ${(error as Error).message}`, { cause: error });
    }
  }

  /**
   * Stores a message and its envelope; resolves with the queue id only once the commit is
   * fsynced. On failure nothing is stored (the transaction is atomic) and a SpoolError is thrown:
   * ESPOOLFULL, ESPOOLIO, or EIDEXISTS when `meta.id` is already taken (never overwritten).
   * Tested by test/faults/intake-faults.test.ts (ENOSPC/EIO writing pages: nothing stored) and
   * test/spool-integrity.test.ts (two inserts with one id).
   */
  async accept(envelope: Envelope, bytes: Buffer, meta: AcceptMeta, now = Date.now()): Promise<string> {
    return (await this.acceptOnce(envelope, bytes, meta, undefined, now)).id;
  }

  /**
   * accept(), idempotent per `token`: when the submitter's uid already queued a message under this
   * token (still queued, or gone less than `tombstoneMs` ago) nothing is stored and that message's
   * id comes back with `duplicate: true`. Check and insert happen in one write transaction, so two
   * simultaneous submissions with the same token queue exactly one message.
   */
  async acceptOnce(envelope: Envelope, bytes: Buffer, meta: AcceptMeta, token: SubmitToken | undefined, now = Date.now()): Promise<Accepted> {
    const id = meta.id ?? newQueueId(now);
    this.admit(bytes.length); // before anything is written
    if (bytes.length < BODY_FILE_MIN) return this.insertAccepted(newRecord(id, envelope, bytes.length, bodyChecksum(bytes), meta, now), bytes, token, now);
    const body = this.bodyFiles.create(id);
    body.append(bytes);
    return this.acceptBodyFile(envelope, body, meta, token, now);
  }

  /**
   * A body file for a message still arriving (SMTP DATA of a large message), written as its bytes
   * are appended: the body is never held whole in memory. Nothing is durable and no record names
   * it until acceptReceived(); a message that is not accepted after all must be `abort()`ed,
   * which removes the file (start-up removes what a crash leaves).
   */
  receiveBody(id: string): BodyFileWriter {
    return this.bodyFiles.create(id);
  }

  /**
   * accept() of a body received with receiveBody() (`meta.id` is its id): the same checks, the same
   * single commit after the file and its name are synced, the same errors; on any failure the file
   * is removed.
   */
  async acceptReceived(envelope: Envelope, body: BodyFileWriter, meta: AcceptMeta, now = Date.now()): Promise<string> {
    try {
      this.admit(body.size);
    } catch (error) {
      await body.abort();
      throw error;
    }
    return (await this.acceptBodyFile(envelope, body, { ...meta, id: body.id }, undefined, now)).id;
  }

  /** Refuses (ESPOOLFULL) a new message of `size` bytes when min_free, the disk reserve or (for a body file, whose writing it saves) max_size says no room. */
  private admit(size: number): void {
    if (this.minFree > 0 && !this.hasRoom(size)) {
      throw this.refused(`not enough free space in ${this.path} (keeping ${this.minFree} bytes for queue bookkeeping)`, this.fits(size));
    }
    if (this.reserve && !this.reserve.ensure(ROOM_TTL_MS)) {
      throw this.refused(`disk full: the spool's reserve for delivery bookkeeping (${this.reserve.file}) is in use; new mail is refused until it can be written again`, this.fits(size));
    }
    // Not worth writing a file the check in the transaction (authoritative) would refuse.
    if (size >= BODY_FILE_MIN && this.queuedBytes() + size > this.maxSize) throw this.refused(`spool is full (max_size ${this.maxSize} bytes)`, this.fits(size));
  }

  /** For `status`: whether a refused message of `size` bytes would fit now. */
  private fits(size: number): () => boolean {
    return () => this.queuedBytes() + size <= this.maxSize && (this.minFree === 0 || this.roomBytes() >= this.minFree + size);
  }

  /** A body file is durable (file and name synced) before the record naming it is committed. */
  private async acceptBodyFile(envelope: Envelope, body: BodyFileWriter, meta: AcceptMeta, token: SubmitToken | undefined, now: number): Promise<Accepted> {
    if (this.closed) {
      await body.abort();
      throw new SpoolError('ESPOOLIO', 'spool is closed');
    }
    try {
      await body.finish();
    } catch (error) {
      // Remembered for `status`, as a failed commit is.
      const failure = error as SpoolError;
      if (failure.code === 'ESPOOLFULL' || failure.code === 'ESPOOLIO') this.fault = { code: failure.code, message: failure.message, at: Date.now() };
      throw error;
    }
    const record = newRecord(body.id, envelope, body.size, body.crc, meta, now);
    record.bodyFile = body.flags();
    return this.insertAccepted(record, undefined, token, now);
  }

  /** The commit of a new message (its body in `bytes`, or its synced file when `record.bodyFile`), admitted by the caller; see acceptOnce. */
  private async insertAccepted(record: MessageRecord, bytes: Buffer | undefined, token: SubmitToken | undefined, now: number): Promise<Accepted> {
    const key = token && tokenKey(token);
    if (key) record.tokenKey = key;
    let existing: string | undefined;
    try {
      await this.commit(() => {
        existing = undefined;
        this.pruneTombstonesSync(now);
        const seen = key === undefined ? undefined : this.tokens.get(key);
        if (seen) {
          existing = seen.id;
          return;
        }
        // max_size inside the transaction, where the counters include every commit before this
        // one: sessions accepting at the same moment cannot together pass it.
        const counters = this.stats.get(COUNTERS);
        if (this.queuedBytes(counters) + record.size > this.maxSize) throw this.refused(`spool is full (max_size ${this.maxSize} bytes)`, this.fits(record.size));
        this.statsInTxn = counters; // what recordSync would read again
        this.insertSync(record, bytes);
        if (key) this.tokens.putSync(key, { id: record.id, expiresAt: null });
      }, 'intake');
    } catch (error) {
      // Not committed, so no record names the file: remove it. Except after ESPOOLSYNC, where the
      // commit may be on disk after all (the daemon has stopped; start-up decides).
      if (record.bodyFile && !(error instanceof SpoolError && error.code === 'ESPOOLSYNC')) this.bodyFiles.remove(record.id);
      throw error;
    }
    if (existing !== undefined) {
      if (record.bodyFile) this.bodyFiles.remove(record.id);
      return { id: existing, duplicate: true };
    }
    this.emit('accepted', record.id, record.origin.protocol);
    return { id: record.id, duplicate: false };
  }

  get(id: string): MessageRecord | undefined {
    return this.messages.get(id);
  }

  /** The whole stored body, not checked (undefined when missing or unreadable): for queue show/export, bounces, the integrity check. */
  body(id: string): Buffer | undefined {
    return this.messages.get(id)?.bodyFile ? this.bodyFiles.read(id) : this.bodies.get(id);
  }

  /** Why the record's stored body cannot be trusted (missing, wrong size, checksum), or undefined. */
  bodyProblem(record: MessageRecord): string | undefined {
    const bytes = record.bodyFile ? this.bodyFiles.read(record.id) : this.bodies.get(record.id);
    if (!bytes && record.bodyFile) return `message body file ${this.bodyFiles.path(record.id)} is missing or unreadable`;
    return bodyProblem(record.bodyCrc32, bytes, record.size);
  }

  /**
   * The body for a delivery attempt, or why it cannot be sent. An LMDB body is read and checked
   * whole; a body file is opened and its size checked, and its checksum is checked as it is
   * streamed (a mismatch fails the stream before its end and sets `damage`).
   */
  openBody(record: MessageRecord): OpenedBody | { problem: string } {
    if (record.bodyFile) {
      const opened = this.bodyFiles.open(record);
      return typeof opened === 'string' ? { problem: opened } : opened;
    }
    const raw = this.bodies.get(record.id);
    const problem = bodyProblem(record.bodyCrc32, raw, record.size);
    if (problem || !raw) return { problem: problem ?? 'message body missing from the spool' };
    return Object.assign(bufferBody(raw), { damage: undefined, close: () => undefined });
  }

  /**
   * Start-up, after the spool is open and verified, before it serves: removes body files that no
   * record names (a crash between a body file and its record's commit, or between a record's
   * removal and its file's unlink). Returns their names.
   */
  removeOrphanBodyFiles(): string[] {
    const removed: string[] = [];
    for (const id of this.bodyFiles.ids()) {
      if (this.messages.get(id)?.bodyFile) continue;
      this.bodyFiles.remove(id);
      removed.push(id);
    }
    return removed;
  }

  /**
   * Ids whose next attempt is due at or before `now`, oldest due first, leaving out `skip` (being
   * delivered). Self-healing: an index entry without a record, for a held or finished record, or
   * whose time is not the record's nextAttemptAt is never returned (it would take a delivery slot
   * for nothing, forever) and is removed in a transaction of its own (event 'stale-due').
   */
  dueIds(now: number, limit: number, skip: ReadonlySet<string> = new Set()): string[] {
    const ids: string[] = [];
    const stale: DueKey[] = [];
    for (const key of this.due.getKeys({ start: [0, ''], end: [now, '\uffff'] })) {
      if (ids.length >= limit || stale.length >= STALE_SCAN) break;
      if (skip.has(key[1])) continue;
      if (this.isCurrentDue(key)) ids.push(key[1]);
      else stale.push(key);
    }
    this.dropStaleDue(stale);
    return ids;
  }

  /** The earliest scheduled attempt among messages not in `skip` (those being delivered right now). */
  nextDueAt(skip: ReadonlySet<string> = new Set()): number | undefined {
    const stale: DueKey[] = [];
    let next: number | undefined;
    for (const key of this.due.getKeys({})) {
      if (stale.length >= STALE_SCAN) break;
      if (skip.has(key[1])) continue;
      if (this.isCurrentDue(key)) {
        next = key[0];
        break;
      }
      stale.push(key);
    }
    this.dropStaleDue(stale);
    return next;
  }

  private isCurrentDue([at, id]: DueKey): boolean {
    const record = this.messages.get(id);
    return record !== undefined && allowed(deliveryState(record), 'start') && record.nextAttemptAt === at;
  }

  /** Removes stale due entries (re-checked inside the transaction); one such cleanup at a time. */
  private dropStaleDue(stale: DueKey[]): void {
    if (stale.length === 0 || this.healing || this.closed) return;
    this.healing = true;
    let removed = 0;
    this.commit(() => {
      removed = 0;
      for (const key of stale) {
        if (this.isCurrentDue(key)) continue;
        this.due.removeSync(key);
        removed++;
      }
    }).then(
      () => {
        this.healing = false;
        if (removed > 0) this.emit('stale-due', removed);
      },
      (error: unknown) => {
        this.healing = false;
        this.emit('stale-due-error', error);
      },
    );
  }

  /** Writes a compacted copy of the spool (live pages only) to `path`: see compact.ts. */
  async compactCopy(path: string): Promise<void> {
    await this.root.backup(path, true);
  }

  /** Size of the spool file (it grows on demand and never shrinks by itself). */
  fileBytes(): number {
    return statSync(Spool.file(this.path)).size;
  }

  /**
   * Bytes of the queued messages, what max_size caps: the counters' sum (stats.ts), kept in the
   * transactions that add and remove messages, so checking it costs one small read. Inside a write
   * transaction it includes the transaction's own changes. A spool whose counters predate the sum
   * (until the daemon's start-up check rebuilds them) is scanned.
   */
  queuedBytes(counters = this.statsInTxn ?? this.stats.get(COUNTERS)): number {
    const stored = counters?.bytes;
    return stored !== undefined && Number.isFinite(stored) ? stored : statsOf(this.list()).bytes;
  }

  /** Bytes held by live pages of the queue's databases (freed pages are reused, so this can shrink). */
  liveBytes(): number {
    return pageBytes([this.messages, this.bodies, this.due, this.stats]);
  }

  /** Bytes held by retained sent records and their indexes: not queued mail (outside max_size), but not free room either. */
  retainedBytes(): number {
    return pageBytes([this.sent, this.sentIds, this.sentTime]);
  }

  /** New mail refused for lack of room: remembered for `status` until there is room again. */
  private refused(message: string, resolved: () => boolean): SpoolError {
    this.fault = { code: 'ESPOOLFULL', message, at: Date.now(), resolved };
    return new SpoolError('ESPOOLFULL', message);
  }

  /** Room for new data: free space on the filesystem plus allocated pages of the file that are not live (reused by LMDB). */
  private roomBytes(): number {
    const disk = statfsSync(this.path);
    const allocated = statSync(Spool.file(this.path)).blocks * 512;
    return disk.bavail * disk.bsize + Math.max(0, allocated - this.liveBytes() - this.retainedBytes());
  }

  /**
   * Whether a new message of `size` bytes leaves min_free room. roomBytes() costs two system calls
   * and seven LMDB page counts, so a measurement serves for ROOM_TTL_MS, with every message
   * accepted since charged against it (footprint: more than it uses). A refusal always rests on a
   * fresh measurement, and a disk filled by something else is seen within ROOM_TTL_MS (LMDB's
   * own ENOSPC, answered 452 as well, and the disk reserve cover that window). Tested by
   * test/faults/spool-room.test.ts.
   */
  private hasRoom(size: number): boolean {
    const now = performance.now();
    let room = this.room;
    if (!room || now - room.at >= ROOM_TTL_MS || room.bytes - room.charged < this.minFree + size) {
      room = this.room = { bytes: this.roomBytes(), at: now, charged: 0 };
      if (room.bytes < this.minFree + size) return false;
    }
    room.charged += footprint(size);
    return true;
  }

  /**
   * Every message in queue-id (arrival) order, read a page at a time: memory stays bounded by the
   * page, and no read transaction stays open while the caller works (a long-lived reader would
   * keep LMDB from reusing freed pages, growing the file). Each page is its own snapshot.
   */
  *list(pageSize = 500): Generator<MessageRecord> {
    let after: string | undefined;
    for (;;) {
      const range = this.messages.getRange(after === undefined ? { limit: pageSize } : { start: after, limit: pageSize + 1 });
      const page = [...range].filter(({ key }) => key !== after).map(({ value }) => value);
      if (page.length === 0) return;
      yield* page;
      after = page[page.length - 1]!.id;
    }
  }

  /**
   * The queue's counts without scanning it: the counters kept in the spool, and the oldest message
   * from the first key of the (arrival-ordered) message ids. A spool whose counters are not built
   * yet (an older spool before the daemon's start-up check) is scanned instead.
   */
  counts(): SpoolCounts {
    const stored = this.stats.get(COUNTERS);
    const stats = stored ?? statsOf(this.list());
    const [oldest] = this.messages.getRange({ limit: 1 }).map(({ value }) => value);
    return {
      messages: stats.messages,
      held: stats.byState.held,
      byState: { ...stats.byState },
      recipientsByStatus: Object.fromEntries(Object.entries(stats.recipientsByStatus).filter(([, n]) => n > 0)),
      oldestReceivedAt: oldest?.receivedAt ?? null,
    };
  }

  /**
   * The start-up self-check and `queue verify`: the stored counters against `scanned` (a full
   * scan). 'missing' for a spool written before counters existed.
   */
  countersAgainst(scanned: SpoolStats): 'ok' | 'missing' | 'mismatch' {
    const stored = this.stats.get(COUNTERS);
    // Counters written before the byte sum existed are rebuilt like missing ones, not a mismatch.
    if (!stored || !Number.isFinite(stored.bytes)) return 'missing';
    return sameStats(stored, scanned) ? 'ok' : 'mismatch';
  }

  /** Recomputes the counters from a full scan, in one transaction (the lock holder only). */
  async rebuildCounters(): Promise<SpoolStats> {
    let stats: SpoolStats | undefined;
    await this.commit(() => {
      stats = statsOf(this.list());
      this.stats.putSync(COUNTERS, stats);
    });
    return stats!;
  }

  /**
   * Read-modify-write of one record in a single transaction. `change` receives the current record
   * (as another process may have changed it) and returns the new one. When every recipient is
   * final the record and body are removed. `extra` messages (DSNs) are inserted in the same
   * transaction, so a bounce is never lost nor created twice (tested by
   * test/spool-integrity.test.ts "a DSN builder that throws…"). Resolves once fsynced; returns the
   * ids of the inserted messages, or undefined when the record no longer exists.
   */
  async update(
    id: string,
    change: (current: MessageRecord) => MessageRecord,
    extra: (next: MessageRecord) => NewMessage[] = () => [],
  ): Promise<{ record: MessageRecord; inserted: string[] } | undefined> {
    let result: { record: MessageRecord; inserted: string[] } | undefined;
    await this.commit(() => {
      result = undefined;
      const current = this.messages.get(id);
      if (!current) return;
      // Everything that can throw first (the outcome, the DSN); then the writes.
      const next = change(structuredClone(current));
      const state = deliveryState(next).name;
      const done = state === 'done';
      if (done || state === 'held' || state === 'damaged') next.nextAttemptAt = null;
      const now = Date.now();
      const extras = extra(next);
      // Before retireSync removes the body: a new sent record takes its headers from it.
      this.retainSync(current, next, now);
      this.unindexSync(current);
      if (done) this.retireSync(next, now, current);
      else {
        this.recordSync(id, current, next);
        this.indexSync(next);
      }
      const inserted = this.insertExtrasSync(extras, now);
      this.pruneTombstonesSync(now);
      result = { record: next, inserted };
    });
    for (const inserted of result?.inserted ?? []) this.emit('accepted', inserted, 'dsn');
    return result;
  }

  /** Inserts the messages an outcome produced (DSNs) under fresh ids; returns the ids. */
  private insertExtrasSync(extras: NewMessage[], now: number): string[] {
    const inserted: string[] = [];
    for (const message of extras) {
      const record = newRecord(this.freeIdSync(now), message.envelope, message.bytes.length, bodyChecksum(message.bytes), message.meta, now);
      this.insertSync(record, message.bytes);
      inserted.push(record.id);
    }
    return inserted;
  }

  /**
   * The retained record of a message (events.retention) by queue id, while it is retained: the
   * message was accepted by an upstream with a provider id. Not queued mail (see SentRecord).
   */
  sentRecord(id: string, now = Date.now()): SentRecord | undefined {
    const sent = this.retention ? this.sent.get(id) : undefined;
    return sent && this.isRetained(sent, now) ? sent : undefined;
  }

  /** The retained record an upstream's provider message id belongs to (angle brackets ignored). */
  sentFor(upstream: string, providerMessageId: string, now = Date.now()): SentRecord | undefined {
    const id = this.retention ? this.sentIds.get(sentKey(upstream, providerMessageId)) : undefined;
    return id === undefined ? undefined : this.sentRecord(id, now);
  }

  /**
   * Recipients `upstream` accepted at or after `sinceMs` that are still retained, oldest first:
   * for polling a provider's per-message status API. Reads the time index (no full scan of the
   * queue), a page at a time like list().
   */
  *sentSince(upstream: string, sinceMs: number, now = Date.now(), pageSize = 500): Generator<SentRecipientRef> {
    if (!this.retention) return;
    let start: SentTimeKey = [Math.max(sinceMs, now - this.retention.ms), ''];
    for (;;) {
      const keys = [...this.sentTime.getKeys({ start, limit: pageSize + 1 })].filter((k) => k[0] !== start[0] || k[1] !== start[1]);
      if (keys.length === 0) return;
      for (const [at, id] of keys) {
        const sent = this.sent.get(id);
        if (!sent || sent.retainedAt !== at) continue;
        for (const r of sent.recipients) {
          if (r.upstream === upstream && r.acceptedAt >= sinceMs) yield { queueId: id, address: r.address, providerMessageId: r.providerMessageId, acceptedAt: r.acceptedAt };
        }
      }
      start = keys[keys.length - 1]!;
    }
  }

  /**
   * Read-modify-write of a retained record in one transaction, like update(): `change` gets the
   * current record and returns the new one, `extra` the notices to queue with it (all or nothing).
   * Resolves once fsynced; undefined when the record is not (or no longer) retained.
   */
  async updateSent(id: string, change: (current: SentRecord) => SentRecord, extra: (next: SentRecord) => NewMessage[] = () => []): Promise<{ record: SentRecord; inserted: string[] } | undefined> {
    let result: { record: SentRecord; inserted: string[] } | undefined;
    await this.commit(() => {
      result = undefined;
      const now = Date.now();
      const current = this.sentRecord(id, now);
      if (!current) return;
      // Everything that can throw first; then the writes.
      const next = change(structuredClone(current));
      const extras = extra(next);
      this.sent.putSync(id, { ...next, retainedAt: current.retainedAt });
      const inserted = this.insertExtrasSync(extras, now);
      this.pruneSentSync(now);
      result = { record: next, inserted };
    });
    for (const inserted of result?.inserted ?? []) this.emit('accepted', inserted, 'dsn');
    return result;
  }

  private isRetained(sent: SentRecord, now: number): boolean {
    return this.retention !== undefined && now - sent.retainedAt < this.retention.ms;
  }

  /** Keeps (or extends) the sent record of a message whose recipients were just accepted with a provider id. */
  private retainSync(before: MessageRecord, next: MessageRecord, now: number): void {
    if (!this.retention) return;
    const accepted = newlyAccepted(before, next);
    if (accepted.length === 0) return;
    const existing = this.sent.get(next.id);
    if (existing) this.sentTime.removeSync([existing.retainedAt, next.id]);
    else this.putRetainedCount(this.retainedCount() + 1);
    // Never a copy of the whole body: getBinaryFast (LMDB) or the file's first bytes; cappedHeaders copies the few it keeps at once.
    const sent = retained(existing, next, accepted, () => (before.bodyFile ? this.bodyFiles.read(next.id, SENT_HEADERS_LIMIT + 4) : this.bodies.getBinaryFast(next.id)), now);
    this.sent.putSync(next.id, sent);
    this.sentTime.putSync([sent.retainedAt, next.id], null);
    for (const r of accepted) this.sentIds.putSync(sentKey(r.upstream!, r.providerMessageId!), next.id);
    this.pruneSentSync(now);
  }

  /** Removes a few retained records: expired ones, then the oldest while there are more than max_retained. */
  private pruneSentSync(now: number): void {
    if (!this.retention) return;
    const { ms, max } = this.retention;
    let left = this.retainedCount();
    // Oldest first; usually the first key is young enough and nothing is read beyond it.
    const due: SentTimeKey[] = [];
    for (const key of this.sentTime.getKeys({ limit: PRUNE_BATCH })) {
      if (now - key[0] < ms && left - due.length <= max) break;
      due.push(key);
    }
    for (const key of due) {
      this.sentTime.removeSync(key);
      const sent = this.sent.get(key[1]);
      if (!sent || sent.retainedAt !== key[0]) continue;
      for (const r of sent.recipients) {
        const index = sentKey(r.upstream, r.providerMessageId);
        if (this.sentIds.get(index) === key[1]) this.sentIds.removeSync(index);
      }
      this.sent.removeSync(key[1]);
      left--;
    }
    if (left !== this.retainedCount()) this.putRetainedCount(Math.max(0, left));
  }

  /** How many sent records are retained (kept in `stats`, changed in the transactions that add or prune them). */
  retainedCount(): number {
    return (this.stats.get(RETAINED) as unknown as number | undefined) ?? 0;
  }

  private putRetainedCount(value: number): void {
    (this.stats as unknown as Database<number, string>).putSync(RETAINED, value);
  }

  /** Operator hold: the scheduler skips the message until it is released. 'unchanged' when already held. */
  async hold(id: string): Promise<ActionResult> {
    return this.operatorTransition(id, 'hold', { now: Date.now() });
  }

  /** Ends a hold (or a quarantine); the message is due immediately. 'unchanged' when it is not held. */
  async release(id: string, now = Date.now()): Promise<ActionResult> {
    return this.operatorTransition(id, 'release', { now });
  }

  /** Makes a (not held) message due now. A held message is left alone ('unchanged'): release it instead. */
  async retryNow(id: string, now = Date.now()): Promise<ActionResult> {
    return this.operatorTransition(id, 'retry', { now });
  }

  /** Makes every message that is not held due now, in one transaction. Returns how many. */
  async retryAll(now = Date.now()): Promise<number> {
    let count = 0;
    await this.commit(() => {
      // Collect first: writing to the database being iterated would disturb the cursor.
      const waiting = [...this.messages.getRange()].map((e) => e.value).filter((r) => allowed(deliveryState(r), 'retry') && r.nextAttemptAt !== null && r.nextAttemptAt > now);
      count = waiting.length;
      for (const record of waiting) {
        this.unindexSync(record);
        transition(record, 'retry', { now });
        this.messages.putSync(record.id, record); // the time only: no counter changes
        this.indexSync(record);
      }
    });
    return count;
  }

  /**
   * An operator request as a state transition: 'unchanged' (nothing written) when the message's
   * state does not allow it — a request, not a bug — otherwise the transition, checked (states.ts).
   */
  private async operatorTransition(id: string, event: 'hold' | 'release' | 'retry' | 'quarantine', at: { now: number; problem?: string }): Promise<ActionResult> {
    return this.operatorChange(id, (record) => {
      const state = deliveryState(record);
      if (!allowed(state, event) || (event === 'quarantine' && state.name === 'damaged' && state.problem === at.problem)) return false;
      transition(record, event, at);
      return true;
    });
  }

  /** Runs an operator edit through update(); `edit` returns false when nothing needs changing. */
  private async operatorChange(id: string, edit: (record: MessageRecord) => boolean): Promise<ActionResult> {
    let changed = false;
    const updated = await this.update(id, (record) => {
      changed = edit(record);
      return record;
    });
    if (!updated) return 'not-found';
    return changed ? 'done' : 'unchanged';
  }

  /** Deletes a message outright (operator action). Returns what was deleted, undefined when it did not exist. */
  async remove(id: string, now = Date.now()): Promise<MessageRecord | undefined> {
    let removed: MessageRecord | undefined;
    await this.commit(() => {
      removed = undefined;
      const current = this.messages.get(id);
      if (!current) return;
      assertAllowed(id, deliveryState(current), 'delete');
      this.unindexSync(current);
      this.retireSync(current, now);
      removed = current;
    });
    return removed;
  }

  /** The id's token (if any), as the submitter's duplicate check sees it: for tests and `queue show`. */
  tokenFor(token: SubmitToken): { id: string; expiresAt: number | null } | undefined {
    return this.tokens.get(tokenKey(token));
  }

  /** Conditional insert: the id must be free (checked inside the caller's write transaction). */
  private insertSync(record: MessageRecord, bytes: Buffer | undefined): void {
    if (this.messages.get(record.id) !== undefined || this.bodies.get(record.id) !== undefined) {
      throw new SpoolError('EIDEXISTS', `queue id ${record.id} is already taken; nothing was stored`);
    }
    if (!record.bodyFile) this.bodies.putSync(record.id, bytes!);
    this.recordSync(record.id, undefined, record);
    this.indexSync(record);
  }

  private indexSync(record: MessageRecord): void {
    if (record.nextAttemptAt !== null && !record.held) this.due.putSync([record.nextAttemptAt, record.id], null);
  }

  private unindexSync(record: MessageRecord): void {
    if (record.nextAttemptAt !== null) this.due.removeSync([record.nextAttemptAt, record.id]);
  }

  /** A fresh id for a message the spool itself creates (a DSN): one not taken in this transaction. */
  private freeIdSync(now: number): string {
    for (;;) {
      const id = newQueueId(now);
      if (this.messages.get(id) === undefined && this.bodies.get(id) === undefined) return id;
    }
  }

  /**
   * Writes (`after`) or removes (no `after`) a message record and moves the counters from
   * `before` to `after`. Every change of a record's state or recipients goes through here.
   */
  private recordSync(id: string, before: MessageRecord | undefined, after: MessageRecord | undefined): void {
    if (after) this.messages.putSync(id, after);
    else this.messages.removeSync(id);
    const base = this.statsInTxn ?? this.stats.get(COUNTERS);
    if (base) this.statsInTxn = count(base, before, after); // none yet: built at the daemon's start
  }

  /** Removes a message that is finished (or deleted); its token, if any, becomes a tombstone. `stored`: the record as it is in the spool. */
  private retireSync(record: MessageRecord, now: number, stored: MessageRecord = record): void {
    this.recordSync(record.id, stored, undefined);
    if (stored.bodyFile) this.unlinksInTxn.push(stored);
    else this.bodies.removeSync(record.id);
    if (record.tokenKey === undefined) return;
    const expiresAt = now + this.tombstoneMs;
    this.tokens.putSync(record.tokenKey, { id: record.id, expiresAt });
    this.expiry.putSync([expiresAt, record.tokenKey], null);
    this.tombstonesDueAt = Math.min(this.tombstonesDueAt ?? Infinity, expiresAt);
  }

  /** Removes a few expired tombstones; called inside ordinary write transactions. */
  private pruneTombstonesSync(now: number): void {
    if (this.tombstonesDueAt !== undefined && now < this.tombstonesDueAt) return;
    const expired = [...this.expiry.getKeys({ start: [0, ''], end: [now, '\uffff'], limit: PRUNE_BATCH })];
    for (const key of expired) {
      const entry = this.tokens.get(key[1]);
      if (entry && entry.expiresAt === key[0]) this.tokens.removeSync(key[1]);
      this.expiry.removeSync(key);
    }
    // The earliest tombstone left (more expired ones than a batch: due now, so the next one scans).
    const next: ExpiryKey | undefined = expired.length < PRUNE_BATCH ? [...this.expiry.getKeys({ limit: 1 })][0] : [now, ''];
    this.tombstonesDueAt = next ? next[0] : Infinity;
  }

  /**
   * Runs `body` in a write transaction and waits until the commit is on stable storage.
   *
   * Failures. A commit that fails before LMDB writes its meta page (ENOSPC or EIO writing data
   * pages) is invisible: nothing changed, the SpoolError goes to the caller (intake answers
   * 452/451, delivery keeps the old state). A bookkeeping commit (anything but new mail) that
   * fails with ENOSPC gets the disk reserve released and one more try (see reserve.ts).
   *
   * A commit that became visible but whose fsync failed is different: its pages may never reach
   * the disk (Linux marks them clean after a failed fsync, so a later fsync "succeeds" without
   * writing them — the PostgreSQL fsync lesson), and every later commit would build on them. The
   * spool cannot be trusted in memory any more, and undoing the commit would need another fsync
   * on the same failing disk. So it is a fail-stop: `failStop` (the daemon exits at once, before
   * any reply is sent) — the SMTP client sees the connection drop, not a 451, and retries; after
   * the restart the message is either wholly in the spool or absent, so the worst case is a
   * duplicate, never a loss, and never a 451'd message delivered. Tested by
   * test/faults/intake-faults.test.ts ("EIO from fdatasync after the commit is visible…") and
   * test/faults/maildrop-faults.test.ts (the maildrop file outlives the fail-stop).
   */
  private async commit(body: () => void, kind: 'intake' | 'bookkeeping' = 'bookkeeping'): Promise<void> {
    if (this.closed) throw new SpoolError('ESPOOLIO', 'spool is closed');
    let error = await this.tryCommit(body);
    if (error?.code === 'ESPOOLFULL' && kind === 'bookkeeping' && this.reserve?.release()) {
      this.emit('reserve-released');
      error = await this.tryCommit(body);
    }
    if (!error) {
      if (this.fault && this.fault.code !== 'ESPOOLSYNC') this.fault = undefined;
      return;
    }
    this.fault = { code: error.code, message: error.message, at: Date.now() };
    if (error.code === 'ESPOOLSYNC') this.failStop?.(error);
    throw error;
  }

  /**
   * One attempt. An error thrown by `body` itself (EIDEXISTS, a failed DSN build) is not a commit
   * failure: its child transaction was aborted, the batch it rode in may well have committed, and
   * it goes to the caller as it is (no fault, no fail-stop).
   */
  private async tryCommit(body: () => void): Promise<SpoolError | undefined> {
    const before = this.lastTxnId();
    let thrown: { error: unknown } | undefined;
    let unlinks: MessageRecord[] = [];
    try {
      const committed = this.root.childTransaction(() => {
        try {
          this.statsInTxn = undefined;
          this.unlinksInTxn = [];
          body();
          // The counters go in the same (child) transaction: aborted with it, committed with it.
          if (this.statsInTxn) this.stats.putSync(COUNTERS, this.statsInTxn);
          this.statsInTxn = undefined;
          unlinks = this.unlinksInTxn;
        } catch (error) {
          this.statsInTxn = undefined;
          this.tombstonesDueAt = undefined; // the prune (if any) is undone with the rest
          thrown = { error };
          throw error;
        } finally {
          this.unlinksInTxn = [];
        }
      });
      // `flushed` resolves once every write issued before it was taken is synced (lmdb-js README,
      // db.flushed). Taken here, right after this transaction was queued, it covers this
      // transaction's batch; taken after the commit it would also wait for the batches other
      // sessions queued meanwhile (one more commit and fdatasync: +6 ms p50 per 250 under load,
      // docs/performance.md). A failed commit is reported by `committed`.
      const flushed = new Promise<void>((resolve, reject) => void this.root.flushed.then(() => resolve(), reject));
      flushed.catch(() => undefined);
      await committed;
      await flushed;
      // The records' removal is on disk: only now may their body files go (a crash before this leaves orphans, which start-up removes).
      for (const record of unlinks) this.bodyFiles.remove(record.id);
      return undefined;
    } catch (error) {
      if (thrown) throw thrown.error;
      this.tombstonesDueAt = undefined; // nothing of the batch was committed
      const failure = await toSpoolError(error);
      // The transaction id moved: the commit is visible (to this and other processes) but not
      // durable. MDB_PANIC: LMDB could not write its meta page and refuses all further work.
      if (this.lastTxnId() > before || /MDB_PANIC/.test(failure.message)) {
        return new SpoolError('ESPOOLSYNC', `commit visible but not synced to disk (${failure.message}); not trusting the spool in memory`, { cause: error });
      }
      // LMDB reports a short write as EIO ("filesystem full?" in mdb.c): on a nearly full disk that
      // is ENOSPC in disguise, and must get the reserve and the 452 a full disk gets.
      if (failure.code === 'ESPOOLIO' && this.diskNearlyFull()) {
        return new SpoolError('ESPOOLFULL', `spool is full: ${failure.message} (a short write on a nearly full file system)`, { cause: error });
      }
      return failure;
    }
  }

  /** Less free space than a message needs to be recorded: what a short write on this disk means. */
  private diskNearlyFull(): boolean {
    try {
      const disk = statfsSync(this.path);
      return disk.bavail * disk.bsize < Math.max(this.minFree, 1024 * 1024);
    } catch {
      return false;
    }
  }

  /**
   * The environment's last committed transaction; Infinity when LMDB cannot even say (it panicked).
   * Read before every commit: lmdb-js's `getStats()` also collects the database's, the
   * environment's and the free list's page statistics (~1.5 % of the daemon's CPU under load), so
   * the environment's own info() (mdb_env_info, what getStats() takes lastTxnId from) is asked
   * when lmdb-js exposes it; test/spool.test.ts checks that both agree.
   */
  lastTxnId(): number {
    try {
      const env = (this.root as unknown as { env?: { info?: () => { lastTxnId?: unknown } } }).env;
      const id = env?.info?.().lastTxnId;
      return typeof id === 'number' ? id : (this.root.getStats() as { lastTxnId: number }).lastTxnId;
    } catch {
      return Infinity;
    }
  }

  /**
   * Problems an operator must know about (status goes CRITICAL): the last failed commit, until a
   * commit succeeds again, and a released disk reserve, until it can be written again.
   */
  health(): { problems: string[] } {
    if (this.reserve && !this.reserve.held && this.roomBytes() >= this.minFree + this.reserve.size) this.reserve.ensure();
    const fault = this.fault;
    if (fault?.code === 'ESPOOLFULL' && (this.reserve?.held ?? true) && (fault.resolved ? fault.resolved() : this.roomBytes() > this.minFree)) this.fault = undefined;
    const problems: string[] = [];
    if (this.fault) problems.push(`${this.fault.message} (at ${new Date(this.fault.at).toISOString()})`);
    if (this.reserve && !this.reserve.held) problems.push(`disk full: the reserve ${this.reserve.file} is released; new mail is refused until there is room for it`);
    return { problems };
  }

  /** Keys of the stored bodies, in LMDB and as files (for the integrity check). */
  *bodyIds(): Generator<string> {
    for (const key of this.bodies.getKeys()) yield key;
    yield* this.bodyFiles.ids();
  }

  /** Every entry of the due index as [time, id] (for the integrity check). */
  *dueEntries(): Generator<DueKey> {
    for (const key of this.due.getKeys()) yield key;
  }

  /** Holds a message whose stored copy is damaged, with the reason; it is never delivered as it is. */
  async quarantine(id: string, problem: string): Promise<ActionResult> {
    return this.operatorTransition(id, 'quarantine', { now: Date.now(), problem });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    // After a failed commit lmdb-js never resolves `flushed`; do not hang the shutdown on it.
    if (!this.fault) await this.root.flushed;
    await this.root.close();
  }
}

/** Bytes held by the live pages of `dbs`. */
function pageBytes(dbs: Array<{ getStats(): unknown }>): number {
  let total = 0;
  for (const db of dbs) {
    const stats = db.getStats() as { pageSize: number; treeBranchPageCount: number; treeLeafPageCount: number; overflowPages: number };
    total += stats.pageSize * (stats.treeBranchPageCount + stats.treeLeafPageCount + stats.overflowPages);
  }
  return total;
}

function newRecord(id: string, envelope: Envelope, size: number, bodyCrc32: number, meta: AcceptMeta, now: number): MessageRecord {
  return {
    id,
    bodyCrc32,
    sender: envelope.sender,
    recipients: envelope.recipients.map((address) => ({ address, status: 'pending', attempts: 0, history: [], ...recipientDsn(meta, address) })),
    receivedAt: now,
    size,
    messageId: meta.messageId,
    origin: meta.origin,
    isBounce: meta.isBounce ?? false,
    ...(meta.dsn?.ret ? { dsnRet: meta.dsn.ret } : {}),
    ...(meta.dsn?.envid ? { envid: meta.dsn.envid } : {}),
    held: false,
    nextAttemptAt: now,
    attempts: 0,
  };
}

function tokenKey(t: SubmitToken): string {
  return `${t.uid}:${t.token}`;
}

/** The recipient's own DSN parameters, if any (only the two known fields, never the prototype). */
function recipientDsn(meta: AcceptMeta, address: string): RecipientDsn {
  const given = meta.dsn?.recipients;
  if (!given || !Object.hasOwn(given, address)) return {};
  const { notify, orcpt } = given[address]!;
  return { ...(notify ? { notify } : {}), ...(orcpt ? { orcpt } : {}) };
}

/**
 * lmdb-js reports a failed commit as "Commit failed" with the LMDB cause in a promise, rejected
 * when its write thread finishes (usually at once; seconds on a loaded machine). Wait for it, but
 * not forever: without it the failure is reported as an I/O error (451) rather than ENOSPC (452).
 */
async function toSpoolError(error: unknown): Promise<SpoolError> {
  if (error instanceof SpoolError) return error;
  const pending = commitCause(error);
  let timer: NodeJS.Timeout | undefined;
  const cause = pending ? await Promise.race([pending, new Promise((resolve) => (timer = setTimeout(resolve, 5000)))]) : undefined;
  clearTimeout(timer);
  const detail = cause instanceof Error ? `: ${cause.message}` : '';
  const message = (error instanceof Error ? error.message : String(error)) + detail;
  const errno = (cause as { code?: unknown } | undefined)?.code ?? (error as NodeJS.ErrnoException | undefined)?.code;
  if (/MDB_MAP_FULL|ENOSPC|No space left|mapsize/i.test(message) || errno === 'ENOSPC' || errno === 28) {
    return new SpoolError('ESPOOLFULL', `spool is full: ${message}`, { cause: error });
  }
  return new SpoolError('ESPOOLIO', `spool write failed: ${message}`, { cause: error });
}
