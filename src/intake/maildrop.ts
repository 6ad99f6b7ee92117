/**
 * The maildrop: where the sendmail command leaves a message when the daemon is not running
 * (like Postfix's maildrop/pickup). A world-writable sticky directory (mode 1733: anyone may
 * create files, nobody but the owner may list it or remove another user's file).
 *
 * Writing (sendmail command): temp file `.tmp.<token>` → write → fsync → rename to `<token>` →
 * fsync the directory (or syncfs it, see syncEntry). Exit 0 only after that: the message survives
 * a crash from then on. `<token>` is the submission's idempotency token (128 random bits), the same
 * one the command first offered on the socket.
 *
 * Importing (daemon, at start and while running): for each `<token>`: `spool.acceptOnce()` with
 * that token scoped to the file's owner (resolves after fsync), then unlink and fsync the directory.
 * The spool remembers a token for max_age after its message is gone, so the file is recognised as
 * a duplicate — and only unlinked — when an earlier import committed it and crashed before the
 * unlink (tested by test/faults/maildrop-faults.test.ts), or when the socket submission it backs
 * up was spooled but its reply was lost (test/e2e-spool-integrity.test.ts "…with one token…"). A file
 * that cannot be parsed (or is a symlink, or is refused) is renamed `.bad.<token>` and logged,
 * never deleted. Any local user can write
 * a file here, so the importer trusts none of it: the size is checked before reading
 * (max_message_size), and the message gets the same local policy and checks as a socket submission.
 */
import { execFileSync } from 'node:child_process';
import {
  closeSync,
  constants as fsConstants,
  fstatSync,
  fsyncSync,
  mkdirSync,
  openSync,
  chmodSync,
  readdirSync,
  readFileSync,
  renameSync,
  statSync,
  unlinkSync,
  watch,
  writeSync,
  type FSWatcher,
} from 'node:fs';
import { join } from 'node:path';
import { SubmitError } from '../errors.js';
import type { Logger } from '../log.js';
import { localize, logLocalized, type LocalPolicy } from '../local/localize.js';
import { isQueueId, isSubmitToken } from '../spool/ids.js';
import type { Spool } from '../spool/spool.js';
import { acceptLocal, checkLocalSubmission } from './local-accept.js';
import { decodeFrame, encodeFrame, MAX_HEADER, type SubmitRequest } from './submission-protocol.js';
import { fsyncPath } from '../spool/fsync.js';

export const MAILDROP_MODE = 0o1733;

/**
 * Makes the rename durable. An unprivileged submitter cannot open the directory (mode 1733 has
 * no read bit, so that nobody can list other users' messages), hence cannot fsync it; then
 * `sync -f` (syncfs(2) of the file's file system, coreutils) does the job. That costs a process,
 * but only on the fallback path when the daemon is down.
 */
function syncEntry(dir: string, file: string): void {
  try {
    fsyncPath(dir);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EACCES') throw error;
    execFileSync('sync', ['-f', file], { stdio: 'ignore' });
  }
}

/** Creates the maildrop directory (mode 1733) if it is missing. */
export function ensureMaildrop(dir: string): void {
  mkdirSync(dir, { recursive: true });
  chmodSync(dir, MAILDROP_MODE);
}

/** sendmail side: durably writes one message; throws SubmitError('ECANTCREAT') when it cannot. */
export function writeMaildrop(dir: string, request: SubmitRequest & { token: string }, body: Buffer): void {
  const temp = join(dir, `.tmp.${request.token}`);
  let fd: number | undefined;
  try {
    try {
      fd = openSync(temp, 'wx', 0o644);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
      ensureMaildrop(dir); // first use, before the daemon ever ran (works for root, e.g. cron)
      fd = openSync(temp, 'wx', 0o644);
    }
    const frame = encodeFrame(request, body);
    let written = 0;
    while (written < frame.length) written += writeSync(fd, frame, written);
    fsyncSync(fd);
    closeSync(fd);
    fd = undefined;
    const final = join(dir, request.token);
    renameSync(temp, final);
    syncEntry(dir, final);
  } catch (error) {
    if (fd !== undefined) closeSync(fd);
    try {
      unlinkSync(temp);
    } catch {
      /* nothing was created */
    }
    throw new SubmitError('ECANTCREAT', `cannot write to the maildrop ${dir}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`, { cause: error });
  }
}

const STALE_TEMP_MS = 24 * 3_600_000;

/** Daemon side: imports maildrop files into the spool, at start and then on change (watch + poll). */
export class MaildropImporter {
  private watcher: FSWatcher | undefined;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private again = false;
  private stopped = false;

  constructor(
    private readonly dir: string,
    private readonly spool: Spool,
    private policy: () => LocalPolicy,
    private readonly log: Logger,
    private readonly maxMessageSize: () => number,
    private readonly pollMs = 2000,
  ) {}

