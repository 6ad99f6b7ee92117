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
    // relay.test has two labels, so it is local only when named (the default leaves bare domains alone).
    const local = `aliases = ${JSON.stringify(join(dir.path, 'aliases'))}\nadmin = "admin@example.com"\nfrom = "alerts@example.com"\nlocal_domains = ["relay.test"]`;
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

  it('a host named after its bare domain does not swallow that domain; local names to admin are logged with the original address; headers are completed and dropped', async () => {
    const dir = tempDir();
    const capture = await startCapture();
    writeFileSync(join(dir.path, 'aliases'), 'postmaster: root\n');
    const local = `aliases = ${JSON.stringify(join(dir.path, 'aliases'))}\nadmin = "admin@example.com"`;
    const daemon = await startDaemon(writeConfig(dir.path, relayConfig({ spool: `${dir.path}/spool`, upstreamPort: capture.port, local })));
    try {
      const c = await RawSmtp.open(daemon.port);
      await c.reply();
      await c.command('EHLO web1');
      assert.match(await c.command('MAIL FROM:<root@localhost>'), /^250/);
      assert.match(await c.command('RCPT TO:<orders@relay.test>'), /^250/);
      assert.match(await c.command('RCPT TO:<Nobody@localhost>'), /^250/);
      await c.command('DATA');
      // curl-style: no Date, Message-ID or From; cron-style To: root; headers that must never be relayed.
      const message = 'To: root, "Ops" <ops@example.net>\r\nBcc: secret@example.org\r\nResent-Bcc: secret2@example.org\r\nReturn-Path: <forged@example.org>\r\nSubject: completion\r\n\r\nbody\r\n';
      const reply = await c.command(message + '.');
      const id = /queued as (\w+)/.exec(reply)?.[1];
      assert.ok(id, reply);
      c.close();
      const [got] = await capture.waitFor(1);
      assert.deepEqual([...got!.recipients].sort(), ['admin@example.com', 'orders@relay.test']);
      const header = got!.raw.toString().split('\r\n\r\n')[0]!;
      assert.match(header, /\r\nDate: \w{3}, \d{2} \w{3} \d{4} /);
      assert.match(header, new RegExp(`\\r\\nMessage-ID: <${id}@relay\\.test>`));
      assert.match(header, /\r\nFrom: <root@localhost>/, 'From added for a local sender');
      assert.match(header, /\r\nTo: root@relay\.test,\r\n "Ops" <ops@example\.net>/);
      assert.doesNotMatch(header, /^(Bcc|Resent-Bcc|Return-Path):/im);
      assert.doesNotMatch(got!.raw.toString(), /secret|forged/);
      const logged = await daemon.waitForLog((l) => l.event === 'local-rewrite');
      assert.equal(logged.original, 'Nobody@localhost');
      assert.equal(logged.to, 'admin@example.com');
      assert.equal(logged.queueId, id);
    } finally {
      await daemon.stop();
      await capture.close();
      dir.cleanup();
    }
  });

  /** A relay daemon with a capture upstream: each of `messages` is sent as one DATA from a remote sender; returns what the upstream received. */
  async function relayRemote(...messages: string[]) {
    const dir = tempDir();
    const capture = await startCapture();
    const daemon = await startDaemon(writeConfig(dir.path, relayConfig({ spool: `${dir.path}/spool`, upstreamPort: capture.port })));
    try {
      const c = await RawSmtp.open(daemon.port);
      await c.reply();
      await c.command('EHLO scanner');
      for (const data of messages) {
        await c.command('MAIL FROM:<scanner@example.org>');
        await c.command('RCPT TO:<office@example.net>');
        await c.command('DATA');
        assert.match(await c.command(data), /^250 /);
      }
      c.close();
      return await capture.waitFor(messages.length);
    } finally {
      await daemon.stop();
      await capture.close();
      dir.cleanup();
    }
  }

  it('a remote sender gets Date and Message-ID but no invented From', async () => {
    const [got] = await relayRemote('Subject: scan\r\n\r\nbody\r\n.');
    const header = got!.raw.toString().split('\r\n\r\n')[0]!;
    assert.match(header, /\r\nDate: /);
    assert.match(header, /\r\nMessage-ID: </);
    assert.doesNotMatch(header, /^From:/im);
  });

  it('header edits touch the header block only: header-like lines in the body and a header-only message stay as sent', async () => {
    const body = 'Bcc: hidden@example.net\r\nFrom: root\r\nReturn-Path: <x@y>\r\n\r\nmore\r\n';
    const got = await relayRemote(`Subject: one\r\nBcc: b@example.net\r\n\r\n${body}.`, 'Subject: only headers\r\n.');
    const [first, second] = [got.find((m) => m.raw.includes('Subject: one'))!, got.find((m) => m.raw.includes('Subject: only'))!];
    const [header1, ...rest] = first.raw.toString().split('\r\n\r\n');
    assert.equal(rest.join('\r\n\r\n'), body, 'the body is byte for byte what was sent');
    assert.doesNotMatch(header1!, /^Bcc:/im, 'Bcc dropped from the header block');
    assert.match(header1!, /^Received: [\s\S]*\r\nSubject: one\r\nDate: [^\r]*\r\nMessage-ID: </);
    assert.match(second.raw.toString(), /^Received: [\s\S]*\r\nSubject: only headers\r\nDate: [^\r]*\r\nMessage-ID: <[^\r]*>\r\n$/);
  });
});
