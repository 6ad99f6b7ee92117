/**
 * sendmail when the daemon is down (maildrop, exactly-once import), mailq, sendmail -q,
 * newaliases, the remaining exit codes, and mailshim install/uninstall.
 */
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, readlinkSync, renameSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { startCapture } from './helpers/capture.js';
import { relayConfig } from './helpers/config.js';
import { REPO, startDaemon, writeConfig } from './helpers/daemon.js';
import { runBin, waitForEmptyQueue } from './helpers/sendmail.js';
import { tempDir } from './helpers/tmp.js';

/** Maildrop files are named by the submission's idempotency token (32 hex digits). */
const queueFiles = (dir: string) => (existsSync(dir) ? readdirSync(dir).filter((n) => /^[0-9a-f]{32}$/.test(n)) : []);

describe('daemon down, then up', () => {
  it('keeps the message in the maildrop, imports it exactly once, lists it in mailq and runs it with -q', async () => {
    const dir = tempDir();
    const capture = await startCapture();
    capture.script.rcpt = new Map([['later@example.net', [451, '4.3.0 try again later']]]);
    writeFileSync(join(dir.path, 'aliases'), 'root: ops@example.com\n');
    const spool = `${dir.path}/spool`;
    const maildrop = `${spool}-maildrop`;
    const config = writeConfig(
      dir.path,
      relayConfig({
        spool,
        upstreamPort: capture.port,
        retry: { initial: '1h', max: '2h', age: '1d' },
        local: `aliases = ${JSON.stringify(join(dir.path, 'aliases'))}\nadmin = "admin@example.com"\nfrom = "alerts@example.com"`,
      }),
    );
    let daemon;
    try {
      const sent = await runBin('sendmail', ['-i', 'later@example.net'], { input: 'Subject: while down\n\nqueued while the daemon was down\n', config });
      assert.equal(sent.code, 0, sent.stderr);
      assert.equal(sent.stderr, '');
      const files = queueFiles(maildrop);
      assert.equal(files.length, 1, 'one maildrop file, durably renamed into place');
      const token = files[0]!;
      const saved = join(dir.path, 'saved-maildrop-file');
      copyFileSync(join(maildrop, token), saved);
      assert.equal(lstatSync(maildrop).mode & 0o7777, 0o1733, 'maildrop is world-writable and sticky, not listable');

      const down = await runBin('mailq', [], { config });
      assert.equal(down.code, 0, down.stderr);
      assert.match(down.stdout, /1 message\(s\) in the maildrop, waiting for the daemon/);

      daemon = await startDaemon(config);
      const accepted = await daemon.waitForLog((l) => l.event === 'accepted' && l.via === 'maildrop');
      const id = String(accepted.queueId);
      const attempt = await daemon.waitForLog((l) => l.event === 'delivery' && l.queueId === id);
      assert.equal(attempt.result, 'transient');
      assert.deepEqual(queueFiles(maildrop), [], 'imported file removed');
      assert.ok(!daemon.output().includes(token), 'the token is a secret: never logged');

      const listing = await runBin('mailq', [], { config });
      assert.equal(listing.code, 0, listing.stderr);
      assert.match(listing.stdout, /^-Queue ID-\s+--Size-- ----Arrival Time---- -Sender\/Recipient-------\n/);
      assert.match(
        listing.stdout,
        new RegExp(`\\n${id}\\s+\\d+ \\w{3} \\w{3} [ \\d]\\d \\d\\d:\\d\\d:\\d\\d  alerts@example\\.com\\n\\s+\\(451 [\\d.]+ .*try again later\\)\\n\\s+later@example\\.net\\n`),
      );
      assert.match(listing.stdout, /-- \d+ Kbytes in 1 Request\.\n$/);
      const json = await runBin('mailq', ['--json'], { config });
      const parsed = JSON.parse(json.stdout) as { queue: Array<{ id: string; sender: string; recipients: Array<{ address: string; lastError?: string }> }> };
      assert.equal(parsed.queue.length, 1);
      assert.equal(parsed.queue[0]!.id, id);
      assert.equal(parsed.queue[0]!.recipients[0]!.address, 'later@example.net');
      assert.match(parsed.queue[0]!.recipients[0]!.lastError ?? '', /^451 [\d.]+ .*try again later/);
      const bp = await runBin('sendmail', ['-bp'], { config });
      assert.equal(bp.stdout, listing.stdout, 'sendmail -bp is mailq');
      // mailq -s: the queue's shape (qshape): recipients waiting per domain and age bucket.
      const shape = await runBin('mailq', ['-s'], { config });
      assert.equal(shape.code, 0, shape.stderr);
      assert.match(shape.stdout, /^\s+T\s+5\s+10\s+20 /, shape.stdout);
      assert.match(shape.stdout, /\n\s*TOTAL\s+1\s+1\s+0 /);
      assert.match(shape.stdout, /\n\s*example\.net\s+1\s+1\s+0 /);
      assert.equal((await runBin('sendmail', ['-bp', '-s'], { config })).stdout, shape.stdout, 'sendmail -bp -s is mailq -s');

      // A crash between spool.accept and the unlink leaves the file behind: it must not queue twice.
      copyFileSync(saved, join(maildrop, `.tmp.${token}`)); // then rename, as sendmail does: the importer never sees half a file
      renameSync(join(maildrop, `.tmp.${token}`), join(maildrop, token));
      await daemon.waitForLog((l) => l.event === 'maildrop-duplicate' && l.queueId === id);
      assert.deepEqual(queueFiles(maildrop), []);
      const again = JSON.parse((await runBin('mailq', ['--json'], { config })).stdout) as { queue: unknown[] };
      assert.equal(again.queue.length, 1);

      // A symlink planted in the world-writable maildrop is set aside, never followed.
      const planted = '0123456789abcdef0123456789abcdef';
      symlinkSync(config, join(maildrop, planted));
      await daemon.waitForLog((l) => l.event === 'maildrop-bad' && String(l.msg).includes('symbolic link'));
      assert.equal(lstatSync(join(maildrop, `.bad.${planted}`)).isSymbolicLink(), true);
      assert.equal(daemon.logs.filter((l) => l.event === 'accepted').length, 1, 'the planted link queued nothing');

      // The next retry is an hour away; sendmail -q makes it due now.
      capture.script.rcpt = undefined;
      const q = await runBin('sendmail', ['-q'], { config });
      assert.equal(q.code, 0, q.stderr);
      await capture.waitFor(1);
      await daemon.waitForLog((l) => l.event === 'delivery' && l.queueId === id && l.result === 'delivered');
      await waitForEmptyQueue(config);
      const copies = capture.messages.filter((m) => m.raw.includes('queued while the daemon was down'));
      assert.equal(copies.length, 1, 'delivered exactly once');
      assert.equal(copies[0]!.sender, 'alerts@example.com');
      assert.deepEqual(copies[0]!.recipients, ['later@example.net']);
      assert.match(copies[0]!.raw.toString(), new RegExp(`^Received: by relay\\.test \\(mailshim\\) \\(uid \\d+\\) with local id ${id}\\r\\n`));
      assert.match((await runBin('mailq', [], { config })).stdout, /^Mail queue is empty\n$/);
    } finally {
      await daemon?.stop();
      await capture.close();
      dir.cleanup();
    }
  });

  it('newaliases validates (errors name the line, exit 65) and makes the daemon reload', async () => {
    const dir = tempDir();
    const aliases = join(dir.path, 'aliases');
    writeFileSync(aliases, 'root: ops@example.com\n');
    const config = writeConfig(dir.path, relayConfig({ spool: `${dir.path}/spool`, local: `aliases = ${JSON.stringify(aliases)}\nadmin = "admin@example.com"` }));
    const daemon = await startDaemon(config);
    try {
      writeFileSync(aliases, 'root: ops@example.com\nthis line is wrong\nweb: "|/usr/bin/php /srv/hook.php"\n');
      const bad = await runBin('newaliases', [], { config });
      assert.equal(bad.code, 65);
      assert.match(bad.stderr, /aliases:2: expected "name: target, target, \.\.\.", got "this line is wrong"/);
      assert.match(bad.stderr, /warning: .*aliases:3: web: refused .*\(programs are never run\)/);
      writeFileSync(aliases, 'root: ops@example.com\nwebmaster: root, web@example.net\nsupport: webmaster\n');
      const good = await runBin('newaliases', [], { config });
      assert.equal(good.code, 0, good.stderr);
      assert.equal(good.stdout, `${aliases}: 3 aliases\n`);
      await daemon.waitForLog((l) => l.event === 'aliases' && l.entries === 3);
      const bi = await runBin('sendmail', ['-bi'], { config });
      assert.equal(bi.code, 0, bi.stderr);
    } finally {
      await daemon.stop();
      dir.cleanup();
    }
  });
});

