/** Local names arriving over SMTP (root@<hostname>) get the same aliases and masquerading as sendmail's. */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { startCapture } from './helpers/capture.js';
import { relayConfig } from './helpers/config.js';
import { startDaemon, writeConfig } from './helpers/daemon.js';
import { RawSmtp } from './helpers/smtp-client.js';
import { tempDir } from './helpers/tmp.js';

describe('SMTP intake with local names', () => {
  it('expands root@<hostname> through the aliases and masquerades a local sender, keeping the display name', async () => {
    const dir = tempDir();
    const capture = await startCapture();
    writeFileSync(join(dir.path, 'aliases'), 'root: ops@example.com, oncall\noncall: pager@example.com\n');
    const local = `aliases = ${JSON.stringify(join(dir.path, 'aliases'))}\nadmin = "admin@example.com"\nfrom = "alerts@example.com"`;
    const daemon = await startDaemon(writeConfig(dir.path, relayConfig({ spool: `${dir.path}/spool`, upstreamPort: capture.port, local })));
    try {
      const c = await RawSmtp.open(daemon.port);
      await c.reply();
      await c.command('EHLO web1');
      assert.match(await c.command('MAIL FROM:<www-data@relay.test>'), /^250/);
      assert.match(await c.command('RCPT TO:<root@relay.test>'), /^250/);
      assert.match(await c.command('RCPT TO:<someone@example.net>'), /^250/);
      await c.command('DATA');
      assert.match(await c.command('From: "Web App" <www-data@relay.test>\r\nTo: root@relay.test\r\nSubject: disk\r\n\r\nfull\r\n.'), /^250 /);
      c.close();
      const [got] = await capture.waitFor(1);
      assert.equal(got!.sender, 'alerts@example.com');
      assert.deepEqual([...got!.recipients].sort(), ['ops@example.com', 'pager@example.com', 'someone@example.net']);
      assert.match(got!.raw.toString(), /^From: "Web App" <alerts@example\.com>\r$/m);
    } finally {
      await daemon.stop();
      await capture.close();
      dir.cleanup();
    }
  });
});
