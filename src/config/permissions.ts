/**
 * Start-up checks on files and directories other local users could abuse, in the spirit of
 * ssh's StrictModes and Postfix's `postfix check` ("not owned by", "group or other writable"):
 *  - secrets (a config file with an inline secret, `*_file` secrets, TLS keys, users files) must
 *    not be readable by group or others, and must be owned by root or the daemon's user (a file
 *    another user owns can be read or swapped by that user whatever its mode);
 *  - the spool directory must be a real directory (not a symbolic link), owned by the daemon's
 *    user and not group/other writable, below directories only root or the daemon's user can
 *    change; LMDB files in it must be regular files of the daemon's user, mode 0600.
 * The daemon refuses to start while any problem is reported (`mailshim serve` exits 78).
 */
import { chmodSync, lstatSync, readlinkSync, statSync, type Stats } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import type { Config } from './types.js';

const mode = (stats: Stats) => (stats.mode & 0o7777).toString(8).padStart(4, '0');
const ownerOk = (uid: number, euid: number) => uid === 0 || uid === euid;

export function permissionProblems(config: Config, euid = process.geteuid?.() ?? 0): string[] {
  const problems: string[] = [];
  const files = [...(config.inlineSecrets ? [config.file] : []), ...config.secretFiles];
  for (const file of new Set(files)) {
    let stats: Stats;
    try {
      stats = statSync(file);
    } catch {
      continue; // unreadable files are reported by the loader
    }
    const what = file === config.file ? 'contains a secret and' : 'holds a secret and';
    if ((stats.mode & 0o077) !== 0) {
      problems.push(`${file} ${what} is accessible by group/others (mode ${(stats.mode & 0o777).toString(8)}); fix: chmod 600 ${file}`);
    }
    if (!ownerOk(stats.uid, euid)) {
      problems.push(`${file} ${what} is owned by uid ${stats.uid}, not by root or the daemon's user (uid ${euid}); fix: chown ${euid} ${file}`);
    }
  }
  problems.push(...spoolProblems(config.spool.path, euid));
  return problems;
}

/** The files LMDB keeps in the spool directory (see spool/spool.ts). */
const LMDB_FILES = ['queue.mdb', 'queue.mdb-lock'];

/**
 * Checks the spool directory (which the daemon creates, mode 0700, when it is missing) and the
 * directories above it. LMDB files the daemon owns that are wider than 0600 (made by versions
 * before 0600 was enforced) are tightened rather than refused.
 */
export function spoolProblems(path: string, euid = process.geteuid?.() ?? 0): string[] {
  const problems: string[] = [];
  const spool = resolve(path);
  let stats: Stats | undefined;
  try {
    stats = lstatSync(spool);
  } catch {
    stats = undefined; // created by the daemon
  }
  if (stats?.isSymbolicLink()) {
    let target = '?';
    try {
      target = readlinkSync(spool);
    } catch {
      /* keep "?" */
    }
    return [`spool directory ${spool} is a symbolic link (to ${target}); set spool.path to a real directory owned by the daemon's user`];
  }
  if (stats && !stats.isDirectory()) return [`spool directory ${spool} is not a directory`];
  if (stats && stats.uid !== euid) problems.push(`spool directory ${spool} is owned by uid ${stats.uid}, not by the daemon's user (uid ${euid}); fix: chown ${euid} ${spool}`);
  if (stats && (stats.mode & 0o022) !== 0) problems.push(`spool directory ${spool} is group or other writable (mode ${mode(stats)}); fix: chmod 700 ${spool}`);
  // Whoever can write to a directory above can replace the spool by a link to their own files.
  for (let dir = dirname(spool); ; dir = dirname(dir)) {
    let up: Stats | undefined;
    try {
      up = statSync(dir);
    } catch {
      up = undefined; // created by the daemon, as its user
    }
    if (up) {
      const sticky = (up.mode & 0o1000) !== 0;
      if (!ownerOk(up.uid, euid)) problems.push(`${dir} (above the spool directory) is owned by uid ${up.uid}, not by root or the daemon's user (uid ${euid})`);
      else if ((up.mode & 0o022) !== 0 && !sticky) problems.push(`${dir} (above the spool directory) is group or other writable (mode ${mode(up)}); fix: chmod go-w ${dir}`);
    }
    if (dir === dirname(dir)) break;
  }
  if (!stats) return problems;
  for (const name of LMDB_FILES) {
    const file = join(spool, name);
    let lmdb: Stats;
    try {
      lmdb = lstatSync(file);
    } catch {
      continue;
    }
    if (!lmdb.isFile()) problems.push(`${file} is not a regular file (a symbolic link?); remove it or restore the spool`);
    else if (lmdb.uid !== euid) problems.push(`${file} is owned by uid ${lmdb.uid}, not by the daemon's user (uid ${euid}); fix: chown ${euid} ${file}`);
    else if ((lmdb.mode & 0o077) !== 0) chmodSync(file, 0o600);
  }
  return problems;
}
