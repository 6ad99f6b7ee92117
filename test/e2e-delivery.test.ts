/** Delivery behaviour through the real daemon: retries, partial failures, bounces, config holds, crashes. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import nodemailer from 'nodemailer';
import { startCapture } from './helpers/capture.js';
import { relayConfig } from './helpers/config.js';
import { startDaemon, writeConfig } from './helpers/daemon.js';
import { parseDsn } from './helpers/dsn.js';
import { waitForEmptyQueue } from './helpers/sendmail.js';
import { tempDir } from './helpers/tmp.js';

async function submit(port: number, from: string, to: string[], subject: string): Promise<string> {
  const transport = nodemailer.createTransport({ host: '127.0.0.1', port, secure: false, ignoreTLS: true });
  const info = await transport.sendMail({ envelope: { from, to }, from, to: to.join(', '), subject, text: `body of ${subject}`, messageId: `<${subject.replace(/\W/g, '-')}@example.org>` });
  const id = /queued as ([0-9A-Z]{16})/.exec(info.response)?.[1];
  assert.ok(id, info.response);
  return id;
}

describe('delivery', () => {
  it('retries after a 4xx and delivers once the upstream accepts', async () => {
    const dir = tempDir();
    const capture = await startCapture();
    capture.script.mail = [451, '4.3.0 try again later'];
    const daemon = await startDaemon(writeConfig(dir.path, relayConfig({ spool: `${dir.path}/spool`, upstreamPort: capture.port })));
    try {
      const id = await submit(daemon.port, 'a@example.org', ['b@example.net'], 'retry me');
      const deferred = await daemon.waitForLog((l) => l.event === 'delivery' && l.queueId === id);
      assert.equal(deferred.result, 'transient');
      assert.match(String(deferred.reply), /^451 4\.3\.0 try again later/);
      assert.ok(deferred.nextAttemptAt, 'next attempt is scheduled');
      capture.script.mail = undefined;
      const [got] = await capture.waitFor(1);
      assert.equal(got!.sender, 'a@example.org');
      const delivered = await daemon.waitForLog((l) => l.event === 'delivery' && l.queueId === id && l.result === 'delivered');
      assert.equal(delivered.attempt, 2);
    } finally {
      await daemon.stop();
      await capture.close();
      dir.cleanup();
    }
  });

  it('partial RCPT rejection: delivers the accepted recipient once, bounces the 5xx one, retries the 4xx one', async () => {
    const dir = tempDir();
    const capture = await startCapture();
    capture.script.rcpt = new Map([
      ['gone@example.net', [550, '5.1.1 no such user']],
      ['busy@example.net', [450, '4.2.1 mailbox busy']],
    ]);
    const config = writeConfig(dir.path, relayConfig({ spool: `${dir.path}/spool`, upstreamPort: capture.port }));
    const daemon = await startDaemon(config);
    try {
      const id = await submit(daemon.port, 'sender@example.org', ['ok@example.net', 'gone@example.net', 'busy@example.net'], 'partial');
      await capture.waitFor(1);
      assert.deepEqual(capture.messages[0]!.recipients, ['ok@example.net']);
      // The bounce for gone@ goes back to the sender through the same upstream.
      const bounce = await capture.waitFor(2).then((m) => m.find((x) => x.recipients[0] === 'sender@example.org'));
      assert.ok(bounce, 'DSN delivered to the envelope sender');
      assert.equal(bounce.sender, '', 'a bounce goes out from the null reverse-path <> on SMTP (RFC 5321 §4.5.5)');
      const dsn = await parseDsn(bounce.raw);
      assert.equal(dsn.reportType, 'delivery-status');
      assert.deepEqual(
        dsn.recipients.map((r) => [r['final-recipient'], r.action, r.status, r['diagnostic-code']]),
        [['rfc822; gone@example.net', 'failed', '5.1.1', 'smtp; 550 5.1.1 no such user']],
        'only the failed recipient is reported',
      );
      assert.equal(dsn.returned?.contentType, 'text/rfc822-headers');
      assert.match(dsn.returned.body.toString(), /^Received: [\s\S]*^Subject: partial\r$/m);
      // busy@ recovers.
      capture.script.rcpt = undefined;
      const later = await capture.waitFor(3).then((m) => m.find((x) => x.recipients.includes('busy@example.net')));
      assert.deepEqual(later!.recipients, ['busy@example.net']);
      await daemon.waitForLog((l) => l.event === 'delivery' && l.queueId === id && l.result === 'delivered' && (l.recipients as string[]).includes('busy@example.net'));
      await waitForEmptyQueue(config);
      assert.equal(capture.messages.filter((m) => m.recipients.includes('ok@example.net')).length, 1, 'accepted recipient delivered exactly once');
    } finally {
      await daemon.stop();
      await capture.close();
      dir.cleanup();
    }
  });

  it('never bounces a bounce (null sender) on a permanent failure', async () => {
    const dir = tempDir();
    const capture = await startCapture();
    capture.script.rcpt = new Map([['gone@example.net', [550, '5.1.1 no such user']]]);
    const config = writeConfig(dir.path, relayConfig({ spool: `${dir.path}/spool`, upstreamPort: capture.port }));
    const daemon = await startDaemon(config);
    try {
      const id = await submit(daemon.port, '', ['gone@example.net'], 'null sender');
      const line = await daemon.waitForLog((l) => l.event === 'delivery' && l.queueId === id);
      assert.equal(line.result, 'permanent');
      assert.equal(line.dsnQueueIds, undefined);
      await waitForEmptyQueue(config); // a bounce would be a queued message
      assert.equal(capture.messages.length, 0);
    } finally {
      await daemon.stop();
      await capture.close();
      dir.cleanup();
    }
  });

  it('authentication failure is a configuration error: held and logged loudly, never bounced; delivered after the fix and a reload', async () => {
    const dir = tempDir();
    const capture = await startCapture({ users: { relay: 'right-password' } });
    const upstream = (password: string) => `username = "relay"\npassword = "${password}"`;
    const configFile = writeConfig(
      dir.path,
      relayConfig({ spool: `${dir.path}/spool`, upstreamPort: capture.port, upstreamExtra: upstream('wrong-password'), retry: { initial: '300ms', max: '600ms', age: '1s' } }),
    );
    const daemon = await startDaemon(configFile);
    try {
      const id = await submit(daemon.port, 'a@example.org', ['b@example.net'], 'auth fail');
      const line = await daemon.waitForLog((l) => l.event === 'delivery' && l.queueId === id);
      assert.equal(line.result, 'config');
      assert.equal(line.level, 50, 'logged at error level');
      // Past max_age (1s) a transient failure would bounce; a config error must not. A deliberate
      // time gap: what is checked is that nothing happens once max_age has passed.
      await new Promise((r) => setTimeout(r, 2000));
      assert.ok(!daemon.logs.some((l) => l.event === 'delivery' && l.queueId === id && l.result !== 'config'));
      assert.equal(capture.messages.length, 0);
      assert.ok(!daemon.output().includes('wrong-password'), 'the password never appears in the logs');
      writeConfig(dir.path, relayConfig({ spool: `${dir.path}/spool`, upstreamPort: capture.port, upstreamExtra: upstream('right-password'), retry: { initial: '300ms', max: '600ms', age: '1h' } }));
      daemon.child.kill('SIGHUP');
      await daemon.waitForLog((l) => l.event === 'reloaded');
      const [got] = await capture.waitFor(1);
      assert.equal(got!.user, 'relay');
    } finally {
      await daemon.stop();
      await capture.close();
      dir.cleanup();
    }
  });

  it('an invalid config on SIGHUP is logged and ignored', async () => {
    const dir = tempDir();
    const capture = await startCapture();
    const configFile = writeConfig(dir.path, relayConfig({ spool: `${dir.path}/spool`, upstreamPort: capture.port }));
    const daemon = await startDaemon(configFile);
    try {
      writeConfig(dir.path, 'this is = not [valid toml');
      daemon.child.kill('SIGHUP');
      const failed = await daemon.waitForLog((l) => l.event === 'reload-failed');
      assert.match(String(failed.msg), /mailshim\.toml:1:/);
      await submit(daemon.port, 'a@example.org', ['b@example.net'], 'still works');
      await capture.waitFor(1);
    } finally {
      await daemon.stop();
      await capture.close();
      dir.cleanup();
    }
  });

  it('bounces after max_age when the upstream keeps deferring', async () => {
    const dir = tempDir();
    const capture = await startCapture();
    capture.script.rcpt = new Map([['slow@example.net', [451, '4.4.0 still not today']]]);
    const daemon = await startDaemon(writeConfig(dir.path, relayConfig({ spool: `${dir.path}/spool`, upstreamPort: capture.port, retry: { initial: '200ms', max: '400ms', age: '1s' } })));
    try {
      const id = await submit(daemon.port, 'a@example.org', ['slow@example.net'], 'expires');
      const bounce = await capture.waitFor(1).then((m) => m[0]!);
      assert.deepEqual(bounce.recipients, ['a@example.org']);
      assert.match(bounce.raw.toString(), /Status: 4\.4\.7\r\nDiagnostic-Code: smtp; 451 4\.4\.0 still not today/);
      assert.ok(daemon.logs.filter((l) => l.event === 'delivery' && l.queueId === id).length >= 2, 'retried before giving up');
      const last = await daemon.waitForLog((l) => l.event === 'delivery' && l.queueId === id && l.result === 'expired');
      assert.equal(last.status, '4.4.7');
      assert.equal(last.nextAttemptAt, undefined, 'nothing is scheduled after giving up');
    } finally {
      await daemon.stop();
      await capture.close();
      dir.cleanup();
    }
  });

  it('survives kill -9: every accepted message arrives after restart, with the upstream down meanwhile', async () => {
    const dir = tempDir();
    const capture = await startCapture();
    const port = capture.port;
    await capture.close(); // upstream down
    const configFile = writeConfig(dir.path, relayConfig({ spool: `${dir.path}/spool`, upstreamPort: port, retry: { initial: '200ms', max: '500ms', age: '1h' } }));
    let daemon = await startDaemon(configFile);
    const N = 30;
    const ids = await Promise.all(Array.from({ length: N }, (_, i) => submit(daemon.port, 'a@example.org', [`r${i}@example.net`], `crash ${i}`)));
    assert.equal(new Set(ids).size, N);
    await daemon.kill9();
    daemon = await startDaemon(configFile);
    const up = await startCapture({ port });
    try {
      const got = await up.waitFor(N, 30_000);
      const subjects = new Set(got.map((m) => /Subject: (crash \d+)/.exec(m.raw.toString())?.[1]));
      assert.equal(subjects.size, N, 'every accepted message delivered');
    } finally {
      await daemon.stop();
      await up.close();
      dir.cleanup();
    }
  });
});