  /** Creates the directory, imports what is there, then keeps watching. */
  async start(): Promise<void> {
    ensureMaildrop(this.dir);
    await this.importAll();
    try {
      this.watcher = watch(this.dir, () => this.kick());
      this.watcher.on('error', () => undefined);
    } catch (error) {
      this.log.warn({ err: error, dir: this.dir }, 'cannot watch the maildrop; polling only');
    }
    this.timer = setInterval(() => this.kick(), this.pollMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.watcher?.close();
    clearInterval(this.timer);
    await this.running;
  }

  private kick(): void {
    if (this.stopped) return;
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = this.importAll()
      .then(() => undefined)
      .finally(() => {
        this.running = undefined;
        if (this.again) {
          this.again = false;
          this.kick();
        }
      });
  }

  /** One pass over the directory. Errors are logged; the file stays for the next pass. */
  async importAll(): Promise<number> {
    let names: string[];
    try {
      names = readdirSync(this.dir).sort();
    } catch (error) {
      this.log.error({ err: error, dir: this.dir }, 'cannot read the maildrop');
      return 0;
    }
    let imported = 0;
    for (const name of names) {
      if (this.stopped) break;
      if (name.startsWith('.tmp.')) {
        this.removeStaleTemp(name);
        continue;
      }
      if (!isSubmitToken(name) && !isQueueId(name)) continue;
      try {
        if (await this.importOne(name)) imported++;
      } catch (error) {
        this.log.error({ err: error, file: join(this.dir, name) }, `maildrop import failed, will retry: ${(error as Error).message}`);
      }
    }
    return imported;
  }

  private async importOne(token: string): Promise<boolean> {
    const file = join(this.dir, token);
    let data: Buffer;
    let owner: number;
    try {
      // O_NOFOLLOW and regular files only: a symlink (or fifo) planted in this world-writable
      // directory must not make the daemon read some other file.
      let fd: number;
      try {
        fd = openSync(file, fsConstants.O_RDONLY | fsConstants.O_NOFOLLOW | fsConstants.O_NONBLOCK);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'ELOOP') throw error;
        return this.setAside(token, 'a symbolic link');
      }
      try {
        const stat = fstatSync(fd);
        owner = stat.uid;
        if (!stat.isFile()) return this.setAside(token, 'not a regular file');
        // Checked before reading: a file of any size can be left here by any user.
        const limit = this.maxMessageSize() + MAX_HEADER;
        if (stat.size > limit) return this.setAside(token, `too big (${stat.size} bytes; max_message_size is ${this.maxMessageSize()})`);
        data = readFileSync(fd);
      } finally {
        closeSync(fd);
      }
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return false; // imported by a concurrent pass
      throw error;
    }
    const frame = decodeFrame(data);
    // Files written before tokens existed are named by the queue id their frame carries ("id");
    // that name then serves as the token, so their import stays idempotent too.
    const named = frame?.request.op === 'submit' ? (frame.request.token ?? (frame.request as { id?: unknown }).id) : undefined;
    if (!frame || frame.request.op !== 'submit' || named !== token) return this.setAside(token, 'not a maildrop file');
    const request = frame.request;
    if (frame.body.length > this.maxMessageSize()) return this.setAside(token, `too big (${frame.body.length} bytes; max_message_size is ${this.maxMessageSize()})`);
    // The same policy and checks as a socket submission, always: the file may have been written by
    // hand, so nothing it claims is trusted (a `localized: true` is ignored; files written by older
    // versions were localized already, and qualifying, masquerading and expanding aliases into
    // full addresses again leaves them as they are).
    let localized;
    try {
      localized = localize({ sender: request.sender, recipients: request.recipients }, frame.body, this.policy());
      checkLocalSubmission(localized.envelope);
    } catch (error) {
      // Bad addresses, no alias and no [local] admin, malformed bytes: retrying will not help.
      if (error instanceof SubmitError) return this.setAside(token, `refused (${error.message})`);
      throw error;
    }
    logLocalized(this.log, localized, { user: request.user });
    const { envelope, bytes } = localized;
    const accepted = await acceptLocal(this.spool, this.policy().hostname, this.log, { envelope, bytes, user: request.user, uid: owner, via: 'maildrop', token, dsn: request.dsn });
    this.unlinkDurably(file);
    if (accepted.duplicate) this.log.info({ event: 'maildrop-duplicate', queueId: accepted.id }, 'maildrop file was already queued (same submission); removed');
    return !accepted.duplicate;
  }

  private setAside(id: string, why: string): false {
    renameSync(join(this.dir, id), join(this.dir, `.bad.${id}`));
    this.log.error({ event: 'maildrop-bad', file: join(this.dir, id) }, `maildrop entry is ${why}; kept as .bad.${id}`);
    return false;
  }

  private unlinkDurably(file: string): void {
    unlinkSync(file);
    fsyncPath(this.dir);
  }

  private removeStaleTemp(name: string): void {
    try {
      const file = join(this.dir, name);
      if (Date.now() - statSync(file).mtimeMs > STALE_TEMP_MS) unlinkSync(file);
    } catch {
      /* gone already */
    }
  }
}
