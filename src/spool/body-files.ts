/**
 * Large message bodies, kept as files beside the LMDB queue (`<spool>/bodies/<queue id>`) rather
 * than in it: LMDB writes a 1 MB value into ~256 new copy-on-write overflow pages, delivery read
 * it back whole, and its mapped pages counted in the daemon's RSS (docs/performance.md). A file
 * is written once (for SMTP while DATA arrives: BodyFileWriter), streamed to the upstream, and
 * unlinked.
 *
 * The acceptance guarantee stays one commit (spool.ts acceptOnce, acceptReceived): the file is
 * written with O_EXCL, fdatasync'ed, its directory fsync'ed, and only then is the LMDB record that names it
 * committed; only after that commit is the message acknowledged. A crash before the commit leaves
 * at most a file no record names, which start-up removes (startup.ts); a record never exists
 * without its durable file, except through damage to the disk, which the integrity check turns
 * into a held, damaged message. Removal is the reverse: the record's removal is committed (and
 * synced) first, then the file is unlinked; a crash in between again leaves only an orphan.
 * Tested by test/faults/body-files-faults.test.ts and test/body-files.test.ts.
 */
import { close as closeAsync, closeSync, fstatSync, mkdirSync, openSync, readdirSync, readSync, rmSync, statSync } from 'node:fs';
import { open, rm, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { crc32 } from 'node:zlib';
import { SpoolError } from '../errors.js';
import type { MessageBody } from '../message/body.js';
import { LineScanner, wireClean } from '../message/wire.js';
import { checksumProblem } from './checksum.js';
import type { MessageRecord } from './types.js';

/**
 * Bodies of at least this many bytes go to a file. Below it a body stays in LMDB, where one
 * group-committed fsync covers every message that arrived together (the 2 KB path): a file costs
 * two more syncs (the file, the directory) per message, which only pays once the body is large
 * enough that its copy-on-write overflow pages and whole-body reads dominate. 64 KiB is 16 LMDB
 * pages; most plain mail is well below it, most mail with an attachment above it.
 */
export const BODY_FILE_MIN = 64 * 1024;
const BODIES_DIR = 'bodies';
/** Read size of a streamed body. */
const CHUNK = 64 * 1024;

export class BodyFiles {
  readonly dir: string;
  private syncing: Promise<void> | undefined;
  private nextSync: Promise<void> | undefined;
  /** Set once the directory exists: the spool's owner (uid -1 when not running as root). */
  private owner: { uid: number; gid: number } | undefined;

  constructor(private readonly spoolPath: string) {
    this.dir = join(spoolPath, BODIES_DIR);
  }

  path(id: string): string {
    return join(this.dir, id);
  }

  /**
   * A new body file, written as its bytes are appended (BodyFileWriter). It and its name become
   * durable at `finish()`; until then it is an orphan that `abort()` (or start-up) removes.
   */
  create(id: string): BodyFileWriter {
    return new BodyFileWriter(this, id);
  }

  /**
   * Opens a new body file for writing: O_CREAT | O_EXCL, never over another message's body; owned
   * like the spool when running as root. The directory is created once (and again if it vanished).
   */
  async openNew(id: string): Promise<FileHandle> {
    const path = this.path(id);
    for (let attempt = 0; ; attempt++) {
      this.owner ??= this.ensureDir();
      try {
        const handle = await open(path, 'wx', 0o600);
        if (this.owner.uid >= 0) {
          try {
            await handle.chown(this.owner.uid, this.owner.gid);
          } catch (error) {
            await handle.close().catch(() => undefined);
            await rm(path, { force: true }).catch(() => undefined);
            throw error;
          }
        }
        return handle;
      } catch (error) {
        const code = (error as NodeJS.ErrnoException).code;
        if (code === 'EEXIST') throw new SpoolError('EIDEXISTS', `queue id ${id} is already taken (${path} exists); nothing was stored`);
        if (code === 'ENOENT' && attempt === 0) {
          this.owner = undefined;
          continue;
        }
        throw fileError(`creating ${path}`, error);
      }
    }
  }

  /**
   * Removes a body file that no record names any more (its record's removal is committed and
   * synced, or its record was never committed). A file that cannot be removed stays an orphan,
   * which start-up removes.
   */
  remove(id: string): void {
    try {
      rmSync(this.path(id), { force: true });
    } catch {
      /* stays an orphan */
    }
  }

  /** The whole file, or undefined when it cannot be read (missing, I/O error): for the integrity check and whole-body readers. */
  read(id: string, limit = Infinity): Buffer | undefined {
    let fd: number | undefined;
    try {
      fd = openSync(this.path(id), 'r');
      const size = Math.min(fstatSync(fd).size, limit);
      const bytes = Buffer.allocUnsafe(size);
      let got = 0;
      while (got < size) {
        const n = readSync(fd, bytes, got, size - got, got);
        if (n === 0) break;
        got += n;
      }
      return bytes.subarray(0, got);
    } catch {
      return undefined;
    } finally {
      if (fd !== undefined) closeSync(fd);
    }
  }

  /** Names of the body files (queue ids), none when the directory does not exist yet. */
  ids(): string[] {
    try {
      return readdirSync(this.dir);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw error;
    }
  }

  /**
   * Opens a record's body for delivery: one descriptor for the attempt (a file unlinked meanwhile
   * stays readable), its size checked against the record at once. A problem string when the file
   * is missing, unreadable or of the wrong size: the message is damaged, never sent.
   */
  open(record: MessageRecord): FileBody | string {
    const path = this.path(record.id);
    let fd: number;
    try {
      fd = openSync(path, 'r');
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      return code === 'ENOENT' ? `message body file ${path} is missing` : `cannot open message body file ${path}: ${(error as Error).message}`;
    }
    const size = fstatSync(fd).size;
    if (size !== record.size) {
      closeSync(fd);
      return `message body file ${path} is ${size} bytes, ${record.size} were stored`;
    }
    return new FileBody(fd, path, record);
  }

  /**
   * fsync of the directory, shared: a caller joins the next sync to start (one that started before
   * its file was created might not cover it), so 20 bodies written together cost about two syncs.
   */
  syncDir(): Promise<void> {
    if (!this.syncing) {
      this.syncing = syncPath(this.dir).finally(() => (this.syncing = undefined));
      return this.syncing;
    }
    this.nextSync ??= this.syncing
      .catch(() => undefined)
      .then(() => {
        this.nextSync = undefined;
        return this.syncDir();
      });
    return this.nextSync;
  }

  /** Creates the directory (0700) if needed; returns the spool's owner when running as root (files are owned like the spool), else uid -1. */
  private ensureDir(): { uid: number; gid: number } {
    mkdirSync(this.dir, { mode: 0o700, recursive: true });
    if (process.getuid?.() !== 0) return { uid: -1, gid: -1 };
    const spool = statSync(this.spoolPath);
    return { uid: spool.uid, gid: spool.gid };
  }
}

/**
 * Bytes written to the file in batches of at least this many (or what arrived while the previous
 * batch was written): fewer trips through libuv's thread pool than one write per socket chunk.
 */
const WRITE_BATCH = 256 * 1024;

/**
 * A body file being written while its message arrives (SMTP DATA of a large message), so the body
 * is never joined into one buffer: each appended piece is counted, checksummed and scanned at
 * once, and written in order with positional writes (one batch in flight at a time). Nothing is
 * durable before `finish()`: it flushes the rest, fdatasyncs the file and fsyncs the directory,
 * and only then may the record naming the file be committed (Spool.acceptReceived). A write that
 * fails is remembered and reported by `finish()`, which removes the file; `abort()` stops and
 * removes it. The file is created at the first batch, so a message refused early costs none.
 */
export class BodyFileWriter {
  size = 0;
  crc = 0;
  private readonly scanner = new LineScanner();
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private handle: FileHandle | undefined;
  /** Whether this writer created the file (so it, and only it, removes it). */
  private created = false;
  private position = 0;
  private flushing: Promise<void> | undefined;
  private failure: Error | undefined;
  private ended = false;

  constructor(
    private readonly files: BodyFiles,
    readonly id: string,
  ) {}

  /** Appends bytes (kept by reference until written: the caller must not reuse them). */
  append(bytes: Buffer): void {
    if (this.ended) throw new SpoolError('ESPOOLIO', `${this.id}: body appended after it was finished or aborted`);
    if (bytes.length === 0) return;
    this.size += bytes.length;
    this.crc = crc32(bytes, this.crc);
    this.scanner.update(bytes);
    if (this.failure !== undefined) return; // finish() reports it; the rest is only counted
    this.pending.push(bytes);
    this.pendingBytes += bytes.length;
    if (this.pendingBytes >= WRITE_BATCH) void this.startFlush();
  }

  /** What delivery needs to know about the bytes without reading them (MessageRecord.bodyFile). */
  flags(): { wireClean: boolean; eightBit: boolean } {
    const problems = this.scanner.problems();
    return { wireClean: wireClean(problems), eightBit: problems.eightBit };
  }

  /** Writes the rest and makes the file and its name durable; on failure removes the file and throws a SpoolError (fileError). */
  async finish(): Promise<void> {
    this.ended = true;
    const path = this.files.path(this.id);
    try {
      do await this.startFlush();
      while (this.pendingBytes > 0 && this.failure === undefined);
      if (this.failure !== undefined) throw this.failure;
      await this.handle!.datasync();
      await this.close();
      await this.files.syncDir();
    } catch (error) {
      await this.remove();
      throw fileError(`writing ${path}`, error);
    }
  }

  /** Stops writing and removes the file (if even the unlink fails, it stays an orphan for start-up). */
  async abort(): Promise<void> {
    this.ended = true;
    this.pending = [];
    this.pendingBytes = 0;
    this.failure ??= new SpoolError('ESPOOLIO', `${this.id}: aborted`);
    while (this.flushing) await this.flushing;
    await this.remove();
  }

  /** The flush in progress, or a new one: one at a time, so the batches are written in order. */
  private startFlush(): Promise<void> {
    this.flushing ??= this.flush().finally(() => (this.flushing = undefined));
    return this.flushing;
  }

  /** Opens the file if needed, then writes what is pending, batch after batch, until nothing is; the first failure stops it (kept in `failure`, never thrown). */
  private async flush(): Promise<void> {
    try {
      if (!this.created && this.failure === undefined) {
        this.handle = await this.files.openNew(this.id);
        this.created = true;
      }
      while (this.pendingBytes > 0 && this.failure === undefined) {
        const batch = this.pending;
        const bytes = this.pendingBytes;
        this.pending = [];
        this.pendingBytes = 0;
        await writeAllAt(this.handle!, batch, this.position);
        this.position += bytes;
      }
    } catch (error) {
      this.failure ??= error as Error;
      this.pending = [];
      this.pendingBytes = 0;
    }
  }

  private async close(): Promise<void> {
    const handle = this.handle;
    this.handle = undefined;
    await handle?.close();
  }

  private async remove(): Promise<void> {
    await this.close().catch(() => undefined);
    if (this.created) await rm(this.files.path(this.id), { force: true }).catch(() => undefined);
  }
}

/**
 * Positional writes of `buffers` from `position` (pwrite64 for one buffer, pwritev for more: the
 * fault suite injects into both), continuing after a short write.
 */
async function writeAllAt(handle: FileHandle, buffers: Buffer[], position: number): Promise<void> {
  let rest = buffers;
  while (rest.length > 0) {
    const { bytesWritten } = rest.length === 1 ? await handle.write(rest[0]!, 0, rest[0]!.length, position) : await handle.writev(rest, position);
    if (bytesWritten === 0) throw new SpoolError('ESPOOLIO', 'the file system wrote nothing');
    position += bytesWritten;
    let skip = bytesWritten;
    let i = 0;
    while (i < rest.length && skip >= rest[i]!.length) skip -= rest[i++]!.length;
    rest = rest.slice(i);
    if (skip > 0) rest[0] = rest[0]!.subarray(skip);
  }
}

/** A body read from its file: positional reads on one descriptor, checked against the record's size and CRC-32. */
export class FileBody implements MessageBody {
  readonly size: number;
  readonly wireClean: boolean;
  readonly eightBit: boolean;
  /** Set once a read found the bytes damaged: the caller holds the message. */
  damage: string | undefined;
  private closed = false;

  constructor(
    private readonly fd: number,
    private readonly path: string,
    private readonly record: MessageRecord,
  ) {
    this.size = record.size;
    this.wireClean = record.bodyFile?.wireClean ?? false;
    this.eightBit = record.bodyFile?.eightBit ?? true;
  }

  async buffer(): Promise<Buffer> {
    const chunks: Buffer[] = [];
    for await (const chunk of this.stream()) chunks.push(chunk as Buffer);
    return Buffer.concat(chunks, this.size);
  }

  stream(): Readable {
    const read = { position: 0, crc: 0 };
    const stream: Readable = new Readable({ highWaterMark: CHUNK, read: () => this.readChunk(stream, read) });
    return stream;
  }

  /**
   * Reads the next chunk into `stream`, updating the running CRC; the last chunk is passed on only
   * once the whole body matched its checksum. The read is synchronous, as reading a body out of
   * LMDB's map was: a just-written body is in the page cache (a 64 KiB copy), and going through
   * libuv's four threads would queue it behind the body files' fdatasyncs.
   */
  private readChunk(stream: Readable, at: { position: number; crc: number }): void {
    if (this.closed) return void stream.destroy(new SpoolError('ESPOOLIO', `${this.record.id}: the body was read after its delivery attempt ended`));
    const buffer = Buffer.allocUnsafe(Math.min(CHUNK, this.size - at.position));
    if (buffer.length === 0) return void stream.push(null); // an empty body
    let n: number;
    try {
      n = readSync(this.fd, buffer, 0, buffer.length, at.position);
    } catch (error) {
      return void stream.destroy(this.failed(`cannot read message body file ${this.path}: ${(error as Error).message}`));
    }
    if (n === 0) return void stream.destroy(this.failed(`message body file ${this.path} ends after ${at.position} bytes, ${this.size} were stored`));
    const chunk = buffer.subarray(0, n);
    at.position += n;
    at.crc = crc32(chunk, at.crc);
    if (at.position < this.size) return void stream.push(chunk);
    const problem = this.record.bodyCrc32 === undefined ? undefined : checksumProblem(this.record.bodyCrc32, at.crc);
    if (problem) return void stream.destroy(this.failed(problem));
    stream.push(chunk);
    stream.push(null);
  }

  /**
   * Closes the descriptor on libuv's threads: the file is usually unlinked by then (its record's
   * removal was committed), and closing the last descriptor of an unlinked 1 MB file is when the
   * kernel frees its pages and blocks, ~1 ms that blocked the event loop when done in closeSync.
   */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    closeAsync(this.fd, () => undefined);
  }

  private failed(problem: string): SpoolError {
    this.damage ??= problem;
    return new SpoolError('ESPOOLDAMAGED', `${this.record.id}: ${problem}`);
  }
}

function fileError(what: string, error: unknown): SpoolError {
  if (error instanceof SpoolError) return error;
  const code = (error as NodeJS.ErrnoException).code;
  const message = `${what}: ${(error as Error).message}`;
  return code === 'ENOSPC' || code === 'EDQUOT'
    ? new SpoolError('ESPOOLFULL', `spool is full: ${message}`, { cause: error })
    : new SpoolError('ESPOOLIO', `spool write failed: ${message}`, { cause: error });
}

async function syncPath(path: string): Promise<void> {
  const handle = await open(path, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}
