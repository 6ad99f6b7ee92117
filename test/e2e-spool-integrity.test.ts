/**
 * Spool integrity with the real daemon: orphaned due entries cannot stall delivery, a submission
 * token queues one message however it arrives, one daemon per spool, and queue commands wait for
 * an in-flight attempt so a delivered message is never "cancelled by the administrator".
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import type { Database } from 'lmdb';
import { writeMaildrop } from '../src/intake/maildrop.js';
import { encodeFrame, type SubmitRequest } from '../src/intake/submission-protocol.js';
import { askDaemon } from '../src/sendmail/submit.js';
import { newQueueId, newSubmitToken } from '../src/spool/ids.js';
import { lockSpool } from '../src/spool/lock.js';
import { Spool } from '../src/spool/spool.js';
import { startCapture } from './helpers/capture.js';
import { runCli } from './helpers/cli.js';
import { relayConfig } from './helpers/config.js';
import { MAILSHIM, startDaemon, writeConfig, type RunningDaemon } from './helpers/daemon.js';
import { submit } from './helpers/submit.js';
import { tempDir } from './helpers/tmp.js';

/** One submission over the daemon's socket, as the sendmail command sends it. */
async function socketSubmit(socket: string, token: string, uid: number, subject: string): Promise<{ ok: boolean; id?: string; duplicate?: boolean }> {
  const body = Buffer.from(`From: <app@example.org>\r\nTo: <rcpt@example.net>\r\nSubject: ${subject}\r\n\r\nhello\r\n`);
  const request: SubmitRequest = { op: 'submit', token, sender: 'app@example.org', recipients: ['rcpt@example.net'], user: 'app', uid, size: body.length };
  const answer = await askDaemon(socket, encodeFrame(request, body), 30_000);
  assert.equal(answer.kind, 'reply');
  return (answer as { reply: { ok: boolean; id?: string; duplicate?: boolean } }).reply;
}

describe('scheduler heals itself', () => {
  it('orphaned due entries (more than the delivery concurrency) do not stop delivery, and are removed', async () => {
    const dir = tempDir();
    const capture = await startCapture();
    const spoolPath = `${dir.path}/spool`;
    // Plant what the id race used to leave behind: due entries whose record does not exist.
    const spool = Spool.open(spoolPath);
    const due = (spool as unknown as { due: Database<null, [number, string]> }).due;
    for (let i = 0; i < 8; i++) await due.put([i, `ORPHAN${String(i).padStart(10, '0')}`], null);
    await spool.close();
    const config = writeConfig(dir.path, relayConfig({ spool: spoolPath, upstreamPort: capture.port, upstreamExtra: 'max_concurrency = 2' }));
    const daemon = await startDaemon(config);
    try {
      const id = await submit(daemon.port, 'alice@example.org', ['bob@example.net'], 'after the orphans');
      await daemon.waitForLog((l) => l.event === 'delivery' && l.queueId === id && l.result === 'delivered', 10_000);
      const healed = await daemon.waitForLog((l) => l.event === 'stale-due');
      assert.equal(healed.count, 8);
    } finally {
      await daemon.stop();
      await capture.close();
      dir.cleanup();
    }
  });
});

