/** End to end: real SMTP clients → the real daemon process → a real capture SMTP server. */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import nodemailer from 'nodemailer';
import { startCapture, type Capture } from './helpers/capture.js';
import { relayConfig } from './helpers/config.js';
import { startDaemon, writeConfig, type RunningDaemon } from './helpers/daemon.js';
import { greetingFrom, RawSmtp } from './helpers/smtp-client.js';
import { tempDir } from './helpers/tmp.js';

const MESSAGE = (subject: string, extra = '') =>
  `From: Alice <alice@example.org>\r\nTo: bob@example.net\r\nDate: Fri, 27 Nov 2026 10:00:00 +0000\r\nSubject: ${subject}\r\nMessage-ID: <${subject.replace(/\W/g, '')}@example.org>\r\n${extra}\r\nHello Bob.\r\n.. a dot-stuffed line\r\n`;

describe('relay end to end', () => {
  let capture: Capture;
  let daemon: RunningDaemon;
  let dir: ReturnType<typeof tempDir>;

  before(async () => {
    dir = tempDir();
    capture = await startCapture();
    daemon = await startDaemon(writeConfig(dir.path, relayConfig({ spool: `${dir.path}/spool`, upstreamPort: capture.port })));
  });

  after(async () => {
    const code = await daemon.stop();
    await capture.close();
    dir.cleanup();
    assert.equal(code, 0, 'SIGTERM exits 0');
  });

  it('advertises the required ESMTP extensions', async () => {
    const client = await RawSmtp.open(daemon.port);
    assert.match(await client.reply(), /^220 relay\.test ESMTP/);
    const ehlo = await client.command('EHLO client.test');
    for (const ext of ['PIPELINING', '8BITMIME', 'SMTPUTF8', 'SIZE 1048576', 'ENHANCEDSTATUSCODES']) assert.ok(ehlo.includes(ext), `${ext} in ${ehlo}`);
    client.close();
  });

  it('queues with the queue id in the reply and relays the raw bytes with the original envelope', async () => {
    const client = await RawSmtp.open(daemon.port);
    await client.reply();
    await client.command('EHLO client.test');
    assert.match(await client.command('MAIL FROM:<alice@example.org>'), /^250/);
    assert.match(await client.command('RCPT TO:<bob@example.net>'), /^250/);
    assert.match(await client.command('RCPT TO:<carol@example.com>'), /^250/);
    assert.match(await client.command('DATA'), /^354/);
    const body = MESSAGE('raw one');
    const reply = await client.command(body.replace(/^\.\./m, '...') + '.');
    const id = /^250 2\.0\.0 Ok: queued as ([0-9A-Z]{16})$/.exec(reply)?.[1];
    assert.ok(id, `reply names the queue id: ${reply}`);
    client.close();

    const [got] = (await capture.waitFor(1)).filter((m) => m.raw.includes('raw one'));
    assert.ok(got);
    assert.equal(got.sender, 'alice@example.org');
    assert.deepEqual(got.recipients.sort(), ['bob@example.net', 'carol@example.com']);
    const text = got.raw.toString();
    assert.match(text, new RegExp(`^Received: from client\\.test \\(\\[127\\.0\\.0\\.1\\]\\)\\r\\n\\tby relay\\.test \\(mailshim\\) with ESMTP id ${id}`));
    // Everything after our Received header is byte-for-byte what the client sent (after dot-unstuffing).
    assert.ok(text.endsWith(body), 'body unchanged');
    const line = await daemon.waitForLog((l) => l.event === 'delivery' && l.queueId === id);
    assert.equal(line.result, 'delivered');
    assert.equal(line.messageId, '<rawone@example.org>');
    assert.equal(line.upstream, 'capture');
    const accepted = await daemon.waitForLog((l) => l.event === 'accepted' && l.queueId === id);
    assert.deepEqual(accepted.recipients, ['bob@example.net', 'carol@example.com']);
  });

  it('relays a nodemailer-submitted message', async () => {
    const transport = nodemailer.createTransport({ host: '127.0.0.1', port: daemon.port, secure: false, ignoreTLS: true });
    const info = await transport.sendMail({ from: 'n@example.org', to: 'm@example.net', subject: 'via nodemailer', text: 'héllo wörld' });
    assert.match(info.response, /^250 2\.0\.0 Ok: queued as /);
    const before = capture.messages.length;
    await capture.waitFor(before + 1).catch(() => undefined);
    assert.ok(capture.messages.some((m) => m.raw.includes('via nodemailer') && m.recipients[0] === 'm@example.net'));
  });

  it('refuses more recipients than max_recipients with 452 4.5.3', async () => {
    const client = await RawSmtp.open(daemon.port);
    await client.reply();
    await client.command('EHLO c');
    await client.command('MAIL FROM:<a@example.org>');
    for (let i = 0; i < 5; i++) assert.match(await client.command(`RCPT TO:<r${i}@example.net>`), /^250/);
    assert.match(await client.command('RCPT TO:<r5@example.net>'), /^452 4\.5\.3 /);
    client.close();
  });

  it('refuses a message over max_message_size with 552 5.3.4 and stores nothing', async () => {
    const client = await RawSmtp.open(daemon.port);
    await client.reply();
    await client.command('EHLO c');
    await client.command('MAIL FROM:<big@example.org>');
    await client.command('RCPT TO:<x@example.net>');
    await client.command('DATA');
    const line = 'x'.repeat(998) + '\r\n';
    client.write('Subject: big\r\n\r\n' + line.repeat(1100));
    assert.match(await client.command('.'), /^552 5\.3\.4 /);
    client.close();
    assert.ok(!daemon.logs.some((l) => l.event === 'accepted' && l.from === 'big@example.org'));
  });

  it('normalises bare LF in DATA (SMTP smuggling): the smuggled "message" is body text of one relayed message', async () => {
    const client = await RawSmtp.open(daemon.port);
    await client.reply();
    await client.command('EHLO c');
    await client.command('MAIL FROM:<smuggler@example.org>');
    await client.command('RCPT TO:<victim@example.net>');
    await client.command('DATA');
    client.write('Subject: outer\r\n\r\nhi\n.\nMAIL FROM:<admin@example.org>\r\nRCPT TO:<victim@example.net>\r\nDATA\r\nSubject: smuggled\r\n\r\nevil\r\n');
    assert.match(await client.command('.'), /^250 /);
    assert.match(await client.command('NOOP'), /^250/);
    client.close();
    await daemon.waitForLog((l) => l.event === 'delivery' && l.from === 'smuggler@example.org');
    assert.equal(capture.messages.filter((m) => m.sender === 'smuggler@example.org').length, 1);
    assert.ok(!capture.messages.some((m) => m.sender === 'admin@example.org'));
  });

  it('rejects a recipient that is not a full address', async () => {
    const client = await RawSmtp.open(daemon.port);
    await client.reply();
    await client.command('EHLO c');
    await client.command('MAIL FROM:<a@example.org>');
    assert.match(await client.command('RCPT TO:<justaname>'), /^5\d\d 5\.1\.3 /);
    client.close();
  });
});

describe('allow-list', () => {
  it('answers 554 5.7.1 at connect to a client outside allow', async () => {
    const dir = tempDir();
    const daemon = await startDaemon(writeConfig(dir.path, relayConfig({ spool: `${dir.path}/spool`, allow: ['127.0.0.1/32'] })));
    try {
      assert.match(await greetingFrom(daemon.port, '127.0.0.2'), /^554 5\.7\.1 /);
      assert.match(await greetingFrom(daemon.port, '127.0.0.1'), /^220 /);
    } finally {
      await daemon.stop();
      dir.cleanup();
    }
  });
});
