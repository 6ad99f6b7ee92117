/**
 * spool.max_recipients (default 100) is smtp-server's own maxRecipients: driven with a real client
 * (Python's smtplib), the RCPT after the last gets Postfix's exact reply for smtpd_recipient_limit,
 * "452 4.5.3 Error: too many recipients" (postfix/src/smtpd/smtpd.c, rcpt_cmd), the message goes
 * out to the recipients accepted before it, and a reload changes the cap for the next RCPT.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { startCapture, type Capture } from './helpers/capture.js';
import { relayConfig } from './helpers/config.js';
import { startDaemon, writeConfig, type RunningDaemon } from './helpers/daemon.js';
import { RawSmtp } from './helpers/smtp-client.js';
import { tempDir } from './helpers/tmp.js';

const has = (tool: string) => spawnSync('sh', ['-c', `command -v ${tool}`]).status === 0;

// smtplib.sendmail sends every RCPT, goes on with DATA when at least one was accepted, and
// returns the refused ones as {address: [code, text]}.
const SMTPLIB = `
import json, smtplib, sys
port, sender, count = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
s = smtplib.SMTP('127.0.0.1', port)
refused = s.sendmail(sender, ['r%d@example.net' % i for i in range(count)], b'Subject: many\\r\\n\\r\\nhello\\r\\n')
s.quit()
print(json.dumps({k: [v[0], v[1].decode()] for k, v in refused.items()}))
`;

describe('recipient cap (spool.max_recipients, smtp-server maxRecipients)', () => {
  let capture: Capture;
  let daemon: RunningDaemon;
  let dir: ReturnType<typeof tempDir>;
  let configFile: string;
  const config = (max: number) => relayConfig({ spool: `${dir.path}/spool`, upstreamPort: capture.port }).replace('max_recipients = 5', `max_recipients = ${max}`);

  before(async () => {
    dir = tempDir();
    capture = await startCapture();
    configFile = writeConfig(dir.path, config(100));
    daemon = await startDaemon(configFile);
  });

  after(async () => {
    await daemon.stop();
    await capture.close();
    dir.cleanup();
  });

  it('smtplib with 101 recipients: the 101st gets 452 4.5.3 Error: too many recipients, the 100 are accepted and relayed', async (t) => {
    if (!has('python3')) return t.skip('python3 not installed');
    const result = spawnSync('python3', ['-c', SMTPLIB, String(daemon.port), 'cap101@example.org', '101'], { encoding: 'utf8' });
    assert.equal(result.status, 0, result.stderr);
    assert.deepEqual(JSON.parse(result.stdout), { 'r100@example.net': [452, '4.5.3 Error: too many recipients'] });
    await daemon.waitForLog((l) => l.event === 'delivery' && l.from === 'cap101@example.org');
    const got = capture.messages.filter((m) => m.sender === 'cap101@example.org');
    assert.equal(got.length, 1);
    assert.deepEqual(new Set(got[0]!.recipients), new Set(Array.from({ length: 100 }, (_, i) => `r${i}@example.net`)));
  });

  it('a repeated recipient does not count against the cap (it replaces the earlier entry)', async () => {
    const c = await RawSmtp.open(daemon.port);
    await c.reply();
    await c.command('EHLO repeat.test');
    await c.command('MAIL FROM:<repeat@example.org>');
    let batch = '';
    for (let i = 0; i < 100; i++) batch += `RCPT TO:<r${i}@example.net>\r\n`;
    c.write(batch);
    for (let i = 0; i < 100; i++) assert.match(await c.reply(), /^250 /);
    assert.match(await c.command('RCPT TO:<R0@example.net>'), /^250 /);
    assert.match(await c.command('RCPT TO:<r100@example.net>'), /^452 4\.5\.3 Error: too many recipients\r?$/);
    assert.match(await c.command('RSET'), /^250 /);
    c.close();
  });

  it('a reload changes the cap for the next RCPT', async () => {
    writeFileSync(configFile, config(3));
    daemon.child.kill('SIGHUP');
    await daemon.waitForLog((l) => l.event === 'reloaded');
    const c = await RawSmtp.open(daemon.port);
    await c.reply();
    await c.command('EHLO reload.test');
    await c.command('MAIL FROM:<reload@example.org>');
    for (let i = 0; i < 3; i++) assert.match(await c.command(`RCPT TO:<r${i}@example.net>`), /^250 /);
    assert.match(await c.command('RCPT TO:<r3@example.net>'), /^452 4\.5\.3 /);
    c.close();
  });
});
