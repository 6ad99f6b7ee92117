/**
 * Body files (src/spool/body-files.ts) under disk faults, in the running daemon: the body file is
 * written (pwrite64, pwritev: as DATA arrives, for SMTP), fdatasync'ed and its directory fsync'ed *before* the LMDB record naming it
 * is committed, and only then does the client get 250. So a fault at any of those steps is a 4xx
 * with nothing stored — no record, no file — and the daemon stays up. Had the record been
 * committed first, the same faults would hit LMDB's own writes and fsync (a fail-stop, or a
 * record naming a file that is not there). A crash between the file and the commit leaves an
 * orphan that start-up removes; a record whose file is missing, cut short or changed is held as
 * damaged, the rest is delivered, and nothing damaged is ever completed at the upstream.
 *
 * LMDB writes queue.mdb with pwrite64 and writev and syncs it with fdatasync; the directory's
 * fsync(2) is the only fsync while the daemon serves (checked with strace on lmdb-js 3.5).
 */
import assert from 'node:assert/strict';
import { closeSync, existsSync, openSync, readdirSync, readFileSync, rmSync, truncateSync, unlinkSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, describe, it } from 'node:test';
import { startCapture } from '../helpers/capture.js';
import { runCli } from '../helpers/cli.js';
import { relayConfig } from '../helpers/config.js';
import { startDaemon, writeConfig, type RunningDaemon } from '../helpers/daemon.js';
import { closedPort, tempDir } from '../helpers/tmp.js';
import { checked, fill, inject, mountMissing, mountTmpfs, sendData, sendMessage, straceMissing, until } from './helpers.js';

/** Above BODY_FILE_MIN (64 KiB): stored as a file. */
const BIG = 300_000;

const noStrace = straceMissing();

function bodyFiles(spool: string): string[] {
  return existsSync(join(spool, 'bodies')) ? readdirSync(join(spool, 'bodies')) : [];
}

/** The queue id whose body file has `Subject: <subject>`. */
function fileOf(spool: string, subject: string): string {
  const id = bodyFiles(spool).find((f) => readFileSync(join(spool, 'bodies', f), 'latin1').includes(`Subject: ${subject}\r\n`));
  assert.ok(id, `a body file for ${subject}`);
  return id;
}

/** The queue as `mailshim queue list --json` shows it (read beside the running daemon). */
async function queued(config: string): Promise<unknown[]> {
  const list = await runCli(['queue', 'list', '--json', '--config', config]);
  assert.equal(list.code, 0, list.stderr);
  return (JSON.parse(list.stdout) as { queue: unknown[] }).queue;
}

function subjects(messages: Array<{ raw: Buffer }>): string[] {
  return messages.map((m) => /Subject: (\w+)/.exec(m.raw.toString('latin1'))?.[1] ?? '?').sort();
}

