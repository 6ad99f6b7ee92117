/**
 * `mailshim install [--prefix DIR] [--force]` / `mailshim uninstall [--prefix DIR]`: make the
 * system's sendmail, mailq and newaliases mailshim's, as symbolic links to bin/.
 *
 * A path already held by another MTA (Postfix's /usr/sbin/sendmail, ...) is refused unless
 * --force, and then moved aside to `<path>.mailshim-backup`; uninstall removes only our own links
 * and puts such backups back. --prefix lets a package build (and the tests) work on a staging tree.
 */
import { lstatSync, mkdirSync, readlinkSync, realpathSync, renameSync, symlinkSync, unlinkSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CommandError } from './exit.js';
import { EX } from './sysexits.js';

const BIN_DIR = resolve(fileURLToPath(import.meta.url), '../../../../bin');

/** System path → our launcher. /usr/lib/sendmail is where old scripts and PHP builds look. */
export const LINKS: ReadonlyArray<[string, string]> = [
  ['usr/sbin/sendmail', 'sendmail'],
  ['usr/lib/sendmail', 'sendmail'],
  ['usr/bin/mailq', 'mailq'],
  ['usr/bin/newaliases', 'newaliases'],
];

export const BACKUP_SUFFIX = '.mailshim-backup';

/** A link cannot be installed (another MTA's binary without --force, a backup in the way): exit 73. */
const refusal = (message: string) => new CommandError(EX.CANTCREAT, message);

function exists(path: string): boolean {
  try {
    lstatSync(path);
    return true;
  } catch {
    return false;
  }
}

function isOurLink(path: string, target: string): boolean {
  try {
    return lstatSync(path).isSymbolicLink() && resolve(dirname(path), readlinkSync(path)) === target;
  } catch {
    return false;
  }
}

/** Already resolves to our launcher, e.g. Debian's /usr/lib/sendmail → ../sbin/sendmail once that is ours. */
function resolvesTo(path: string, target: string): boolean {
  try {
    return realpathSync(path) === realpathSync(target);
  } catch {
    return false;
  }
}

function describe(path: string): string {
  const stat = lstatSync(path);
  return stat.isSymbolicLink() ? `a link to ${readlinkSync(path)}` : stat.isFile() ? 'a file' : 'not a file';
}

export function installLinks(prefix: string, force: boolean, binDir = BIN_DIR): string[] {
  const report: string[] = [];
  const plan = LINKS.map(([path, name]) => ({ path: join(prefix, path), target: join(binDir, name) }));
  // Check everything first, so a refusal changes nothing.
  const foreign = plan.filter(({ path, target }) => exists(path) && !isOurLink(path, target) && !resolvesTo(path, target));
  if (foreign.length > 0 && !force) {
    const list = foreign.map(({ path }) => `${path} (${describe(path)})`).join(', ');
    throw refusal(`refusing to replace another mail system's ${list}; use --force to replace it (a backup is kept)`);
  }
  for (const { path } of foreign) {
    if (exists(path + BACKUP_SUFFIX)) throw refusal(`${path + BACKUP_SUFFIX} already exists; move it away first`);
  }
  for (const { path, target } of plan) {
    if (isOurLink(path, target) || (exists(path) && resolvesTo(path, target) && !foreign.some((f) => f.path === path))) {
      report.push(`${path}: already mailshim`);
      continue;
    }
    mkdirSync(dirname(path), { recursive: true });
    if (exists(path)) {
      renameSync(path, path + BACKUP_SUFFIX);
      report.push(`${path}: was ${readlinkOrFile(path + BACKUP_SUFFIX)}, kept as ${path + BACKUP_SUFFIX}`);
    }
    symlinkSync(target, path);
    report.push(`${path} -> ${target}`);
  }
  return report;
}

function readlinkOrFile(path: string): string {
  return lstatSync(path).isSymbolicLink() ? `a link to ${readlinkSync(path)}` : 'a file';
}

export function uninstallLinks(prefix: string, binDir = BIN_DIR): string[] {
  const report: string[] = [];
  for (const [relative, name] of LINKS) {
    const path = join(prefix, relative);
    const target = join(binDir, name);
    if (isOurLink(path, target)) {
      unlinkSync(path);
      report.push(`${path}: removed`);
    } else if (exists(path)) {
      report.push(`${path}: not mailshim's, left alone`);
      continue;
    }
    if (exists(path + BACKUP_SUFFIX)) {
      renameSync(path + BACKUP_SUFFIX, path);
      report.push(`${path}: restored from ${path + BACKUP_SUFFIX}`);
    }
  }
  return report;
}
