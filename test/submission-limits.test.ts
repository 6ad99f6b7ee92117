/**
 * Issue 10 item 8: the submission socket's caps and deadline. Per-uid and total connection caps
 * answer ETEMPFAIL (and the real sendmail command then falls back to the maildrop, so nothing is
 * lost); a body trickled in a byte at a time does not hold a slot past request_timeout.
 */
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { parseConfig } from '../src/config/load.js';
import { ConfigError } from '../src/errors.js';
import { encodeFrame } from '../src/intake/submission-protocol.js';
import { startCapture } from './helpers/capture.js';
import { relayConfig } from './helpers/config.js';
import { startDaemon, writeConfig } from './helpers/daemon.js';
import { runBin } from './helpers/sendmail.js';
import { askSocket } from './helpers/submit.js';
import { tempDir } from './helpers/tmp.js';

const frame = (uid: number, size: number) => encodeFrame({ op: 'submit', sender: 'a@example.org', recipients: ['b@example.org'], user: `u${uid}`, uid, size });

/** Opens a connection that sends a header and part of the body; resolves with the answer once one arrives or the daemon closes. */
function partial(path: string, uid: number): { socket: Socket; answer: Promise<string> } {
  const socket = connect(path);
  let data = '';
  const answer = new Promise<string>((resolve) => {
    socket.on('data', (d) => {
      data += d.toString();
      if (data.includes('\n')) resolve(data);
    });
    socket.on('close', () => resolve(data));
    socket.on('error', () => resolve(data));
  });
  socket.write(Buffer.concat([frame(uid, 100), Buffer.from('Subject: x\r\n')]));
  return { socket, answer };
}

const code = (answer: string) => (JSON.parse(answer) as { code?: string; ok: boolean }).code ?? 'ok';