describe('sendmail exit codes without a daemon', () => {
  it('67 for a local name without alias or admin, 73 when the maildrop cannot be written, 75 for -q', async () => {
    const dir = tempDir();
    try {
      const config = writeConfig(dir.path, relayConfig({ spool: `${dir.path}/spool`, local: `aliases = ${JSON.stringify(join(dir.path, 'none'))}` }));
      const nouser = await runBin('sendmail', ['-i', 'nobody'], { input: 'Subject: x\n\ny\n', config });
      assert.equal(nouser.code, 67);
      assert.equal(nouser.stderr, 'sendmail: nobody: no such alias and [local] admin is not set\n');
      assert.deepEqual(queueFiles(`${dir.path}/spool-maildrop`), [], 'nothing written');

      writeFileSync(join(dir.path, 'not-a-dir'), '');
      const blocked = writeConfig(
        dir.path,
        relayConfig({ spool: `${dir.path}/spool`, extra: '' }).replace(/maildrop = .*/, `maildrop = ${JSON.stringify(join(dir.path, 'not-a-dir', 'maildrop'))}`),
        'blocked.toml',
      );
      const cantcreat = await runBin('sendmail', ['-i', 'a@example.net'], { input: 'Subject: x\n\ny\n', config: blocked });
      assert.equal(cantcreat.code, 73);
      assert.match(cantcreat.stderr, /^sendmail: daemon not running \(ENOENT\), and cannot write to the maildrop .*not-a-dir\/maildrop: ENOTDIR; message not accepted\n$/);

      const q = await runBin('sendmail', ['-q'], { config });
      assert.equal(q.code, 75);
      assert.match(q.stderr, /daemon is not running/);
    } finally {
      dir.cleanup();
    }
  });
});

