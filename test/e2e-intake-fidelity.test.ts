/**
 * SMTP intake behaves like Postfix's smtpd for the clients it serves (issue 11 "Intake"): the
 * RCPT check is the storage check, bare LF is normalised (or refused where configured), mail
 * loops are refused. Driven with real clients where they exist (swaks, Python's smtplib) and raw
 * sockets for the rest.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import { startCapture, type Capture } from './helpers/capture.js';
import { relayConfig } from './helpers/config.js';
import { startDaemon, writeConfig, type RunningDaemon } from './helpers/daemon.js';
import { RawSmtp } from './helpers/smtp-client.js';
import { tempDir } from './helpers/tmp.js';

const has = (tool: string) => spawnSync('sh', ['-c', `command -v ${tool}`]).status === 0;

describe('SMTP intake fidelity (default listener: bare_newline = "normalize")', () => {
  let capture: Capture;
  let daemon: RunningDaemon;
  let dir: ReturnType<typeof tempDir>;

  before(async () => {
    dir = tempDir();
    capture = await startCapture();
    daemon = await startDaemon(writeConfig(dir.path, relayConfig({ spool: `${dir.path}/spool`, upstreamPort: capture.port })));
  });

  after(async () => {
    await daemon.stop();
    await capture.close();
    dir.cleanup();
  });

  const arrived = async (sender: string) => {
    await daemon.waitForLog((l) => l.event === 'delivery' && l.from === sender);
    return capture.messages.filter((m) => m.sender === sender);
  };

  it('RCPT refuses at once what would not be stored; quoted local parts are stored and relayed correctly', async () => {
    const c = await RawSmtp.open(daemon.port);
    await c.reply();
    await c.command('EHLO client.test');
    assert.match(await c.command('MAIL FROM:<rcpt-check@example.org>'), /^250/);
    assert.match(await c.command('RCPT TO:<bad\\@example.net>'), /^501 5\.1\.3 /);
    assert.match(await c.command('RCPT TO:<a@b@example.net>'), /^5\d\d 5\.1\.3 /);
    assert.match(await c.command('RCPT TO:<"john.doe"@example.net>'), /^250/);
    assert.match(await c.command('RCPT TO:<"a,b"@example.net>'), /^250/);
    assert.match(await c.command('RCPT TO:<valid@example.net>'), /^250/);
    assert.match(await c.command('DATA'), /^354/);
    assert.match(await c.command('Subject: quoted\r\n\r\nbody\r\n.'), /^250 2\.0\.0 /, 'the message is not refused after DATA for any recipient accepted at RCPT');
    c.close();
    const [got] = await arrived('rcpt-check@example.org');
    assert.deepEqual([...got!.recipients].sort(), ['"a,b"@example.net', 'john.doe@example.net', 'valid@example.net']);
  });

  it('swaks: a malformed recipient gets 5xx at RCPT, a quoted local part is accepted and relayed', async (t) => {
    if (!has('swaks')) return t.skip('swaks not installed');
    const run = (to: string, from: string) =>
      spawnSync('swaks', ['--server', '127.0.0.1', '--port', String(daemon.port), '--from', from, '--to', to, '--header', 'Subject: swaks', '--body', 'swaks body', '--timeout', '20'], {
        encoding: 'utf8',
      });
    const bad = run('bad\\@example.net', 'swaks-bad@example.org');
    assert.notEqual(bad.status, 0);
    assert.match(bad.stdout, /<\*\* 501 5\.1\.3 /);
    const good = run('"jane(doe)"@example.net', 'swaks-good@example.org');
    assert.equal(good.status, 0, good.stdout + good.stderr);
    const [got] = await arrived('swaks-good@example.org');
    assert.deepEqual(got!.recipients, ['"jane(doe)"@example.net']);
  });

  it('Python smtplib.sendmail with bytes (bare LF, its own dot-stuffing): accepted, CRLF, every line as written', async (t) => {
    if (!has('python3')) return t.skip('python3 not installed');
    const script = `
import smtplib, sys
s = smtplib.SMTP('127.0.0.1', int(sys.argv[1]))
s.sendmail('smtplib@example.org', ['py@example.net'], b'Subject: smtplib\\n\\nline one\\n.hidden dot line\\n.\\nlast\\n')
s.quit()
`;
    const result = spawnSync('python3', ['-c', script, String(daemon.port)], { encoding: 'utf8' });
    assert.equal(result.status, 0, result.stderr);
    const [got] = await arrived('smtplib@example.org');
    const body = got!.raw.toString('latin1').split('\r\n\r\n').slice(1).join('\r\n\r\n');
    // smtplib itself appends CRLF to data that does not end in CRLF, hence the empty last line.
    assert.equal(body, 'line one\r\n.hidden dot line\r\n.\r\nlast\r\n\r\n');
  });

  it('hop_count_limit: more than 50 Received: headers (ours included) is a mail loop, refused with 554 5.4.6', async () => {
    const send = async (hops: number) => {
      const c = await RawSmtp.open(daemon.port);
      await c.reply();
      await c.command('EHLO loop.test');
      await c.command(`MAIL FROM:<loop${hops}@example.org>`);
      await c.command('RCPT TO:<loop@example.net>');
      await c.command('DATA');
      const reply = await c.command(`${'Received: from a by b; Fri, 27 Nov 2026 10:00:00 +0000\r\n'.repeat(hops)}Subject: loop\r\n\r\nbody\r\n.`);
      c.close();
      return reply;
    };
    assert.match(await send(49), /^250 /);
    assert.match(await send(50), /^554 5\.4\.6 /);
    await arrived('loop49@example.org');
    assert.ok(!capture.messages.some((m) => m.sender === 'loop50@example.org'));
  });
});

describe('SMTP intake with bare_newline = "reject"', () => {
  it('refuses bare LF with 550 5.5.2 (Postfix smtpd_forbid_bare_newline = reject) and stays in sync; CRLF mail passes', async () => {
    const dir = tempDir();
    const capture = await startCapture();
    const daemon = await startDaemon(writeConfig(dir.path, relayConfig({ spool: `${dir.path}/spool`, upstreamPort: capture.port, listenExtra: 'bare_newline = "reject"' })));
    try {
      const c = await RawSmtp.open(daemon.port);
      await c.reply();
      await c.command('EHLO c');
      for (const ending of ['\n.\n', '\r\n.\n', '\n.\r\n']) {
        await c.command('MAIL FROM:<strict@example.org>');
        await c.command('RCPT TO:<victim@example.net>');
        await c.command('DATA');
        c.write(`Subject: outer\r\n\r\nhello${ending}MAIL FROM:<admin@example.org>\r\n`);
        assert.match(await c.command('.'), /^550 5\.5\.2 /);
        assert.match(await c.command('RSET'), /^250/);
      }
      await c.command('MAIL FROM:<strict-ok@example.org>');
      await c.command('RCPT TO:<ok@example.net>');
      await c.command('DATA');
      assert.match(await c.command('Subject: fine\r\n\r\nbare\rCR is content\r\n.'), /^250 /);
      c.close();
      await daemon.waitForLog((l) => l.event === 'delivery' && l.from === 'strict-ok@example.org');
      assert.ok(!capture.messages.some((m) => m.sender === 'strict@example.org'));
    } finally {
      await daemon.stop();
      await capture.close();
      dir.cleanup();
    }
  });
});
