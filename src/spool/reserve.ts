/**
 * A ballast file beside queue.mdb that keeps disk space for the queue's own bookkeeping.
 *
 * LMDB writes copy-on-write: recording that a message was delivered, or deleting it, needs new
 * pages before the old ones are freed. If something else fills the disk (a runaway log, `dd`),
 * those commits fail with ENOSPC and the queue could never drain — worse, a delivered message
 * whose outcome cannot be recorded would be sent again. The intake reserve (spool.min_free)
 * cannot help there: it is counted, not held. This file holds the space. When a bookkeeping
 * commit fails with ENOSPC the spool deletes the ballast and retries; intake is refused (452)
 * until the ballast can be written again, which happens as soon as the disk has room.
 */
import { closeSync, fsyncSync, openSync, statSync, unlinkSync, writeSync } from 'node:fs';
import { join } from 'node:path';

export const RESERVE_FILE = 'reserve';
const CHUNK = 1 << 20;

export class DiskReserve {
  readonly file: string;
  /** performance.now() when the ballast was last found or written at full size; reset by release(). */
  private confirmedAt = -Infinity;

  constructor(
    dir: string,
    readonly size: number,
  ) {
    this.file = join(dir, RESERVE_FILE);
  }

  /** True when the ballast is in place at full size. */
  get held(): boolean {
    try {
      return statSync(this.file).size >= this.size;
    } catch {
      return false;
    }
  }

  /**
   * Writes the ballast if it is missing (real blocks: zeros written and fsynced, so the file
   * system has allocated them). Returns false, leaving no partial file, when the disk has no room.
   * `maxAgeMs`: a ballast found or written that recently counts as held without a stat(2) (intake
   * asks at every message); release() always makes the next call look.
   */
  ensure(maxAgeMs = 0): boolean {
    if (this.size <= 0) return true;
    const now = performance.now();
    if (now - this.confirmedAt < maxAgeMs) return true;
    if (this.held) {
      this.confirmedAt = now;
      return true;
    }
    let fd: number | undefined;
    try {
      fd = openSync(this.file, 'w', 0o600);
      const zeros = Buffer.alloc(Math.min(CHUNK, this.size));
      for (let written = 0; written < this.size;) written += writeSync(fd, zeros, 0, Math.min(zeros.length, this.size - written));
      fsyncSync(fd);
      closeSync(fd);
      this.confirmedAt = performance.now();
      return true;
    } catch {
      if (fd !== undefined) closeSync(fd);
      this.release();
      return false;
    }
  }

  /** Frees the space for the queue's bookkeeping. Returns true if there was a ballast to free. */
  release(): boolean {
    this.confirmedAt = -Infinity;
    try {
      unlinkSync(this.file);
      return true;
    } catch {
      return false;
    }
  }
}
