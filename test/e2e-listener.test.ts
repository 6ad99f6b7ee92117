/** Listener security over real sockets: TLS, AUTH, allow-lists, limits, sender policy, file permissions. */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { chmodSync, copyFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import { describe, it } from 'node:test';
import nodemailer from 'nodemailer';
import { hashPassword } from '../src/auth/passwords.js';
import { startCapture } from './helpers/capture.js';
import { relayConfig } from './helpers/config.js';
import { MAILSHIM, startDaemon, writeConfig } from './helpers/daemon.js';
import { RawSmtp } from './helpers/smtp-client.js';
import { makeCert } from './helpers/tls.js';
import { tempDir } from './helpers/tmp.js';

const PASSWORD = 'correct horse battery staple';

async function usersFile(dir: string): Promise<string> {
  const file = join(dir, 'users');
  writeFileSync(file, `# scanners\nscanner:${await hashPassword(PASSWORD, { ln: 10, r: 8, p: 1 })}\n`, { mode: 0o600 });
  return file;
}

const plain = (user: string, pass: string) => Buffer.from(`\0${user}\0${pass}`).toString('base64');

describe('listener security', () => {
  it('STARTTLS + AUTH required: AUTH only after TLS, 530 before auth, 535 5.7.8 on bad credentials, relays after auth', async () => {
    const dir = tempDir();
    const capture = await startCapture();
    const cert = makeCert(dir.path);
    const users = await usersFile(dir.path);
    const listenExtra = `tls = "starttls"\ncert = "${cert.cert}"\nkey = "${cert.key}"\nauth = "required"\nusers_file = "${users}"\nrequire_tls_for_auth = true`;
    const daemon = await startDaemon(writeConfig(dir.path, relayConfig({ spool: `${dir.path}/spool`, upstreamPort: capture.port, listenExtra })));
    try {
      const raw = await RawSmtp.open(daemon.port);
      await raw.reply();
      const ehlo = await raw.command('EHLO c');
      assert.ok(ehlo.includes('STARTTLS'));
      assert.ok(!ehlo.includes('AUTH'), 'AUTH not offered before TLS');
      assert.match(await raw.command(`AUTH PLAIN ${plain('scanner', PASSWORD)}`), /^5\d\d /);
      assert.match(await raw.command('MAIL FROM:<a@example.org>'), /^530 5\.7\.0 /);
      raw.close();

      const client = (pass: string) =>
        nodemailer.createTransport({ host: '127.0.0.1', port: daemon.port, secure: false, requireTLS: true, tls: { ca: cert.pem, servername: 'relay.test' }, auth: { user: 'scanner', pass } });
      await assert.rejects(client('wrong').sendMail({ from: 'scan@example.org', to: 'x@example.net', text: 'x' }), (e: { response?: string }) => /^535 5\.7\.8 /.test(e.response ?? ''));
      await assert.rejects(
        client(PASSWORD).sendMail({ envelope: { from: 'scan@example.org', to: ['x@example.net'] }, raw: 'Subject: x\r\n\r\nx\r\n', auth: { user: 'nobody', pass: PASSWORD } }),
        (e: { response?: string }) => /^535 5\.7\.8 /.test(e.response ?? ''),
      );
      const info = await client(PASSWORD).sendMail({ from: 'scan@example.org', to: 'x@example.net', subject: 'scan', text: 'pdf here' });
      assert.match(info.response, /^250 2\.0\.0 Ok: queued as/);
      const [got] = await capture.waitFor(1);
      assert.match(got!.raw.toString(), /with ESMTPSA id/);
      assert.ok(!daemon.output().includes(PASSWORD), 'the password never reaches the logs');
      assert.ok(daemon.logs.some((l) => l.event === 'auth' && l.result === 'failed' && l.user === 'nobody'));
    } finally {
      await daemon.stop();
      await capture.close();
      dir.cleanup();
    }
  });

  it('locks an IP out after 5 failed AUTH attempts', async () => {
    const dir = tempDir();
    const users = await usersFile(dir.path);
    const daemon = await startDaemon(writeConfig(dir.path, relayConfig({ spool: `${dir.path}/spool`, listenExtra: `auth = "optional"\nusers_file = "${users}"` })));
    try {
      for (let i = 0; i < 5; i++) {
        const c = await RawSmtp.open(daemon.port);
        await c.reply();
        await c.command('EHLO c');
        assert.match(await c.command(`AUTH PLAIN ${plain('scanner', `guess${i}`)}`), /^535 5\.7\.8 /);
        c.close();
      }
      const locked = await RawSmtp.open(daemon.port);
      assert.match(await locked.reply(), /^421 4\.7\.0 /);
      locked.close();
      // The log line is written as the lockout happens; the test may read the 421 before it arrives.
      await daemon.waitForLog((l) => l.event === 'auth' && l.locked === true);
    } finally {
      await daemon.stop();
      dir.cleanup();
    }
  });

  it('a client that keeps guessing in one session is cut off with 421 once its address is locked out', async () => {
    const dir = tempDir();
    const users = await usersFile(dir.path);
    const daemon = await startDaemon(writeConfig(dir.path, relayConfig({ spool: `${dir.path}/spool`, listenExtra: `auth = "optional"\nusers_file = "${users}"` })));
    try {
      const c = await RawSmtp.open(daemon.port);
      await c.reply();
      await c.command('EHLO c');
      for (let i = 0; i < 5; i++) assert.match(await c.command(`AUTH PLAIN ${plain('scanner', `guess${i}`)}`), /^535 5\.7\.8 /);
      assert.match(await c.command(`AUTH PLAIN ${plain('scanner', 'guess5')}`), /^421 4\.7\.0 /);
      assert.equal(await c.reply(), '', 'the server closed the connection');
      assert.ok(c.closed);
    } finally {
      await daemon.stop();
      dir.cleanup();
    }
  });

  it("a session answered 454 or 535 again and again is slowed after 10 errors and closed at 20 (Postfix's smtpd error limits)", async (t) => {
    const dir = tempDir();
    const users = join(dir.path, 'users');
    // A costly hash, so that 40 guessing sessions fill the check queue and get 454 (busy) at once.
    writeFileSync(users, `scanner:${await hashPassword(PASSWORD, { ln: 15, r: 8, p: 1 })}\n`, { mode: 0o600 });
    const daemon = await startDaemon(writeConfig(dir.path, relayConfig({ spool: `${dir.path}/spool`, listenExtra: `auth = "optional"\nusers_file = "${users}"` })));
    try {
      const sessions = await Promise.all(
        Array.from({ length: 40 }, async (_, i) => {
          const c = await RawSmtp.open(daemon.port, '127.0.0.1', `127.3.0.${i + 1}`);
          await c.reply();
          await c.command('EHLO guesser.test');
          const started = performance.now();
          const replies: { text: string; at: number }[] = [];
          for (let n = 0; n < 200; n++) {
            const text = await c.command(`AUTH PLAIN ${plain('scanner', `guess${n}`)}`);
            if (!text) break; // closed
            replies.push({ text, at: performance.now() - started });
            if (text.startsWith('421')) break;
          }
          c.close();
          return replies;
        }),
      );
      const byLimit = sessions.filter((replies) => /too many errors/.test(replies.at(-1)?.text ?? '')).length;
      t.diagnostic(`sessions closed by the error limit: ${byLimit}, by the address lockout: ${sessions.length - byLimit}`);
      assert.ok(
        sessions.flat().some((r) => r.text.startsWith('454 4.7.0')),
        'the password checks were busy at times',
      );
      for (const replies of sessions) {
        assert.ok(replies.length <= 20, `a session got ${replies.length} AUTH answers; at most 20`);
        assert.match(replies.at(-1)?.text ?? '', /^421 4\.7\.0 /, 'every session ends with 421');
        // From the 11th error on, each answer waits 1 s: none of those can come in the first second.
        assert.ok(replies.filter((r) => r.at < 1000).length <= 10, `${replies.filter((r) => r.at < 1000).length} answers in the first second`);
      }
      assert.ok(
        sessions.some((replies) => /too many errors/.test(replies.at(-1)?.text ?? '')),
        'a session answered 454 again and again reaches the hard limit',
      );
    } finally {
      await daemon.stop();
      dir.cleanup();
    }
  });

  it('implicit TLS listener with an old-appliance-friendly clear-text AUTH LOGIN listener beside it', async () => {
    const dir = tempDir();
    const capture = await startCapture();
    const cert = makeCert(dir.path);
    const users = await usersFile(dir.path);
    const config = relayConfig({ spool: `${dir.path}/spool`, upstreamPort: capture.port, listenExtra: `tls = "implicit"\ncert = "${cert.cert}"\nkey = "${cert.key}"` }).replace(
      '[[upstream]]',
      `[[listen]]\naddress = "127.0.0.2:0"\nallow = ["127.0.0.0/8"]\nauth = "optional"\nusers_file = "${users}"\nrequire_tls_for_auth = false\n\n[[upstream]]`,
    );
    const daemon = await startDaemon(writeConfig(dir.path, config));
    try {
      const secure = nodemailer.createTransport({ host: '127.0.0.1', port: daemon.port, secure: true, tls: { ca: cert.pem, servername: 'relay.test' } });
      await secure.sendMail({ from: 'a@example.org', to: 'b@example.net', subject: 'implicit', text: 'x' });
      const second = daemon.logs.filter((l) => l.event === 'listening')[1]!;
      const old = await RawSmtp.open(Number(second.port), '127.0.0.2');
      await old.reply();
      assert.match(await old.command('EHLO scanner'), /AUTH PLAIN LOGIN/);
      assert.match(await old.command('AUTH LOGIN'), /^334 /);
      assert.match(await old.command(Buffer.from('scanner').toString('base64')), /^334 /);
      assert.match(await old.command(Buffer.from(PASSWORD).toString('base64')), /^235 /);
      old.close();
      await capture.waitFor(1);
    } finally {
      await daemon.stop();
      await capture.close();
      dir.cleanup();
    }
  });

  it('auth = "required": a client in the allow-list but unauthenticated cannot relay; one outside it cannot even connect', async () => {
    const dir = tempDir();
    const users = await usersFile(dir.path);
    const daemon = await startDaemon(writeConfig(dir.path, relayConfig({ spool: `${dir.path}/spool`, allow: ['127.0.0.1/32'], listenExtra: `auth = "required"\nusers_file = "${users}"` })));
    try {
      const outsider = await RawSmtp.open(daemon.port, '127.0.0.1', '127.0.0.2');
      assert.match(await outsider.reply(), /^554 5\.7\.1 /);
      outsider.close();
      const insider = await RawSmtp.open(daemon.port);
      await insider.reply();
      await insider.command('EHLO c');
      assert.match(await insider.command('MAIL FROM:<a@example.org>'), /^530 5\.7\.0 /);
      assert.match(await insider.command('RCPT TO:<victim@example.net>'), /^5\d\d /);
      insider.close();
    } finally {
      await daemon.stop();
      dir.cleanup();
    }
  });

  it('allowed_senders, rate_limit and max_connections_per_ip', async () => {
    const dir = tempDir();
    const daemon = await startDaemon(
      writeConfig(dir.path, relayConfig({ spool: `${dir.path}/spool`, listenExtra: `allowed_senders = ["*@example.com"]\nrate_limit = "2/m"\nmax_connections_per_ip = 2` })),
    );
    try {
      const a = await RawSmtp.open(daemon.port);
      await a.reply();
      await a.command('EHLO c');
      assert.match(await a.command('MAIL FROM:<x@elsewhere.org>'), /^553 5\.7\.1 /);
      assert.match(await a.command('MAIL FROM:<scanner@example.com>'), /^250/);
      await a.command('RSET');
      assert.match(await a.command('MAIL FROM:<scanner@example.com>'), /^250/);
      await a.command('RSET');
      assert.match(await a.command('MAIL FROM:<scanner@example.com>'), /^450 4\.7\.1 /);
      const b = await RawSmtp.open(daemon.port);
      assert.match(await b.reply(), /^220 /);
      const c = await RawSmtp.open(daemon.port);
      assert.match(await c.reply(), /^421 4\.7\.0 /);
      for (const s of [a, b, c]) s.close();
    } finally {
      await daemon.stop();
      dir.cleanup();
    }
  });

  it('reloads a renewed certificate when the file changes', async () => {
    const dir = tempDir();
    const first = makeCert(dir.path, 'first', 'relay.test');
    const second = makeCert(dir.path, 'second', 'relay.test');
    const live = { cert: join(dir.path, 'live.crt'), key: join(dir.path, 'live.key') };
    copyFileSync(first.cert, live.cert);
    copyFileSync(first.key, live.key);
    chmodSync(live.key, 0o600);
    const daemon = await startDaemon(writeConfig(dir.path, relayConfig({ spool: `${dir.path}/spool`, listenExtra: `tls = "implicit"\ncert = "${live.cert}"\nkey = "${live.key}"` })));
    const fingerprint = () =>
      new Promise<string>((resolve, reject) => {
        const socket = tlsConnect({ host: '127.0.0.1', port: daemon.port, rejectUnauthorized: false, servername: 'relay.test' }, () => {
          resolve(socket.getPeerCertificate().fingerprint256);
          socket.destroy();
        });
        socket.on('error', reject);
      });
    try {
      const before = await fingerprint();
      copyFileSync(second.key, live.key);
      copyFileSync(second.cert, live.cert);
      await daemon.waitForLog((l) => l.event === 'tls-reloaded', 10_000);
      const after = await fingerprint();
      assert.notEqual(after, before);
    } finally {
      await daemon.stop();
      dir.cleanup();
    }
  });

  it('refuses to start when a file holding a secret is readable by others, with the chmod fix', async () => {
    const dir = tempDir();
    try {
      const secret = join(dir.path, 'primary.secret');
      writeFileSync(secret, 'pw\n', { mode: 0o644 });
      chmodSync(secret, 0o644);
      const file = writeConfig(dir.path, relayConfig({ spool: `${dir.path}/spool`, upstreamExtra: `username = "u"\npassword_file = "${secret}"` }));
      const result = await new Promise<{ code: number | null; stderr: string }>((resolve) => {
        const child = execFile(process.execPath, [MAILSHIM, 'serve', '--config', file], (_error, _stdout, stderr) => resolve({ code: child.exitCode, stderr }));
      });
      assert.equal(result.code, 78);
      assert.match(result.stderr, new RegExp(`refusing to start: ${secret} holds a secret and is accessible by group/others \\(mode 644\\); fix: chmod 600 ${secret}`));
    } finally {
      dir.cleanup();
    }
  });
});