describe('idempotent sendmail submissions', () => {
  it('two simultaneous socket submissions with one token: one message queued and delivered, both get its id; the maildrop fallback of the same submission is dropped', async () => {
    const dir = tempDir();
    const capture = await startCapture();
    const spool = `${dir.path}/spool`;
    const daemon = await startDaemon(writeConfig(dir.path, relayConfig({ spool, upstreamPort: capture.port })));
    try {
      const token = newSubmitToken();
      const [a, b] = await Promise.all([socketSubmit(`${spool}.sock`, token, 1000, 'race'), socketSubmit(`${spool}.sock`, token, 1000, 'race')]);
      assert.equal(a.ok && b.ok, true);
      assert.ok(a.id);
      assert.equal(a.id, b.id, 'both clients get the same queue id');
      assert.deepEqual([a.duplicate, b.duplicate].sort(), [false, true]);
      await daemon.waitForLog((l) => l.event === 'delivery' && l.queueId === a.id && l.result === 'delivered');
      assert.equal(daemon.logs.filter((l) => l.event === 'accepted').length, 1, 'queued once');
      assert.equal(daemon.logs.filter((l) => l.event === 'duplicate' && l.queueId === a.id).length, 1);

      // The same token from another uid is another submission (tokens are scoped to the uid).
      const other = await socketSubmit(`${spool}.sock`, token, 1001, 'other user');
      assert.equal(other.duplicate, false);
      assert.notEqual(other.id, a.id);

      // sendmail lost the daemon's reply (timeout, daemon stopping) and wrote the maildrop with the
      // same token: the file is recognised, even though the message was delivered meanwhile.
      const uid = process.getuid!();
      const lost = newSubmitToken();
      const first = await socketSubmit(`${spool}.sock`, lost, uid, 'reply lost');
      await daemon.waitForLog((l) => l.event === 'delivery' && l.queueId === first.id && l.result === 'delivered');
      const body = Buffer.from('From: <app@example.org>\r\nTo: <rcpt@example.net>\r\nSubject: reply lost\r\n\r\nhello\r\n');
      writeMaildrop(`${spool}-maildrop`, { op: 'submit', token: lost, sender: 'app@example.org', recipients: ['rcpt@example.net'], user: 'app', uid, size: body.length }, body);
      await daemon.waitForLog((l) => l.event === 'maildrop-duplicate' && l.queueId === first.id);
      assert.equal(existsSync(`${spool}-maildrop/${lost}`), false, 'the duplicate file is removed');
      assert.equal(capture.messages.filter((m) => m.raw.includes('Subject: reply lost')).length, 1, 'delivered once');
      assert.ok(!daemon.output().includes(token) && !daemon.output().includes(lost), 'tokens are never logged');

      // A file left by an older sendmail (named by the queue id in its frame) is still imported, once.
      const legacyName = newQueueId();
      const legacy = encodeFrame(
        { op: 'submit', id: legacyName, sender: 'app@example.org', recipients: ['rcpt@example.net'], user: 'app', uid, size: body.length, localized: true } as SubmitRequest,
        body,
      );
      const drop = () => {
        writeFileSync(`${spool}-maildrop/.tmp.legacy`, legacy);
        renameSync(`${spool}-maildrop/.tmp.legacy`, `${spool}-maildrop/${legacyName}`);
      };
      drop();
      const imported = await daemon.waitForLog((l) => l.event === 'accepted' && l.via === 'maildrop');
      // Delivery starts only after the import's synchronous unlink (maildrop.ts): the file is gone.
      await daemon.waitForLog((l) => l.event === 'delivery' && l.queueId === imported.queueId);
      drop();
      await daemon.waitForLog((l) => l.event === 'maildrop-duplicate' && l.queueId === imported.queueId);
    } finally {
      await daemon.stop();
      await capture.close();
      dir.cleanup();
    }
  });
});

describe('one daemon per spool', () => {
  it('a second daemon on the same spool exits 75 naming the holder; the lock goes with kill -9; queue commands with the daemon down take it briefly', async () => {
    const dir = tempDir();
    const spool = `${dir.path}/spool`;
    const first = writeConfig(dir.path, relayConfig({ spool }), 'first.toml');
    // Another config naming the same spool.path, with its own sockets and maildrop.
    const second = writeConfig(
      dir.path,
      relayConfig({ spool })
        .replace(`socket = ${JSON.stringify(`${spool}.sock`)}`, `socket = ${JSON.stringify(`${dir.path}/second.sock`)}`)
        .replace(`maildrop = ${JSON.stringify(`${spool}-maildrop`)}`, `maildrop = ${JSON.stringify(`${dir.path}/second-maildrop`)}`) +
        `\n[control]\nsocket = ${JSON.stringify(`${dir.path}/second-control.sock`)}\n`,
      'second.toml',
    );
    let daemon: RunningDaemon | undefined = await startDaemon(first);
    try {
      for (const config of [first, second]) {
        const refused = await runCli(['serve', '--config', config]);
        assert.equal(refused.code, 75, refused.stderr);
        assert.match(refused.stderr, new RegExp(`spool .*/spool is locked by a mailshim daemon \\(pid ${daemon.child.pid}\\); not starting: only one daemon may use a spool\\n`));
      }
      assert.equal(existsSync(`${dir.path}/second-maildrop`), false, 'the refused daemon did not start its maildrop importer');
      assert.equal(readFileSync(`${spool}/lock`, 'utf8'), `${daemon.child.pid} daemon\n`);
      const id = await submit(daemon.port, 'alice@example.org', ['bob@example.net'], 'queued');
      await daemon.kill9();

      // Daemon down: the queue command writes the spool itself, under the lock, and lets go.
      const held = await runCli(['queue', 'hold', id, '--config', second]);
      assert.equal(held.code, 0, held.stderr);
      daemon = await startDaemon(second);
      const shown = await runCli(['queue', 'show', id, '--json', '--config', second]);
      assert.equal((JSON.parse(shown.stdout) as { held: boolean }).held, true);
    } finally {
      await daemon?.stop();
      dir.cleanup();
    }
  });
});

