/**
 * One writer per spool: an exclusive flock(2) on `<spool>/lock`, taken before the spool is read.
 * The daemon holds it while it runs; a queue command holds it for the moment it writes LMDB
 * directly (only while no daemon runs). The file holds the holder's pid and role, for the message
 * a second daemon prints.
 *
 * Why flock(1) and not a Node API: Node has no flock (nor fcntl locks), and no maintained native
 * addon offers one. flock(2) locks belong to the open file description, so we open the lock file
 * here and let the flock(1) command of util-linux (an essential package on Debian) lock that same
 * descriptor, passed as its fd 3, and exit: the lock stays with our descriptor — `exec 9>lock;
 * flock -n 9` in shell. The kernel drops it when the process dies, kill -9 included, so a crash
 * never leaves a stale lock. Node opens files O_CLOEXEC, so nothing we spawn inherits it. A pid
 * file or a socket would need stale-lock guessing; an abstract unix socket could be squatted by
 * any local user (it has no permissions), while this file lives in the daemon's 0700 directory.
 */
import { spawn } from 'node:child_process';
import { closeSync, constants, fchownSync, ftruncateSync, mkdirSync, openSync, readFileSync, statSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { SpoolError } from '../errors.js';

export interface SpoolLock {
  readonly file: string;
  release(): void;
}

/** Who holds a spool's lock, as written in the lock file. */
export interface LockHolder {
  pid: number;
  role: string;
}

export function lockFile(spoolPath: string): string {
  return join(spoolPath, 'lock');
}

/** The holder recorded in the lock file (the last one to take it; check `lockSpool` for whether it still holds it). */
export function readHolder(spoolPath: string): LockHolder | undefined {
  try {
    const [pid, ...role] = readFileSync(lockFile(spoolPath), 'utf8').trim().split(' ');
    const n = Number(pid);
    return Number.isInteger(n) && n > 0 ? { pid: n, role: role.join(' ') || 'unknown' } : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Runs flock(1) on `fd`; true when locked, false when another process holds the lock. Not
 * spawnSync: while it waits, the event loop must keep running (the log line saying so is flushed).
 */
async function flock(fd: number, waitSeconds: number): Promise<boolean> {
  const args = waitSeconds > 0 ? ['--exclusive', '--wait', String(waitSeconds), '3'] : ['--exclusive', '--nonblock', '3'];
  const { status, stderr } = await new Promise<{ status: number | null; stderr: string }>((resolve, reject) => {
    const child = spawn('flock', args, { stdio: ['ignore', 'ignore', 'pipe', fd], timeout: (waitSeconds + 10) * 1000 });
    let stderr = '';
    child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.once('error', (error: NodeJS.ErrnoException) =>
      reject(new SpoolError('ESPOOLIO', `cannot lock the spool: flock(1) from util-linux is needed (${error.code ?? error.message})`, { cause: error })),
    );
    child.once('close', (code) => resolve({ status: code, stderr }));
  });
  if (status === 0) return true;
  if (status === 1) return false; // held (--nonblock), or --wait timed out
  throw new SpoolError('ESPOOLIO', `cannot lock the spool: flock exited ${status}: ${stderr.trim()}`);
}

/**
 * Takes the spool's lock or throws SpoolError('ELOCKED') naming the holder. `role` is written for
 * others to read ("daemon", "queue hold"). `waitForCommandMs`: when the holder is a queue command
 * (it holds the lock for a moment), wait this long for it rather than failing at once, after
 * telling `onWait`.
 */
export async function lockSpool(spoolPath: string, role: string, waitForCommandMs = 0, onWait?: (holder: LockHolder | undefined) => void): Promise<SpoolLock> {
  mkdirSync(spoolPath, { recursive: true, mode: 0o700 });
  const file = lockFile(spoolPath);
  const fd = openSync(file, constants.O_RDWR | constants.O_CREAT | constants.O_NOFOLLOW, 0o600);
  try {
    // Made by root (a queue command before the daemon's first start under systemd)? Give it to
    // the spool directory's owner, or the daemon could never open it.
    if (process.getuid?.() === 0) {
      const dir = statSync(spoolPath);
      fchownSync(fd, dir.uid, dir.gid);
    }
    let locked = await flock(fd, 0);
    if (!locked && waitForCommandMs > 0) {
      const holder = readHolder(spoolPath);
      if (holder?.role !== 'daemon') {
        onWait?.(holder);
        locked = await flock(fd, Math.ceil(waitForCommandMs / 1000));
      }
    }
    if (!locked) {
      const holder = readHolder(spoolPath);
      const who = holder ? `${holder.role === 'daemon' ? 'a mailshim daemon' : `\`mailshim ${holder.role}\``} (pid ${holder.pid})` : 'another process';
      throw new SpoolError('ELOCKED', `spool ${spoolPath} is locked by ${who}`);
    }
    ftruncateSync(fd, 0);
    writeSync(fd, `${process.pid} ${role}\n`, 0);
  } catch (error) {
    closeSync(fd);
    throw error;
  }
  let released = false;
  return {
    file,
    release() {
      if (released) return;
      released = true;
      closeSync(fd); // drops the flock
    },
  };
}