describe('body files: faults at each step before the record (strace)', { skip: noStrace }, () => {
  const faults: Array<[string, string, RegExp]> = [
    // One batch of the body is one pwrite64, several socket chunks at once one pwritev.
    ['the body write', 'pwrite64,pwritev:error=EIO', /^451 4\.3\.0 /],
    ['the body write', 'pwrite64,pwritev:error=ENOSPC', /^452 4\.3\.1 /],
    ["the body file's fdatasync", 'fdatasync:error=EIO', /^451 4\.3\.0 /],
    ["the directory's fsync", 'fsync:error=EIO', /^451 4\.3\.0 /],
  ];
  for (const [step, fault, expected] of faults) {
    it(`${fault} on ${step}: ${expected.source.slice(1, 4)}, no record, no file, the daemon stays up`, async (t) => {
      const dir = tempDir();
      const capture = await startCapture();
      const spool = `${dir.path}/spool`;
      const config = writeConfig(dir.path, relayConfig({ spool, upstreamPort: capture.port }));
      const daemon = await startDaemon(config);
      try {
        const injector = await inject(daemon.child.pid!, [fault]);
        try {
          const reply = await sendMessage(daemon.port, 'during', BIG);
          assert.match(reply, expected);
          checked(t, `${fault} → "${reply}"`);
        } finally {
          await injector.detach();
        }
        assert.equal(daemon.child.exitCode, null, 'the daemon is still running (no fail-stop: nothing was committed)');
        assert.deepEqual(bodyFiles(spool), [], 'no body file left');
        assert.deepEqual(await queued(config), [], 'no record');
        assert.match(await sendMessage(daemon.port, 'after', BIG), /^250 /, 'accepting again once the fault is gone');
        await capture.waitFor(1);
        await sleep(500); // a stored "during" would be due at once: give it the time to show up
        assert.deepEqual(subjects(capture.messages), ['after'], 'the refused message was not stored and is never delivered');
        await until('the delivered body file to be unlinked', () => bodyFiles(spool).length === 0);
        checked(t, 'nothing stored for the refused message; the next one is accepted, delivered and its file removed');
      } finally {
        await daemon.stop();
        await capture.close();
        dir.cleanup();
      }
    });
  }

  it('kill -9 after the body file, before its record (the directory fsync held by strace): no 250; start-up removes the orphan', async (t) => {
    const dir = tempDir();
    const capture = await startCapture();
    const spool = `${dir.path}/spool`;
    const config = writeConfig(dir.path, relayConfig({ spool, upstreamPort: capture.port }));
    const daemon = await startDaemon(config);
    let restarted: RunningDaemon | undefined;
    try {
      const injector = await inject(daemon.child.pid!, ['fsync:delay_enter=10000000']); // 10 s
      const reply = sendMessage(daemon.port, 'crashed', BIG).catch((error: Error) => `error: ${error.message}`);
      const [orphan] = await until('the body file to be written', () => bodyFiles(spool).length === 1 && bodyFiles(spool));
      await until('the whole body in the file', () => readFileSync(join(spool, 'bodies', orphan!)).length >= BIG);
      await daemon.kill9();
      await injector.detach();
      assert.doesNotMatch(await reply, /^250/, 'not acknowledged');
      checked(t, `killed between file and commit: reply "${await reply}", ${orphan} left in bodies/`);
      restarted = await startDaemon(config);
      const removed = await restarted.waitForLog((l) => l.event === 'spool-orphan-bodies');
      assert.deepEqual(removed.removed, [orphan]);
      await restarted.waitForLog((l) => l.event === 'spool-verified');
      assert.deepEqual(bodyFiles(spool), []);
      assert.deepEqual(await queued(config), [], 'no record');
      assert.match(await sendMessage(restarted.port, 'after', BIG), /^250 /);
      await capture.waitFor(1);
      await sleep(300);
      assert.deepEqual(subjects(capture.messages), ['after'], 'the unacknowledged message is not in the queue');
      checked(t, 'the restart removed the orphan, queued nothing for it, and serves');
    } finally {
      await daemon.stop();
      await restarted?.stop();
      await capture.close();
      dir.cleanup();
    }
  });
});

const scratch = tempDir('mailshim-bodyfaults-');
const noMount = mountMissing(join(scratch.path, 'probe'));
after(() => scratch.cleanup());

describe('body files: the file system fills between the body file and its record (tmpfs)', { skip: noStrace ?? noMount }, () => {
  it('the commit fails with ENOSPC after the file was written: 452, the file removed, nothing delivered; then mail flows again', async (t) => {
    const fs = join(scratch.path, 'fs');
    const unmount = mountTmpfs(fs, '16m');
    const capture = await startCapture();
    const spool = `${fs}/spool`;
    const config = writeConfig(scratch.path, relayConfig({ spool, upstreamPort: capture.port }));
    const daemon = await startDaemon(config);
    const filler = join(fs, 'filler');
    try {
      // The directory fsync (after the file, before the commit) is held while the disk is filled.
      const injector = await inject(daemon.child.pid!, ['fsync:delay_enter=1500000']);
      const reply = sendMessage(daemon.port, 'squeezed', BIG);
      await until('the body file to be written', () => bodyFiles(spool).length === 1 && readFileSync(join(spool, 'bodies', bodyFiles(spool)[0]!)).length >= BIG);
      fill(filler);
      const answer = await reply;
      await injector.detach();
      assert.match(answer, /^452 4\.3\.1 /);
      assert.deepEqual(bodyFiles(spool), [], 'the body file of the refused message is gone');
      assert.deepEqual(await queued(config), [], 'no record');
      assert.equal(daemon.child.exitCode, null, 'the daemon is still running');
      checked(t, `disk filled after the body file: "${answer}", no file left`);
      rmSync(filler);
      assert.match(await sendMessage(daemon.port, 'after', BIG), /^250 /);
      await capture.waitFor(1);
      await sleep(500);
      assert.deepEqual(subjects(capture.messages), ['after']);
      checked(t, 'space back: accepted and delivered; the refused message never was');
    } finally {
      await daemon.stop();
      await capture.close();
      unmount();
    }
  });
});

