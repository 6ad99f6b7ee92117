/**
 * The sendmail-compatible binary end to end: real bin/sendmail subprocesses → the real daemon
 * (unix socket or maildrop) → a real capture SMTP server. Asserts what the upstream receives.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startCapture, type Capture, type Captured } from './helpers/capture.js';
import { relayConfig } from './helpers/config.js';
import { startDaemon, writeConfig, type RunningDaemon } from './helpers/daemon.js';
import { binPath, bsSession, runBin } from './helpers/sendmail.js';
import { tempDir } from './helpers/tmp.js';

const ALIASES = `# test aliases
root: ops@example.com
postmaster: root
www-data: root
webteam: dev1@example.net,
   dev2@example.net
backup: "|/usr/local/bin/backup", keeper@example.net
`;

const LOCAL = (dir: string) => `aliases = ${JSON.stringify(join(dir, 'aliases'))}
admin = "admin@example.com"
from = "alerts@example.com"`;

/** Splits a captured message after our Received header into header and body text. */
function parts(m: Captured): { header: string; body: string } {
  const text = m.raw.toString('utf8');
  const end = text.indexOf('\r\n\r\n');
  return { header: text.slice(0, end + 2), body: text.slice(end + 4) };
}

describe('sendmail with the daemon running', () => {
  let capture: Capture;
  let daemon: RunningDaemon;
  let dir: ReturnType<typeof tempDir>;
  let config: string;
  const find = async (marker: string) => {
    const deadline = Date.now() + 15_000;
    for (;;) {
      const found = capture.messages.filter((m) => m.raw.includes(marker));
      if (found.length > 0) return found;
      if (Date.now() > deadline) throw new Error(`no message with ${marker} arrived`);
      await capture.waitFor(capture.messages.length + 1, 1000).catch(() => undefined);
    }
  };

  before(async () => {
    dir = tempDir();
    writeFileSync(join(dir.path, 'aliases'), ALIASES);
    capture = await startCapture();
    config = writeConfig(dir.path, relayConfig({ spool: `${dir.path}/spool`, upstreamPort: capture.port, local: LOCAL(dir.path) }));
    daemon = await startDaemon(config);
  });

  after(async () => {
    await daemon.stop();
    await capture.close();
    dir.cleanup();
  });

  it('cron: sendmail -FCronDaemon -i -B8BITMIME -oem root', async () => {
    const input =
      'From: root (Cron Daemon)\nTo: root\nSubject: Cron <root@web1> /usr/local/bin/nightly\nContent-Type: text/plain; charset=UTF-8\nX-Cron-Env: <SHELL=/bin/sh>\n\nnightly: 3 files rotated\n.\nstill the body (-i)\n';
    const result = await runBin('sendmail', ['-FCronDaemon', '-i', '-B8BITMIME', '-oem', 'root'], { input, config });
    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.stderr, '');
    const [got] = await find('nightly: 3 files rotated');
    assert.ok(got);
    const accepted = await daemon.waitForLog((l) => l.event === 'accepted' && l.via === 'socket' && String(l.messageId).includes('@relay.test'));
    assert.deepEqual(accepted.recipients, ['ops@example.com'], 'handed to the running daemon over its socket');
    assert.equal(got.sender, 'alerts@example.com', 'envelope sender masqueraded');
    assert.deepEqual(got.recipients, ['ops@example.com'], 'root expanded through the aliases');
    const { header, body } = parts(got);
    assert.match(header, /^Received: by relay\.test \(mailshim\) \(uid \d+\) with local id [0-9A-Z]{16}\r\n/);
    assert.match(header, /\r\nFrom: "Cron Daemon" <alerts@example\.com>\r\n/, 'display name kept');
    assert.doesNotMatch(header, /Reply-To/);
    // An unqualified header address is qualified with the host name, like Postfix's append_at_myorigin.
    assert.match(header, /\r\nTo: root@relay\.test\r\nSubject: Cron <root@web1> \/usr\/local\/bin\/nightly\r\n/);
    assert.match(header, /\r\nDate: .+\r\nMessage-ID: <[0-9A-Z]{16}@relay\.test>\r\n$/);
    assert.equal(body, 'nightly: 3 files rotated\r\n.\r\nstill the body (-i)\r\n');
  });

  it('PHP mail(): sendmail -t -i takes To/Cc/Bcc, removes Bcc, keeps a real-domain From', async () => {
    const input =
      'To: customer@example.net\nCc: "Sales, EU" <sales@example.org>\nBcc: audit@example.org\nFrom: Shop <noreply@shop.example.org>\nSubject: Your order\nMIME-Version: 1.0\nContent-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit\n\nThanks for your order — ünïcode body.\n';
    const result = await runBin('sendmail', ['-t', '-i'], { input, config, env: {} });
    assert.equal(result.code, 0, result.stderr);
    const [got] = await find('Thanks for your order');
    assert.ok(got);
    assert.deepEqual([...got.recipients].sort(), ['audit@example.org', 'customer@example.net', 'sales@example.org']);
    const { header, body } = parts(got);
    assert.doesNotMatch(header, /Bcc|audit@/i, 'Bcc removed from the message');
    assert.match(header, /\r\nFrom: Shop <noreply@shop\.example\.org>\r\n/, 'real domain From untouched');
    assert.equal(got.sender, 'alerts@example.com', 'the invoking local user is masqueraded in the envelope');
    // Correctly declared 8-bit goes as PHP wrote it to an upstream that offers 8BITMIME (smtp-server does).
    assert.match(header, /\r\nContent-Type: text\/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n/);
    assert.equal(body, 'Thanks for your order \u2014 \u00fcn\u00efcode body.\r\n');
    assert.equal(got.mailArgs.BODY, '8BITMIME');
  });

  it('git send-email: sendmail -i -f sender addr addr keeps the envelope and the message', async () => {
    const input =
      'From: Dev <dev@example.org>\nTo: list@example.net\nCc: maintainer@example.com\nSubject: [PATCH] fix\nMessage-ID: <patch-1@example.org>\nDate: Mon, 23 Nov 2026 01:02:03 +0000\n\n---\n.\n..\ndiff --git a/x b/x\n';
    const result = await runBin('sendmail', ['-i', '-f', 'dev@example.org', 'list@example.net', 'maintainer@example.com'], { input, config });
    assert.equal(result.code, 0, result.stderr);
    const [got] = await find('patch-1@example.org');
    assert.ok(got);
    assert.equal(got.sender, 'dev@example.org');
    assert.deepEqual(got.recipients, ['list@example.net', 'maintainer@example.com']);
    const text = got.raw.toString();
    assert.ok(text.endsWith('\r\n' + input.replace(/\n/g, '\r\n')), 'message bytes unchanged apart from CRLF');
  });

  it('without -i a lone "." ends the message', async () => {
    const result = await runBin('sendmail', ['webteam'], { input: 'Subject: dot-end\n\nbefore\n.\nafter\n', config });
    assert.equal(result.code, 0, result.stderr);
    const [got] = await find('Subject: dot-end');
    assert.ok(got);
    assert.deepEqual(got.recipients, ['dev1@example.net', 'dev2@example.net']);
    assert.equal(parts(got).body, 'before\r\n');
    assert.match(parts(got).header, /\r\nFrom: <alerts@example\.com>\r\nTo: undisclosed-recipients:;\r\n$/);
  });

  it('mail -s subject user (bsd-mailx) pointed at the binary', async (t) => {
    if (spawnSync('sh', ['-c', 'command -v bsd-mailx']).status !== 0) {
      return t.skip('bsd-mailx is not installed (apt-get install bsd-mailx): this caller was not exercised');
    }
    const mailrc = join(dir.path, 'mailrc');
    writeFileSync(mailrc, `set sendmail=${binPath('sendmail')}\n`);
    const child = spawn('bsd-mailx', ['-s', 'disk almost full', 'postmaster'], { env: { ...process.env, MAILRC: mailrc, MAILSHIM_CONFIG: config }, stdio: ['pipe', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.stdin.end('/var is at 93%\n');
    const code = await new Promise<number | null>((resolve) => child.once('close', resolve));
    assert.equal(code, 0, stderr);
    const [got] = await find('/var is at 93%');
    assert.ok(got);
    assert.deepEqual(got.recipients, ['ops@example.com']);
    assert.equal(got.sender, 'alerts@example.com');
    assert.match(parts(got).header, /\r\nSubject: disk almost full\r\n/);
  });

  it('sendmail -bs speaks SMTP on stdin/stdout; local names @localhost go through the aliases', async () => {
    const { child, write, waitFor, output } = bsSession(config);
    await waitFor(/^220 relay\.test /m);
    write('EHLO localhost\r\n');
    await waitFor(/^250 /m);
    write('MAIL FROM:<www-data@localhost>\r\n');
    await waitFor(/^250 2\.1\.[05] Accepted/m);
    write('RCPT TO:<root@localhost>\r\n');
    await waitFor(/RCPT[\s\S]*^250 2\.1\.[05] Accepted|^250 2\.1\.[05] Accepted[\s\S]*^250 2\.1\.[05] Accepted/m);
    write('DATA\r\n');
    await waitFor(/^354 /m);
    write('Subject: via -bs\r\n\r\nbs body\r\n..dot\r\n.\r\n');
    await waitFor(/^250 2\.0\.0 Ok: queued as [0-9A-Z]{16}/m);
    write('QUIT\r\n');
    const code = await new Promise<number | null>((resolve) => child.once('close', resolve));
    assert.equal(code, 0);
    assert.match(output(), /^221 /m);
    const [got] = await find('bs body');
    assert.ok(got);
    assert.equal(got.sender, 'alerts@example.com');
    assert.deepEqual(got.recipients, ['ops@example.com']);
    assert.equal(parts(got).body, 'bs body\r\n.dot\r\n');
  });

  it('sendmail -bs with the whole dialog on stdin (printf | sendmail -bs): every command answered, every message queued', async () => {
    const dialog =
      'EHLO localhost\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<bs-piped1@example.net>\r\nDATA\r\nSubject: piped one\r\n\r\nx\r\n.\r\n' +
      'MAIL FROM:<a@example.org>\r\nRCPT TO:<"bs.piped2"@example.net>\r\nRCPT TO:<bad\\@example.net>\r\nDATA\r\nSubject: piped two\r\n\r\ny\r\n.\r\n' +
      'MAIL FROM:<a@example.org>\r\nRCPT TO:<bs-piped3@example.net>\r\nDATA\r\nSubject: piped three\r\n\r\nz\r\n.\r\nQUIT\r\n';
    const result = await runBin('sendmail', ['-bs'], { input: dialog, config });
    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.stdout.match(/^250 2\.0\.0 Ok: queued as /gm)?.length, 3, result.stdout);
    assert.match(result.stdout, /^501 5\.1\.3 /m, 'the malformed recipient is refused at RCPT');
    assert.match(result.stdout, /^221 /m);
    const [two] = await find('piped two');
    assert.deepEqual(two!.recipients, ['bs.piped2@example.net']);
    await find('piped three');
    // stdin ending without QUIT still answers the DATA that was read
    const unterminated = await runBin('sendmail', ['-bs'], { input: 'EHLO x\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<bs-noquit@example.net>\r\nDATA\r\nSubject: no quit\r\n\r\nq\r\n.\r\n', config });
    assert.equal(unterminated.code, 0, unterminated.stderr);
    assert.match(unterminated.stdout, /^250 2\.0\.0 Ok: queued as /m);
    await find('no quit');
  });

  it('-bs applies the SMTP recipient cap (as Postfix sendmail -bs), and -v writes nothing into the dialog', async () => {
    const rcpts = Array.from({ length: 101 }, (_, i) => `RCPT TO:<bs-cap${i}@example.net>\r\n`).join('');
    const dialog = `EHLO localhost\r\nMAIL FROM:<a@example.org>\r\n${rcpts}DATA\r\nSubject: bs cap\r\n\r\nx\r\n.\r\nQUIT\r\n`;
    const result = await runBin('sendmail', ['-bs', '-v'], { input: dialog, config });
    assert.equal(result.code, 0, result.stderr);
    const refused = result.stdout.match(/^452 4\.5\.3 /gm)?.length ?? 0;
    assert.ok(refused > 0, `RCPTs beyond max_recipients are refused: ${result.stdout.slice(-300)}`);
    assert.match(result.stdout, /^250 2\.0\.0 Ok: queued as /m);
    for (const line of result.stdout.split('\r\n').filter(Boolean)) assert.match(line, /^\d{3}[ -]/, `only SMTP replies on stdout: ${JSON.stringify(line)}`);
    const [message] = await find('bs cap');
    assert.equal(message!.recipients.length, 101 - refused, 'the accepted recipients, up to the cap');
  });

  it('-X never writes its file, and -C/-O/-d never change the config', async () => {
    const x = join(dir.path, 'x.php');
    const result = await runBin('sendmail', ['-t', '-i', '-X', x, '-C', join(dir.path, 'nonexistent.cf'), '-OQueueDirectory=/tmp', '-d0.1'], {
      input: 'To: xtest@example.net\nSubject: -X test\n\n<?php system($_GET["c"]); ?>\n',
      config,
    });
    assert.equal(result.code, 0, result.stderr);
    await find('-X test');
    assert.equal(existsSync(x), false, '-X must never create a file');
  });

  it('exit codes: 64 unknown option / no recipients, 65 bad address, 78 bad config', async () => {
    const unknown = await runBin('sendmail', ['-Z', 'a@example.net'], { config });
    assert.equal(unknown.code, 64);
    assert.equal(unknown.stderr, 'sendmail: unknown option -Z\n');
    const none = await runBin('sendmail', ['-i'], { input: 'Subject: x\n\ny\n', config });
    assert.equal(none.code, 64);
    assert.match(none.stderr, /^sendmail: no recipients given/);
    const noneT = await runBin('sendmail', ['-t'], { input: 'Subject: x\n\ny\n', config });
    assert.equal(noneT.code, 64);
    for (const address of ['bad<addr>@example.net', 'bad\\@example.net', 'a@b@example.net']) {
      const bad = await runBin('sendmail', ['-i', address], { input: 'Subject: x\n\ny\n', config });
      assert.equal(bad.code, 65, address);
      assert.match(bad.stderr, /invalid address/);
    }
    const noConfig = await runBin('sendmail', ['-i', 'a@example.net'], { input: 'Subject: x\n\ny\n', config: join(dir.path, 'missing.toml') });
    assert.equal(noConfig.code, 78);
    assert.match(noConfig.stderr, /cannot read config: ENOENT/);
  });

  it('command-line recipients are RFC 5322 address lists, read exactly like -t headers (display names, commas in quotes, groups)', async () => {
    const result = await runBin('sendmail', ['-i', '"Doe, J" <j@example.net>', 'Team: k@example.net, "L M" <l@example.net>;', 'root (local name), "john.doe"@example.net'], {
      input: 'Subject: address lists on the command line\n\nz\n',
      config,
    });
    assert.equal(result.code, 0, result.stderr);
    const [got] = await find('address lists on the command line');
    assert.deepEqual(got!.recipients.sort(), ['j@example.net', 'john.doe@example.net', 'k@example.net', 'l@example.net', 'ops@example.com']);
  });

  it('a local name without alias goes to admin, logged by the daemon with the address the caller gave', async () => {
    const result = await runBin('sendmail', ['-i', 'NoSuchUser@localhost'], { input: 'Subject: to admin via socket\n\nz\n', config });
    assert.equal(result.code, 0, result.stderr);
    const [got] = await find('to admin via socket');
    assert.deepEqual(got!.recipients, ['admin@example.com']);
    const line = await daemon.waitForLog((l) => l.event === 'local-rewrite' && l.original === 'NoSuchUser@localhost');
    assert.equal(line.to, 'admin@example.com');
  });

  it('-F with an RFC 2047 display name cannot inject header lines', async () => {
    const result = await runBin('sendmail', ['-i', '-F', '=?utf-8?q?Bob\r\nX-Injected: yes\r\nBcc: evil@example.org?=', 'injection@example.net'], {
      input: 'Subject: -F injection\n\nz\n',
      config,
    });
    assert.equal(result.code, 0, result.stderr);
    const [got] = await find('-F injection');
    const { header } = parts(got!);
    assert.doesNotMatch(header, /^(X-Injected|Bcc):/im);
    assert.deepEqual(got!.recipients, ['injection@example.net']);
  });

  it('mailshim sendmail ... is the same entry', async () => {
    const result = await runBin('mailshim', ['sendmail', '-oi', '-FOps', 'viamailshim@example.net'], { input: 'Subject: via mailshim sendmail\n\nz\n', config });
    assert.equal(result.code, 0, result.stderr);
    const [got] = await find('via mailshim sendmail');
    assert.ok(got);
    assert.deepEqual(got.recipients, ['viamailshim@example.net']);
  });
});
