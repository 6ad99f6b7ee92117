/**
 * The submission path for an unprivileged user (PHP runs as www-data): through the daemon's
 * socket, and through the maildrop when the daemon is down. Runs the real binary as uid 33
 * when the tests run as root and the account exists; otherwise says so explicitly.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmodSync, readdirSync, statSync } from 'node:fs';
import { describe, it } from 'node:test';
import { startCapture } from './helpers/capture.js';
import { relayConfig } from './helpers/config.js';
import { startDaemon, writeConfig } from './helpers/daemon.js';
import { runBin } from './helpers/sendmail.js';
import { tempDir } from './helpers/tmp.js';

function wwwData(): { uid: number; gid: number } | undefined {
  if (process.getuid?.() !== 0) return undefined;
  try {
    const uid = Number(execFileSync('id', ['-u', 'www-data']).toString().trim());
    const gid = Number(execFileSync('id', ['-g', 'www-data']).toString().trim());
    return { uid, gid };
  } catch {
    return undefined;
  }
}

describe('sendmail as an unprivileged user', () => {
  it('submits as www-data through the socket, and through the maildrop while the daemon is down', async (t) => {
    const user = wwwData();
    if (!user) {
      return t.skip('not running as root or no www-data account: the unprivileged path was not exercised');
    }
    const dir = tempDir();
    chmodSync(dir.path, 0o755); // like /etc/mailshim and /run/mailshim: traversable by everyone
    const capture = await startCapture();
    const config = writeConfig(dir.path, relayConfig({ spool: `${dir.path}/spool`, upstreamPort: capture.port, local: 'admin = "admin@example.com"\nfrom = "alerts@example.com"' }));
    chmodSync(config, 0o644);
    let daemon = await startDaemon(config);
    try {
      const php = 'To: buyer@example.net\nSubject: order 1\n\nsent by www-data via the socket\n';
      const viaSocket = await runBin('sendmail', ['-t', '-i'], { input: php, config, ...user });
      assert.equal(viaSocket.code, 0, viaSocket.stderr);
      const accepted = await daemon.waitForLog((l) => l.event === 'accepted' && l.user === 'www-data');
      assert.equal(accepted.via, 'socket');
      assert.equal(accepted.uid, user.uid);
      await capture.waitFor(1);
      assert.equal(capture.messages[0]!.sender, 'alerts@example.com');
      assert.match(capture.messages[0]!.raw.toString(), /\r\nFrom: <alerts@example\.com>\r\n/);

      const mailq = await runBin('mailq', [], { config, ...user });
      assert.equal(mailq.code, 0, mailq.stderr);
      assert.equal(mailq.stdout, 'Mail queue is empty\n', 'any user may list the queue through the daemon');

      await daemon.stop();
      const mailqDown = await runBin('mailq', [], { config, ...user });
      assert.equal(mailqDown.code, 77, 'the spool itself is private to the daemon: EX_NOPERM, not "try again"');
      assert.match(mailqDown.stderr, /^mailq: the daemon is not running and the spool is not readable: .*Permission denied/);
      const queueDown = await runBin('mailshim', ['queue', 'show', 'X', '--config', config], { ...user });
      assert.equal(queueDown.code, 77, queueDown.stderr);
      assert.match(queueDown.stderr, /Permission denied/);
      const down = await runBin('sendmail', ['-t', '-i'], { input: php.replace('order 1', 'order 2').replace('the socket', 'the maildrop'), config, ...user });
      assert.equal(down.code, 0, down.stderr);
      const maildrop = `${dir.path}/spool-maildrop`;
      const files = readdirSync(maildrop).filter((n) => /^[0-9a-f]{32}$/.test(n));
      assert.equal(files.length, 1);
      assert.equal(statSync(`${maildrop}/${files[0]}`).uid, user.uid, 'the maildrop file belongs to the submitter');

      daemon = await startDaemon(config);
      await capture.waitFor(2);
      const second = capture.messages[1]!;
      assert.ok(second.raw.includes('sent by www-data via the maildrop'));
      // The file is named by the submission token; the daemon picks the queue id when it imports it.
      const imported = await daemon.waitForLog((l) => l.event === 'accepted' && l.via === 'maildrop');
      assert.equal(imported.uid, user.uid, 'attributed to the file owner');
      assert.match(second.raw.toString(), new RegExp(`^Received: by relay\\.test \\(mailshim\\) \\(uid ${user.uid}\\) with local id ${String(imported.queueId)}\\r\\n`));
    } finally {
      await daemon.stop();
      await capture.close();
      dir.cleanup();
    }
  });
});