describe('mailshim install / uninstall', () => {
  it('links the binaries under --prefix, refuses another MTA without --force, keeps and restores a backup', async () => {
    const dir = tempDir();
    try {
      const prefix = dir.path;
      mkdirSync(join(prefix, 'usr/sbin'), { recursive: true });
      writeFileSync(join(prefix, 'usr/sbin/sendmail'), '#!/bin/sh\necho postfix\n', { mode: 0o755 });
      const refused = await runBin('mailshim', ['install', '--prefix', prefix]);
      assert.equal(refused.code, 73);
      assert.match(refused.stderr, /refusing to replace another mail system's .*usr\/sbin\/sendmail \(a file\).*--force/);
      assert.equal(readFileSync(join(prefix, 'usr/sbin/sendmail'), 'utf8'), '#!/bin/sh\necho postfix\n', 'untouched');
      assert.throws(() => lstatSync(join(prefix, 'usr/bin/mailq')), 'a refusal changes nothing');

      const forced = await runBin('mailshim', ['install', '--prefix', prefix, '--force']);
      assert.equal(forced.code, 0, forced.stderr);
      for (const [path, bin] of [
        ['usr/sbin/sendmail', 'sendmail'],
        ['usr/lib/sendmail', 'sendmail'],
        ['usr/bin/mailq', 'mailq'],
        ['usr/bin/newaliases', 'newaliases'],
      ] as const) {
        assert.equal(readlinkSync(join(prefix, path)), join(REPO, 'bin', bin));
      }
      assert.equal(readFileSync(join(prefix, 'usr/sbin/sendmail.mailshim-backup'), 'utf8'), '#!/bin/sh\necho postfix\n');
      const twice = await runBin('mailshim', ['install', '--prefix', prefix]);
      assert.equal(twice.code, 0, twice.stderr);
      assert.match(twice.stdout, /already mailshim/);

      const removed = await runBin('mailshim', ['uninstall', '--prefix', prefix]);
      assert.equal(removed.code, 0, removed.stderr);
      assert.equal(readFileSync(join(prefix, 'usr/sbin/sendmail'), 'utf8'), '#!/bin/sh\necho postfix\n', 'restored');
      assert.equal(lstatSync(join(prefix, 'usr/sbin/sendmail')).isSymbolicLink(), false);
      assert.throws(() => lstatSync(join(prefix, 'usr/bin/mailq')));
    } finally {
      dir.cleanup();
    }
  });
});
