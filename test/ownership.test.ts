/**
 * Issue 10 item 11: ownership checks at start, as `postfix check` complains ("not owned by",
 * "group or other writable"). A spool directory that is a symbolic link into another user's
 * directory is refused (before, it was followed and queue.mdb created 0644 for that user to
 * copy); a secret owned by another unprivileged user is refused even at mode 0600; LMDB files are
 * created 0600 and older, wider ones tightened. Needs root (to chown to another uid).
 */
import assert from 'node:assert/strict';
import { chmodSync, chownSync, existsSync, mkdirSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { parseConfig } from '../src/config/load.js';
import { permissionProblems, spoolProblems } from '../src/config/permissions.js';
import { runCli } from './helpers/cli.js';
import { relayConfig } from './helpers/config.js';
import { startDaemon, writeConfig } from './helpers/daemon.js';
import { tempDir } from './helpers/tmp.js';

const OTHER = 65534; // nobody: an unprivileged user that is not the daemon's
const root = process.geteuid?.() === 0;
const needsRoot = root ? {} : { skip: 'needs root to chown files to another user' };

describe('ownership checks', () => {
  it("refuses a spool directory that is a symbolic link into another user's directory, and creates nothing there", needsRoot, async () => {
    const dir = tempDir();
    try {
      const theirs = join(dir.path, 'theirs');
      mkdirSync(theirs, { mode: 0o755 });
      chownSync(theirs, OTHER, OTHER);
      const spool = join(dir.path, 'spool');
      symlinkSync(theirs, spool);
      const file = writeConfig(dir.path, relayConfig({ spool }));
      const result = await runCli(['serve', '--config', file]);
      assert.equal(result.code, 78, result.stderr);
      assert.match(result.stderr, new RegExp(`refusing to start: spool directory ${spool} is a symbolic link \\(to ${theirs}\\)`));
      assert.equal(existsSync(join(theirs, 'queue.mdb')), false, "nothing created in the other user's directory");
    } finally {
      dir.cleanup();
    }
  });

  it('refuses a spool directory owned by another user or writable by group/others, and one below a directory another user owns', needsRoot, () => {
    const dir = tempDir();
    try {
      const spool = join(dir.path, 'spool');
      mkdirSync(spool, { mode: 0o700 });
      chownSync(spool, OTHER, OTHER);
      assert.deepEqual(spoolProblems(spool, 0), [`spool directory ${spool} is owned by uid ${OTHER}, not by the daemon's user (uid 0); fix: chown 0 ${spool}`]);
      chownSync(spool, 0, 0);
      chmodSync(spool, 0o777);
      assert.deepEqual(spoolProblems(spool, 0), [`spool directory ${spool} is group or other writable (mode 0777); fix: chmod 700 ${spool}`]);
      chmodSync(spool, 0o700);
      assert.deepEqual(spoolProblems(spool, 0), []);
      const parent = join(dir.path, 'home-of-other');
      mkdirSync(parent, { mode: 0o755 });
      chownSync(parent, OTHER, OTHER);
      assert.deepEqual(spoolProblems(join(parent, 'spool'), 0), [`${parent} (above the spool directory) is owned by uid ${OTHER}, not by root or the daemon's user (uid 0)`]);
      const open = join(dir.path, 'open');
      mkdirSync(open, { mode: 0o777 });
      chmodSync(open, 0o777);
      assert.match(spoolProblems(join(open, 'spool'), 0).join('\n'), /open \(above the spool directory\) is group or other writable \(mode 0777\)/);
      chmodSync(open, 0o1777); // sticky, like /tmp: others cannot rename our entries
      assert.deepEqual(spoolProblems(join(open, 'spool'), 0), []);
    } finally {
      dir.cleanup();
    }
  });

  it('refuses a secret file owned by another unprivileged user even at mode 0600', needsRoot, async () => {
    const dir = tempDir();
    try {
      const secret = join(dir.path, 'primary.secret');
      writeFileSync(secret, 'pw\n', { mode: 0o600 });
      chownSync(secret, OTHER, OTHER);
      const file = writeConfig(dir.path, relayConfig({ spool: join(dir.path, 'spool'), upstreamExtra: `username = "u"\npassword_file = "${secret}"` }));
      const result = await runCli(['serve', '--config', file]);
      assert.equal(result.code, 78, result.stderr);
      assert.match(result.stderr, new RegExp(`${secret} holds a secret and is owned by uid ${OTHER}, not by root or the daemon's user \\(uid 0\\)`));
      // Owned by the daemon's user (here root, which is also allowed as owner): accepted.
      chownSync(secret, 0, 0);
      const config = parseConfig(
        `[[upstream]]\ntype = "smtp"\nhost = "127.0.0.1"\ntls = "none"\nusername = "u"\npassword_file = "${secret}"\n[spool]\npath = "${join(dir.path, 'spool')}"\n`,
        join(dir.path, 'm.toml'),
        {},
      );
      assert.deepEqual(permissionProblems(config, 0), []);
      assert.ok(!permissionProblems(config, 4242).some((p) => p.includes(secret)), 'root may own the secrets of a daemon running as another user');
    } finally {
      dir.cleanup();
    }
  });

  it('creates queue.mdb and its lock file 0600 and tightens older 0644 ones', async () => {
    const dir = tempDir();
    try {
      const spool = join(dir.path, 'spool');
      const file = writeConfig(dir.path, relayConfig({ spool }));
      let daemon = await startDaemon(file);
      await daemon.stop();
      for (const name of ['queue.mdb', 'queue.mdb-lock']) assert.equal(statSync(join(spool, name)).mode & 0o777, 0o600, name);
      chmodSync(join(spool, 'queue.mdb'), 0o644);
      daemon = await startDaemon(file);
      await daemon.stop();
      assert.equal(statSync(join(spool, 'queue.mdb')).mode & 0o777, 0o600);
    } finally {
      dir.cleanup();
    }
  });
});