describe('body files: damage', () => {
  /** A spool whose upstream (`port`) is not listening yet: accepted mail stays queued, retried every 200-300 ms, until a capture starts there. */
  async function upstreamNotYetUp() {
    const dir = tempDir();
    const port = await closedPort();
    const spool = `${dir.path}/spool`;
    const config = writeConfig(dir.path, relayConfig({ spool, upstreamPort: port, retry: { initial: '200ms', max: '300ms' } }));
    return { dir, port, spool, config };
  }

  it('a record whose file is missing or cut short is held as damaged at start; the others are delivered; no crash loop', async (t) => {
    const { dir, port, spool, config } = await upstreamNotYetUp();
    let daemon = await startDaemon(config);
    let capture;
    try {
      for (const subject of ['missing', 'truncated', 'fine']) assert.match(await sendMessage(daemon.port, subject, BIG), /^250 /);
      await daemon.stop();
      unlinkSync(join(spool, 'bodies', fileOf(spool, 'missing')));
      truncateSync(join(spool, 'bodies', fileOf(spool, 'truncated')), 1000);
      capture = await startCapture({ port });
      daemon = await startDaemon(config);
      const held = new Set<string>();
      await daemon.waitForLog((l) => {
        if (l.event === 'spool-damaged') held.add(String(l.problem));
        return held.size === 2;
      });
      assert.ok([...held].some((p) => /is missing/.test(p)) && [...held].some((p) => /cut short|bytes, \d+ were stored/.test(p)), [...held].join('; '));
      await capture.waitFor(1);
      await sleep(700);
      assert.deepEqual(subjects(capture.messages), ['fine'], 'only the intact message is delivered');
      assert.equal(daemon.child.exitCode, null, 'the daemon serves on');
      checked(t, `held at start: ${[...held].join('; ')}; the intact one delivered`);
    } finally {
      await daemon.stop();
      await capture?.close();
      dir.cleanup();
    }
  });

  it('a body file changed on disk while queued: the stream fails before its end, the sink completes nothing, the message is held', async (t) => {
    const { dir, port, spool, config } = await upstreamNotYetUp();
    const daemon = await startDaemon(config);
    let capture;
    try {
      assert.match(await sendMessage(daemon.port, 'flipped', BIG), /^250 /);
      const id = fileOf(spool, 'flipped');
      const fd = openSync(join(spool, 'bodies', id), 'r+');
      writeSync(fd, Buffer.from('#'), 0, 1, BIG - 5000); // same size: only the checksum can tell
      closeSync(fd);
      capture = await startCapture({ port });
      const damaged = await daemon.waitForLog((l) => l.event === 'spool-damaged' && l.queueId === id);
      assert.match(String(damaged.problem), /checksum mismatch/);
      const attempt = daemon.logs.find((l) => l.event === 'delivery' && l.queueId === id && /checksum/.test(String(l.reply)));
      assert.ok(attempt, 'the damage was found while sending (the attempt failed on it), not before');
      await sleep(500);
      assert.equal(capture.messages.length, 0, 'the upstream never got the final "." for the damaged bytes');
      assert.ok(existsSync(join(spool, 'bodies', id)), 'the damaged message is kept for the operator');
      checked(t, `held: ${String(damaged.problem)}; the sink accepted nothing`);
    } finally {
      await daemon.stop();
      await capture?.close();
      dir.cleanup();
    }
  });
});

describe('body files: relay', () => {
  it('a 1 MB message relays byte for byte through the daemon to the sink, and its file is gone after delivery', async (t) => {
    const dir = tempDir();
    const capture = await startCapture();
    const spool = `${dir.path}/spool`;
    const config = writeConfig(dir.path, relayConfig({ spool, upstreamPort: capture.port }).replace('max_message_size = "1MB"', 'max_message_size = "2MB"'));
    const daemon = await startDaemon(config);
    try {
      const lines: string[] = [];
      for (let n = 0, size = 0; size < 1 << 20; n++) {
        const line = `${n.toString(36)} ${'abcdefghijklmnopqrstuvwxyz0123456789'.repeat(2)}\r\n`;
        lines.push(line); // never starts with "." (no dot-stuffing to undo)
        size += line.length;
      }
      const body = `From: a@example.org\r\nTo: b@example.net\r\nSubject: megabyte\r\nMessage-ID: <mb@example.org>\r\nDate: Sat, 28 Nov 2026 02:00:00 +0000\r\n\r\n${lines.join('')}`;
      assert.match(await sendData(daemon.port, body), /^250 /);
      const [got] = await capture.waitFor(1, 30_000);
      const sent = Buffer.from(body, 'latin1');
      const tail = got!.raw.subarray(got!.raw.length - sent.length);
      assert.ok(tail.equals(sent), 'the delivered message ends with the submitted one, byte for byte (only trace fields added in front)');
      assert.ok(got!.raw.length - sent.length < 1000, `${got!.raw.length - sent.length} bytes added`);
      await until('the body file to be unlinked', () => bodyFiles(spool).length === 0);
      checked(t, `${sent.length} bytes relayed byte for byte; bodies/ empty after delivery`);
    } finally {
      await daemon.stop();
      await capture.close();
      dir.cleanup();
    }
  });
});