describe('submission socket limits', () => {
  it('reads the [submission] limits with their defaults and refuses a per-uid cap above the total', () => {
    const base = '[[upstream]]\ntype = "maildir"\npath = "/tmp/out"\n';
    const config = parseConfig(base, 'm.toml', {});
    assert.deepEqual([config.submission.maxConnections, config.submission.maxConnectionsPerUid, config.submission.requestTimeout, config.submission.streamThreshold], [20, 5, 60_000, 1024 * 1024]);
    const set = parseConfig(`[submission]\nmax_connections = 8\nmax_connections_per_uid = 2\nrequest_timeout = "10s"\nstream_threshold = "256KB"\n${base}`, 'm.toml', {});
    assert.deepEqual([set.submission.maxConnections, set.submission.maxConnectionsPerUid, set.submission.requestTimeout, set.submission.streamThreshold], [8, 2, 10_000, 262_144]);
    assert.throws(
      () => parseConfig(`[submission]\nmax_connections = 2\nmax_connections_per_uid = 3\n${base}`, 'm.toml', {}),
      (e: unknown) => e instanceof ConfigError && e.problems[0] === 'm.toml:3: submission.max_connections_per_uid: must not be more than max_connections',
    );
  });

  it('caps connections per claimed uid and in total with ETEMPFAIL; sendmail then uses the maildrop', async () => {
    const dir = tempDir();
    const spool = join(dir.path, 'spool');
    const socketPath = `${spool}.sock`;
    const config = writeConfig(dir.path, relayConfig({ spool, extra: '' }).replace('[submission]\n', '[submission]\nmax_connections = 3\nmax_connections_per_uid = 2\n'));
    const daemon = await startDaemon(config);
    const held: Socket[] = [];
    try {
      const a = partial(socketPath, 1000);
      const b = partial(socketPath, 1000);
      held.push(a.socket, b.socket);
      const third = partial(socketPath, 1000);
      held.push(third.socket);
      assert.equal(code(await third.answer), 'ETEMPFAIL', 'a third submission claiming uid 1000 is refused');
      if (!third.socket.destroyed) await new Promise<void>((resolve) => third.socket.once('close', () => resolve()));
      await daemon.waitForLog((l) => l.event === 'refused' && l.reason === 'max_connections_per_uid' && l.claimedUid === 1000);
      const other = partial(socketPath, 1001); // another uid still fits: 3 connections open
      held.push(other.socket);
      await new Promise<void>((resolve) => other.socket.once('connect', () => resolve()));
      const fourth = partial(socketPath, 1002);
      held.push(fourth.socket);
      const refused = await fourth.answer;
      assert.equal(code(refused), 'ETEMPFAIL');
      assert.match(refused, /too many local submissions at once/);
      await daemon.waitForLog((l) => l.event === 'refused' && l.reason === 'max_connections');

      // The real sendmail command, refused by the daemon, keeps the message in the maildrop (exit 0).
      const sent = await runBin('sendmail', ['-i', 'someone@example.net'], { input: 'Subject: while busy\n\nhello\n', config });
      assert.equal(sent.code, 0, sent.stderr);
      await daemon.waitForLog((l) => l.event === 'accepted' && l.via === 'maildrop');

      for (const s of held) s.destroy();
      // Slots are given back when clients go away: a full submission for uid 1000 now succeeds.
      const body = Buffer.from('Subject: x\r\n\r\n'.padEnd(100, 'y'));
      const submitOnce = () => askSocket(socketPath, Buffer.concat([frame(1000, 100), body]));
      // The daemon sees the closes asynchronously: retry while it still counts them (bounded).
      let ok = await submitOnce();
      for (let i = 0; i < 50 && code(ok) === 'ETEMPFAIL'; i++) ok = await submitOnce();
      assert.equal(code(ok), 'ok', ok);
    } finally {
      for (const s of held) s.destroy();
      await daemon.stop();
      dir.cleanup();
    }
  });

  it('a body over stream_threshold is staged on disk and spooled intact; the staging file is removed', async () => {
    const dir = tempDir();
    const spool = join(dir.path, 'spool');
    const capture = await startCapture();
    const config = writeConfig(dir.path, relayConfig({ spool, upstreamPort: capture.port }).replace('[submission]\n', '[submission]\nstream_threshold = "1KB"\n'));
    const daemon = await startDaemon(config);
    try {
      const line = 'staged body line 0123456789 abcdefghijklmnopqrstuvwxyz\n';
      const text = `Subject: big\n\n${line.repeat(4000)}`; // ~220 KB
      const sent = await runBin('sendmail', ['-i', 'big@example.net'], { input: text, config });
      assert.equal(sent.code, 0, sent.stderr);
      const accepted = await daemon.waitForLog((l) => l.event === 'accepted' && l.via === 'socket');
      const [message] = await capture.waitFor(1);
      assert.deepEqual(message!.recipients, ['big@example.net']);
      assert.ok(message!.raw.toString('latin1').includes(line.replace('\n', '\r\n').repeat(4000)), 'every body line arrived');
      assert.ok(Number(accepted.size) > 200_000);
      assert.deepEqual(readdirSync(join(spool, 'incoming')), []);
    } finally {
      await daemon.stop();
      await capture.close();
      dir.cleanup();
    }
  });

  it('closes a connection that trickles its body past request_timeout, although each byte arrives well within it', async () => {
    const dir = tempDir();
    const spool = join(dir.path, 'spool');
    const config = writeConfig(dir.path, relayConfig({ spool }).replace('[submission]\n', '[submission]\nrequest_timeout = "1s"\n'));
    const daemon = await startDaemon(config);
    try {
      const socket = connect(`${spool}.sock`);
      let sent = 0;
      const total = 100; // one byte per 100 ms: 10 s to finish, 10 × the deadline
      const closed = new Promise<void>((resolve) => socket.on('close', () => resolve()));
      socket.on('error', () => undefined);
      socket.write(frame(1000, total));
      const timer = setInterval(() => {
        if (sent < total && !socket.destroyed) socket.write('x', () => sent++);
      }, 100);
      await closed;
      clearInterval(timer);
      assert.ok(sent < total, `the daemon closed the connection after ${sent} of ${total} bytes`);
      const line = await daemon.waitForLog((l) => l.event === 'timeout');
      assert.equal(line.stage, 'body');
    } finally {
      await daemon.stop();
      dir.cleanup();
    }
  });
});