describe('a queue command holding the spool lock (daemon down)', () => {
  it('makes a starting daemon wait for it, not fail', async () => {
    const dir = tempDir();
    const spool = `${dir.path}/spool`;
    const config = writeConfig(dir.path, relayConfig({ spool }));
    const lock = await lockSpool(spool, 'queue hold');
    const child = spawn(process.execPath, [MAILSHIM, 'serve', '--config', config], { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    let seen: (() => void) | undefined;
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      seen?.();
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
    const until = async (text: string) => {
      while (!output.includes(text)) {
        if (child.exitCode !== null) throw new Error(`daemon exited:\n${output}`);
        await new Promise<void>((resolve) => (seen = resolve));
      }
    };
    try {
      await until('"event":"spool-lock-wait"');
      assert.match(output, new RegExp(`waiting up to 15 s for \`mailshim queue hold\` \\(pid ${process.pid}\\)`));
      assert.ok(!output.includes('"event":"started"'));
      lock.release();
      await until('"event":"started"');
    } finally {
      lock.release();
      child.kill('SIGTERM');
      await exited;
      dir.cleanup();
    }
  });
});

describe('queue commands during an in-flight delivery', () => {
  for (const command of [['bounce'], ['delete', '--yes']]) {
    it(`queue ${command[0]} waits for the attempt; the delivery's outcome wins and no "cancelled" bounce is sent`, async () => {
      const dir = tempDir();
      const capture = await startCapture();
      let arrived!: () => void;
      const arrival = new Promise<void>((resolve) => (arrived = resolve));
      let release!: () => void;
      const released = new Promise<void>((resolve) => (release = resolve));
      capture.script.beforeDataReply = async () => {
        arrived();
        await released;
      };
      const config = writeConfig(dir.path, relayConfig({ spool: `${dir.path}/spool`, upstreamPort: capture.port }));
      let daemon: RunningDaemon | undefined;
      try {
        daemon = await startDaemon(config);
        const id = await submit(daemon.port, 'sender@example.org', ['slow@example.net'], 'slow upstream');
        await arrival; // the message is at the upstream, its 250 not yet sent
        const cli = runCli(['queue', ...command.slice(0, 1), id, ...command.slice(1), '--config', config]);
        await daemon.waitForLog((l) => l.event === 'operator-wait' && l.queueId === id);
        capture.script.beforeDataReply = undefined;
        release();
        const result = await cli;
        assert.equal(result.code, 66, result.stderr);
        assert.match(result.stderr, /no such message in the queue \(delivered or bounced meanwhile\)/);
        await daemon.waitForLog((l) => l.event === 'delivery' && l.queueId === id && l.result === 'delivered');
        assert.ok(!daemon.logs.some((l) => l.event === 'operator'), 'nothing was cancelled');
        assert.ok(!daemon.logs.some((l) => l.event === 'accepted' && l.queueId !== id), 'no bounce was queued');
        assert.equal(capture.messages.length, 1);
      } finally {
        release();
        await daemon?.stop();
        await capture.close();
        dir.cleanup();
      }
    });
  }
});
