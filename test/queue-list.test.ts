/** `mailshim queue list` (the mailq view) against a running daemon. */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { describe, it } from 'node:test';
import { promisify } from 'node:util';
import { startCapture } from './helpers/capture.js';
import { relayConfig } from './helpers/config.js';
import { MAILSHIM, startDaemon, writeConfig } from './helpers/daemon.js';
import { RawSmtp } from './helpers/smtp-client.js';
import { tempDir } from './helpers/tmp.js';

const run = promisify(execFile);

describe('queue list', () => {
  it('lists a deferred message with its sender, recipient and last error, as text and JSON', async () => {
    const dir = tempDir();
    const capture = await startCapture();
    capture.script.rcpt = new Map([['later@example.net', [451, '4.2.0 greylisted, come back later']]]);
    const config = writeConfig(dir.path, relayConfig({ spool: `${dir.path}/spool`, upstreamPort: capture.port, retry: { initial: '1h', max: '2h' } }));
    const daemon = await startDaemon(config);
    try {
      const c = await RawSmtp.open(daemon.port);
      await c.reply();
      await c.command('EHLO c');
      await c.command('MAIL FROM:<cron@example.org>');
      await c.command('RCPT TO:<later@example.net>');
      await c.command('DATA');
      const id = /queued as (\w+)/.exec(await c.command('Subject: q\r\n\r\nq\r\n.'))![1]!;
      c.close();
      await daemon.waitForLog((l) => l.event === 'delivery' && l.queueId === id);
      const text = (await run(process.execPath, [MAILSHIM, 'queue', 'list', '--config', config])).stdout;
      assert.match(text, new RegExp(`^${id}\\s+\\d+ .*cron@example\\.org$`, 'm'));
      assert.match(text, /\(451 4\.2\.0 greylisted, come back later\)\n\s+later@example\.net/);
      assert.match(text, /-- \d+ Kbytes in 1 Request\./);
      const json = JSON.parse((await run(process.execPath, [MAILSHIM, 'queue', 'list', '--json', '--config', config])).stdout) as { queue: Array<{ id: string }> };
      assert.deepEqual(
        json.queue.map((e) => e.id),
        [id],
      );
    } finally {
      await daemon.stop();
      await capture.close();
      dir.cleanup();
    }
  });
});
