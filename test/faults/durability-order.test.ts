/**
 * "250 only after fsync" (and the sendmail socket's "ok" reply, and so its exit 0, only after
 * fsync), tested so that it can fail. kill -9 leaves the page cache intact, so a
 * kill -9 test passes even with the fsync removed. Here strace records the daemon's syscalls and
 * slows every fdatasync(2) down by 300 ms: the write of the message's pages, then a completed
 * fdatasync, must both come before the "250 ... queued as" reply is written.
 *
 * Checked by mutation: with `noSync: true` in Spool's open() this fails (no sync before the 250).
 * Removing only `await root.flushed` does not make it fail with lmdb-js 3.5: its commit promise
 * already resolves after mdb_txn_commit() returns, and with overlappingSync that call includes the
 * fdatasync (mdb.c, mdb_txn_commit's "done:" block). The await stays as the documented contract
 * (lmdb-js promises only visibility for the commit promise); this test guards the behaviour.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { relayConfig } from '../helpers/config.js';
import { startDaemon, writeConfig, type RunningDaemon } from '../helpers/daemon.js';
import { runBin } from '../helpers/sendmail.js';
import { closedPort, tempDir } from '../helpers/tmp.js';
import { checked, inject, sendMessage, straceMissing } from './helpers.js';

const noStrace = straceMissing();

/**
 * In the strace log: the write of the message's pages (they carry `subject`), then a completed
 * sync, then the write of the acknowledgement (`ack`). Returns what was checked.
 */
function assertSyncedBeforeAck(trace: string, subject: string, ack: (line: string) => boolean): string {
  const lines = readFileSync(trace, 'utf8').split('\n');
  const replyAt = lines.findIndex((l) => /\bwritev?\(/.test(l) && ack(l));
  const pagesAt = lines.findIndex((l) => /\b(pwrite64|writev)\(/.test(l) && l.includes(`Subject: ${subject}`));
  assert.ok(replyAt > 0, 'found the acknowledgement in the trace');
  assert.ok(pagesAt >= 0 && pagesAt < replyAt, 'the message pages were written before the acknowledgement');
  // A completed fdatasync/fsync/msync between the page write and the reply (strace prints the
  // result on the call's own line, or on its "resumed" line when another thread interleaved).
  const synced = lines.slice(pagesAt + 1, replyAt).find((l) => /(fdatasync|fsync|msync)\(\d*.*\) += 0|<\.\.\. (fdatasync|fsync|msync) resumed>.*= 0/.test(l));
  assert.ok(
    synced,
    `a completed sync between the page write and the acknowledgement:\n${lines
      .slice(pagesAt, replyAt + 1)
      .map((l) => l.slice(0, 140))
      .join('\n')}`,
  );
  return `pages (line ${pagesAt}) → "${synced.trim().slice(0, 80)}" → acknowledgement (line ${replyAt}), with every fdatasync delayed 300 ms`;
}

describe('durability order (strace)', { skip: noStrace }, () => {
  /** A daemon whose upstream is down (the message stays queued, nothing else writes), traced while `run` runs. */
  const traced = async (run: (daemon: RunningDaemon, config: string, trace: string) => Promise<string>): Promise<string> => {
    const dir = tempDir();
    const config = writeConfig(dir.path, relayConfig({ spool: `${dir.path}/spool`, upstreamPort: await closedPort() }));
    const daemon = await startDaemon(config);
    try {
      const trace = join(dir.path, 'trace');
      const tracer = await inject(daemon.child.pid!, ['fdatasync:delay_exit=300000'], { file: trace, also: ['fsync', 'msync', 'pwrite64', 'writev', 'write'] });
      let ack: string;
      try {
        ack = await run(daemon, config, trace);
      } finally {
        await tracer.detach();
      }
      return ack;
    } finally {
      await daemon.stop();
      dir.cleanup();
    }
  };

  it('writes the message pages, completes an fdatasync, and only then writes the 250', async (t) => {
    await traced(async (daemon, _config, trace) => {
      const reply = await sendMessage(daemon.port, 'durable7', 1000);
      assert.match(reply, /^250 2\.0\.0 Ok: queued as (\w+)/);
      const id = /queued as (\w+)/.exec(reply)![1]!;
      checked(t, `SMTP order: ${assertSyncedBeforeAck(trace, 'durable7', (l) => l.includes(`250 2.0.0 Ok: queued as ${id}`))}`);
      return id;
    });
  });

  it('sessions whose messages share a group commit: each 250 after a completed fdatasync that followed its pages', async (t) => {
    await traced(async (daemon, _config, trace) => {
      const subjects = Array.from({ length: 8 }, (_, i) => `group${i}`);
      const replies = await Promise.all(subjects.map((subject) => sendMessage(daemon.port, subject, 1000)));
      const orders = replies.map((reply, i) => {
        assert.match(reply, /^250 2\.0\.0 Ok: queued as (\w+)/);
        const id = /queued as (\w+)/.exec(reply)![1]!;
        return assertSyncedBeforeAck(trace, subjects[i]!, (l) => l.includes(`250 2.0.0 Ok: queued as ${id}`));
      });
      checked(t, `${orders.length} concurrent sessions, each: pages → completed fdatasync → its 250`);
      return '';
    });
  });

  it('the sendmail socket: pages, a completed fdatasync, and only then the "ok" reply (so exit 0)', async (t) => {
    await traced(async (_daemon, config, trace) => {
      const result = await runBin('sendmail', ['-i', 'ops@example.net'], { input: 'Subject: durable-socket\n\nhello\n', config });
      assert.equal(result.code, 0, result.stderr);
      checked(t, `socket order: ${assertSyncedBeforeAck(trace, 'durable-socket', (l) => l.includes('{\\"ok\\":true,\\"id\\":'))}`);
      return '';
    });
  });
});
