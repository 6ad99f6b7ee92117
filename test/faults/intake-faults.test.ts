/**
 * Disk faults at intake, injected into the running daemon's syscalls with strace: the client never
 * gets a 250 for what is not on disk, the daemon stays up (ENOSPC) or stops deliberately (a failed
 * fsync), status says why, and mail flows again once the fault is gone.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { startCapture } from '../helpers/capture.js';
import { runCli } from '../helpers/cli.js';
import { relayConfig } from '../helpers/config.js';
import { startDaemon, writeConfig } from '../helpers/daemon.js';
import { tempDir } from '../helpers/tmp.js';
import { checked, inject, sendMessage, straceMissing } from './helpers.js';

const noStrace = straceMissing();

describe('disk faults at intake (strace fault injection)', { skip: noStrace }, () => {
  const writeFaults: Array<[string, RegExp]> = [
    ['ENOSPC', /^452 4\.3\.1 /], // "insufficient system storage"
    ['EIO', /^451 4\.3\.0 /], // "local error in processing"
  ];
  for (const [errno, expected] of writeFaults) {
    it(`${errno} writing spool pages: ${expected.source.slice(1, 4)}, nothing stored, daemon up, then 250 again`, async (t) => {
      const dir = tempDir();
      const capture = await startCapture();
      const config = writeConfig(dir.path, relayConfig({ spool: `${dir.path}/spool`, upstreamPort: capture.port }));
      const daemon = await startDaemon(config);
      try {
        assert.match(await sendMessage(daemon.port, 'before'), /^250 /);
        await capture.waitFor(1);
        // Data pages of a multi-page commit go out with writev(2) (strace of lmdb-js 3.5).
        const faults = await inject(daemon.child.pid!, [`writev:error=${errno}`]);
        let reply: string;
        try {
          reply = await sendMessage(daemon.port, 'during', 20_000);
          assert.match(reply, expected);
          checked(t, `${errno} on writev → "${reply}"`);
          // (status is checked on a really full disk in disk-full.test.ts: writev(2) is also how Node
          // writes HTTP responses, so the control socket cannot answer while writev is faulted.)
        } finally {
          await faults.detach();
        }
        assert.equal(daemon.child.exitCode, null, 'the daemon is still running');
        assert.ok(!daemon.logs.some((l) => /unhandled|Commit failed/i.test(String(l.msg)) && l.level === 60), 'no crash line');
        assert.match(await sendMessage(daemon.port, 'after'), /^250 /, 'accepting again once the fault is gone');
        const got = await capture.waitFor(2);
        const subjects = got.map((m) => /Subject: (\w+)/.exec(m.raw.toString())?.[1]);
        assert.deepEqual(subjects.sort(), ['after', 'before'], 'the refused message was not stored and is never delivered');
        const status = await runCli(['status', '--config', config]);
        assert.equal(status.code, 0, `status OK again: ${status.stdout}`);
        checked(t, 'daemon stayed up; the refused message was never delivered; mail flows and status is OK again after the fault');
      } finally {
        await daemon.stop();
        await capture.close();
        dir.cleanup();
      }
    });
  }

  it('EIO from fdatasync after the commit is visible: no 250, one fatal line, exit 74; the restart verifies the spool and serves', async (t) => {
    const dir = tempDir();
    const capture = await startCapture();
    const config = writeConfig(dir.path, relayConfig({ spool: `${dir.path}/spool`, upstreamPort: capture.port }));
    const daemon = await startDaemon(config);
    let restarted;
    try {
      const faults = await inject(daemon.child.pid!, ['fdatasync:error=EIO']);
      try {
        const reply = await sendMessage(daemon.port, 'eio');
        assert.ok(!reply.startsWith('250'), `no 250 for a commit that was not synced (got "${reply}")`);
        checked(t, `fdatasync EIO → reply "${reply || '(connection closed)'}"`);
        assert.equal(await daemon.exited, 74, 'fail-stop exit code');
      } finally {
        await faults.detach();
      }
      const fatal = daemon.logs.filter((l) => l.level === 60);
      assert.equal(fatal.length, 1, 'exactly one fatal line');
      assert.equal(fatal[0]!.event, 'fail-stop');
      checked(t, `fail-stop: exit 74, "${String(fatal[0]!.msg).slice(0, 120)}"`);
      restarted = await startDaemon(config);
      await restarted.waitForLog((l) => l.event === 'spool-verified');
      assert.match(await sendMessage(restarted.port, 'after'), /^250 /);
      await capture.waitFor(1);
      checked(t, 'after the restart the spool verifies and mail is accepted');
    } finally {
      await daemon.stop();
      await restarted?.stop();
      await capture.close();
      dir.cleanup();
    }
  });
});
