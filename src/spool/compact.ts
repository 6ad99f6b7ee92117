/**
 * `mailshim queue compact`: after a backlog drained, the spool file keeps its high-water size
 * (LMDB reuses freed pages but never gives them back). This writes a compacted copy with LMDB's
 * own copy (mdb_env_copy2 with MDB_CP_COMPACT, through lmdb-js `backup(path, true)`: live pages
 * only, consistent as of one read transaction), syncs it and renames it over the spool file.
 *
 * Only with the daemon stopped: the spool lock is taken for the whole run, so a daemon cannot
 * start meanwhile (and if one runs, the command fails with ELOCKED before touching anything). A
 * crash at any point leaves either the old file or the complete new one, plus at most a stale
 * `queue.mdb.compact` that the next run removes.
 */
import { chmodSync, chownSync, renameSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fsyncPath } from './fsync.js';
import { lockSpool } from './lock.js';
import { Spool } from './spool.js';

export interface CompactResult {
  beforeBytes: number;
  afterBytes: number;
}

export async function compactSpool(spoolPath: string): Promise<CompactResult> {
  const lock = await lockSpool(spoolPath, 'queue compact');
  try {
    const file = join(spoolPath, 'queue.mdb');
    const copy = `${file}.compact`;
    rmSync(copy, { force: true });
    const original = statSync(file);
    const spool = Spool.openExisting(spoolPath);
    try {
      await spool.compactCopy(copy);
    } finally {
      await spool.close();
    }
    // The daemon's user must still own and alone read its spool when root runs this.
    chmodSync(copy, original.mode & 0o777);
    if (process.getuid?.() === 0) chownSync(copy, original.uid, original.gid);
    fsyncPath(copy);
    renameSync(copy, file);
    fsyncPath(spoolPath);
    return { beforeBytes: original.size, afterBytes: statSync(file).size };
  } finally {
    lock.release();
  }
}
