/**
 * Large message bodies, kept as files beside the LMDB queue (`<spool>/bodies/<queue id>`) rather
 * than in it: LMDB writes a 1 MB value into ~256 new copy-on-write overflow pages, delivery read
 * it back whole, and its mapped pages counted in the daemon's RSS (docs/performance.md). A file
 * is written once, streamed to the upstream, and unlinked.
 *
 * The acceptance guarantee stays one commit (spool.ts acceptOnce): the file is written with
 * O_EXCL, fdatasync'ed, its directory fsync'ed, and only then is the LMDB record that names it
 * committed; only after that commit is the message acknowledged. A crash before the commit leaves
 * at most a file no record names, which start-up removes (startup.ts); a record never exists
 * without its durable file, except through damage to the disk, which the integrity check turns
 * into a held, damaged message. Removal is the reverse: the record's removal is committed (and
 * synced) first, then the file is unlinked; a crash in between again leaves only an orphan.
 * Tested by test/faults/body-files-faults.test.ts and test/body-files.test.ts.
 */
import { close as closeAsync, closeSync, fstatSync, mkdirSync, openSync, readdirSync, readSync, rmSync, statSync } from 'node:fs';
import { open, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { crc32 } from 'node:zlib';
import { SpoolError } from '../errors.js';
import type { MessageBody } from '../message/body.js';
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
export const BODIES_DIR = 'bodies';
/** Read size of a streamed body. */
const CHUNK = 64 * 1024;

export class BodyFiles {
  readonly dir: string;
  private syncing: Promise<void> | undefined;
  private nextSync: Promise<void> | undefined;

  constructor(private readonly spoolPath: string) {
    this.dir = join(spoolPath, BODIES_DIR);
  }

  path(id: string): string {
    return join(this.dir, id);
  }

  /**
   * Writes a new body file and makes it and its name durable. On failure no file is left (or, if
   * even the unlink fails, one that no record names) and a SpoolError says why: ESPOOLFULL for a
   * full disk (452), EIDEXISTS for a taken name, ESPOOLIO otherwise (451).
   */
  async write(id: string, bytes: Buffer): Promise<void> {
    const owner = this.ensureDir();
    const path = this.path(id);
    let handle;
    try {
      handle = await open(path, 'wx', 0o600); // O_CREAT | O_EXCL: never over another message's body
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'EEXIST') throw new SpoolError('EIDEXISTS', `queue id ${id} is already taken (${path} exists); nothing was stored`);
      throw fileError(`creating ${path}`, error);
    }
    try {
      if (owner) await handle.chown(owner.uid, owner.gid);
      // Positional writes (pwrite64), as LMDB's meta pages: the fault suite injects into them.
      for (let at = 0; at < bytes.length;) at += (await handle.write(bytes, at, bytes.length - at, at)).bytesWritten;
      await handle.datasync();
      await handle.close();
      handle = undefined;
      await this.syncDir();
    } catch (error) {
      await handle?.close().catch(() => undefined);
      await rm(path, { force: true }).catch(() => undefined);
      throw fileError(`writing ${path}`, error);
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
  private syncDir(): Promise<void> {
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

  /** Creates the directory (0700) if needed; returns the spool's owner when running as root, so files are owned like the spool. */
  private ensureDir(): { uid: number; gid: number } | undefined {
    mkdirSync(this.dir, { mode: 0o700, recursive: true });
    if (process.getuid?.() !== 0) return undefined;
    const spool = statSync(this.spoolPath);
    return { uid: spool.uid, gid: spool.gid };
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
