/** A full spool (max_size reached) answers 452 4.3.1, stores nothing half, and recovers as mail drains. */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { startCapture } from './helpers/capture.js';
import { relayConfig } from './helpers/config.js';
import { startDaemon, writeConfig } from './helpers/daemon.js';
import { RawSmtp } from './helpers/smtp-client.js';
import { tempDir } from './helpers/tmp.js';

async function send(port: number, n: number): Promise<string> {
  const c = await RawSmtp.open(port);
  await c.reply();
  await c.command('EHLO c');
  await c.command(`MAIL FROM:<fill${n}@example.org>`);
  await c.command('RCPT TO:<b@example.net>');
  await c.command('DATA');
  const reply = await c.command(`Subject: fill ${n}\r\n\r\n${('x'.repeat(998) + '\r\n').repeat(200)}.`);
  c.close();
  return reply;
}

describe('spool full', () => {
  it('answers 452 4.3.1 at max_size, loses nothing accepted, and accepts again once mail is delivered', async () => {
    const dir = tempDir();
    const capture = await startCapture();
    const port = capture.port;
    await capture.close(); // upstream down: the spool fills
    const config = relayConfig({ spool: `${dir.path}/spool`, upstreamPort: port, retry: { initial: '300ms', max: '500ms' } }).replace('max_recipients = 5', 'max_recipients = 5\nmax_size = "1MB"');
    const daemon = await startDaemon(writeConfig(dir.path, config));
    try {
      const accepted: number[] = [];
      let full = '';
      for (let n = 0; n < 12 && !full; n++) {
        const reply = await send(daemon.port, n);
        if (reply.startsWith('250')) accepted.push(n);
        else full = reply;
      }
      assert.match(full, /^452 4\.3\.1 /, 'the spool reported full');
      assert.ok(accepted.length >= 2, `${accepted.length} accepted before full`);
      const up = await startCapture({ port });
      try {
        const got = await up.waitFor(accepted.length, 20_000);
        const subjects = new Set(got.map((m) => Number(/Subject: fill (\d+)/.exec(m.raw.toString())?.[1])));
        for (const n of accepted) assert.ok(subjects.has(n), `accepted message ${n} delivered`);
        assert.match(await send(daemon.port, 99), /^250 /, 'accepting again after the queue drained');
      } finally {
        await up.close();
      }
    } finally {
      await daemon.stop();
      dir.cleanup();
    }
  });

  it('a reload applies a new max_size to the next message, as Postfix applies queue limits on reload', async () => {
    const dir = tempDir();
    const capture = await startCapture();
    const port = capture.port;
    await capture.close(); // upstream down: what is accepted stays queued
    const base = relayConfig({ spool: `${dir.path}/spool`, upstreamPort: port, retry: { initial: '1h', max: '1h' } });
    const file = writeConfig(dir.path, base);
    const daemon = await startDaemon(file);
    try {
      for (let n = 0; n < 6; n++) assert.match(await send(daemon.port, n), /^250 /, 'room under the default max_size');
      // 6 × 200 KB queued; max_size may not be below max_message_size (1MB), so lower it to that.
      writeFileSync(file, base.replace('max_recipients = 5', 'max_recipients = 5\nmax_size = "1MB"'));
      daemon.child.kill('SIGHUP');
      await daemon.waitForLog((l) => l.event === 'reloaded');
      assert.match(await send(daemon.port, 6), /^452 4\.3\.1 /, 'the lowered max_size refuses the next message');
    } finally {
      await daemon.stop();
      dir.cleanup();
    }
  });
});
