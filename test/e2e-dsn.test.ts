/**
 * RFC 3461 delivery status notifications end to end, through the real daemon: NOTIFY=NEVER from
 * SMTP and `sendmail -N never` suppress the bounce (cron), ORCPT/ENVID/RET=FULL are honoured,
 * NOTIFY=SUCCESS gets a "relayed" notice only when the upstream could not pass the request on,
 * and delay_warning_time sends one "delayed" notice.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { startCapture, type Capture } from './helpers/capture.js';
import { relayConfig, type TestConfigOptions } from './helpers/config.js';
import { startDaemon, writeConfig, type RunningDaemon } from './helpers/daemon.js';
import { bsSession, runBin, waitForEmptyQueue } from './helpers/sendmail.js';
import { RawSmtp } from './helpers/smtp-client.js';
import { parseDsn } from './helpers/dsn.js';
import { tempDir } from './helpers/tmp.js';

async function withRelay(
  captureOptions: Parameters<typeof startCapture>[0],
  config: Omit<TestConfigOptions, 'spool' | 'upstreamPort'>,
  run: (daemon: RunningDaemon, capture: Capture, configFile: string) => Promise<void>,
): Promise<void> {
  const dir = tempDir();
  const capture = await startCapture(captureOptions);
  const configFile = writeConfig(dir.path, relayConfig({ spool: `${dir.path}/spool`, upstreamPort: capture.port, ...config }));
  const daemon = await startDaemon(configFile);
  try {
    await run(daemon, capture, configFile);
  } finally {
    await daemon.stop();
    await capture.close();
    dir.cleanup();
  }
}

/** One SMTP transaction with the exact MAIL/RCPT parameters given; returns the queue id. */
async function send(port: number, mail: string, rcpts: string[], subject: string): Promise<string> {
  const c = await RawSmtp.open(port);
  await c.reply();
  assert.match(await c.command('EHLO client.test'), /\bDSN\b/, 'DSN is advertised');
  assert.match(await c.command(mail), /^250 /);
  for (const rcpt of rcpts) assert.match(await c.command(rcpt), /^250 /);
  assert.match(await c.command('DATA'), /^354 /);
  const reply = await c.command(`From: cron@example.org\r\nTo: ops@example.net\r\nSubject: ${subject}\r\nMessage-ID: <${subject}@example.org>\r\n\r\nthe body of ${subject}\r\n.`);
  c.close();
  const id = /queued as ([0-9A-Z]{16})/.exec(reply)?.[1];
  assert.ok(id, reply);
  return id;
}

describe('DSN extension (RFC 3461)', () => {
  it('NOTIFY=NEVER suppresses the bounce; NOTIFY=FAILURE with ORCPT, ENVID and RET=FULL gets one that echoes them', async () => {
    const rcpt = new Map<string, [number, string]>([
      ['quiet@example.net', [550, '5.1.1 no such user']],
      ['loud@example.net', [550, '5.1.1 no such user']],
    ]);
    await withRelay({}, {}, async (daemon, capture) => {
      capture.script.rcpt = rcpt;
      const id = await send(
        daemon.port,
        'MAIL FROM:<cron@example.org> RET=FULL ENVID=job+2B42',
        ['RCPT TO:<quiet@example.net> NOTIFY=NEVER', 'RCPT TO:<loud@example.net> NOTIFY=FAILURE ORCPT=rfc822;list+40example.net'],
        'nightly',
      );
      const line = await daemon.waitForLog((l) => l.event === 'delivery' && l.queueId === id && l.result === 'permanent');
      assert.equal((line.dsnQueueIds as string[]).length, 1, 'one notice');
      const [bounce] = await capture.waitFor(1);
      assert.deepEqual(bounce!.recipients, ['cron@example.org']);
      const dsn = await parseDsn(bounce!.raw);
      assert.equal(dsn.perMessage['original-envelope-id'], 'job+42');
      assert.deepEqual(
        dsn.recipients.map((r) => [r['final-recipient'], r['original-recipient'], r.action]),
        [['rfc822; loud@example.net', 'rfc822;list@example.net', 'failed']],
        'NOTIFY=NEVER: quiet@ not reported',
      );
      assert.doesNotMatch(dsn.human, /quiet@example\.net/);
      assert.equal(dsn.returned?.contentType, 'message/rfc822', 'RET=FULL returns the message');
      assert.match(dsn.returned.body.toString(), /the body of nightly/);
    });
  });

  it('sendmail -N never: a failed cron mail is not bounced', async () => {
    await withRelay({}, {}, async (daemon, capture, config) => {
      capture.script.rcpt = new Map([['gone@example.net', [550, '5.1.1 no such user']]]);
      const input = 'Subject: cron output\n\nok\n';
      const result = await runBin('sendmail', ['-N', 'never', '-f', 'cron@example.org', 'gone@example.net'], { input, config });
      assert.equal(result.code, 0, result.stderr);
      const line = await daemon.waitForLog((l) => l.event === 'delivery' && l.result === 'permanent');
      assert.equal(line.dsnQueueIds, undefined, 'no notice queued');
      await waitForEmptyQueue(config);
      assert.equal(capture.messages.length, 0, 'nothing went to the sender');
    });
  });

  it('sendmail -N with a bad value is a usage error (EX_USAGE 64), like Postfix', async () => {
    const result = await runBin('sendmail', ['-N', 'sometimes', 'a@example.net'], { input: 'x\n', config: '/nonexistent.toml' });
    assert.equal(result.code, 64);
    assert.match(result.stderr, /-N "sometimes"/);
  });

  it('NOTIFY=SUCCESS: a "relayed" notice when the upstream has no DSN; none when it passes the request on', async () => {
    // smtp-server hides DSN unless told otherwise: this upstream cannot pass NOTIFY on.
    await withRelay({}, {}, async (daemon, capture) => {
      const id = await send(daemon.port, 'MAIL FROM:<cron@example.org>', ['RCPT TO:<ops@example.net> NOTIFY=SUCCESS,FAILURE'], 'report');
      const line = await daemon.waitForLog((l) => l.event === 'delivery' && l.queueId === id && l.result === 'delivered');
      assert.equal((line.dsnQueueIds as string[] | undefined)?.length ?? 0, 0, 'a success is not logged as a bounce');
      const notice = (await capture.waitFor(2)).find((m) => m.recipients[0] === 'cron@example.org');
      assert.ok(notice, 'success notice delivered to the sender');
      assert.equal(notice.sender, '');
      const dsn = await parseDsn(notice.raw);
      assert.match(dsn.mail.subject ?? '', /^Successful Mail Delivery Report/);
      assert.deepEqual(
        dsn.recipients.map((r) => [r['final-recipient'], r.action, r.status]),
        [['rfc822; ops@example.net', 'relayed', '2.0.0']],
      );
    });
    await withRelay({ hideDSN: false }, {}, async (daemon, capture, config) => {
      const id = await send(daemon.port, 'MAIL FROM:<cron@example.org>', ['RCPT TO:<ops@example.net> NOTIFY=SUCCESS'], 'passed-on');
      await daemon.waitForLog((l) => l.event === 'delivery' && l.queueId === id && l.result === 'delivered');
      await waitForEmptyQueue(config);
      assert.deepEqual(
        capture.messages.map((m) => m.recipients[0]),
        ['ops@example.net'],
        'the upstream offers DSN: it reports success, we do not',
      );
    });
  });

  it('delay_warning_time: one "delayed" notice while delivery is still being retried', async () => {
    await withRelay({}, { retry: { initial: '200ms', max: '300ms', age: '1h', delayWarning: '500ms' } }, async (daemon, capture) => {
      capture.script.rcpt = new Map([['busy@example.net', [450, '4.2.1 mailbox busy']]]);
      const id = await send(daemon.port, 'MAIL FROM:<cron@example.org>', ['RCPT TO:<busy@example.net>'], 'slow');
      const [notice] = await capture.waitFor(1);
      assert.deepEqual(notice!.recipients, ['cron@example.org']);
      const dsn = await parseDsn(notice!.raw);
      assert.equal(dsn.mail.subject, 'Delayed Mail (still being retried): slow');
      assert.equal(dsn.recipients[0]?.action, 'delayed');
      assert.equal(dsn.recipients[0]?.status, '4.2.1');
      assert.ok(dsn.recipients[0]?.['will-retry-until'], 'Will-Retry-Until');
      await daemon.waitForLog((l) => l.event === 'delivery' && l.queueId === id && Number(l.attempt) >= 5);
      assert.equal(capture.messages.length, 1, 'one delay notice, not one per attempt');
    });
  });
});

describe('a notice that cannot be delivered anywhere', () => {
  it('is dropped with an error-level log line, never bounced again', async () => {
    await withRelay({}, {}, async (daemon, capture) => {
      capture.script.rcpt = new Map<string, [number, string]>([
        ['gone@example.net', [550, '5.1.1 no such user']],
        ['cron@example.org', [550, '5.1.1 sender mailbox gone too']],
      ]);
      await send(daemon.port, 'MAIL FROM:<cron@example.org>', ['RCPT TO:<gone@example.net>'], 'lost');
      const dropped = await daemon.waitForLog((l) => l.event === 'bounce-dropped');
      assert.equal(dropped.level, 50, 'logged at error level');
      assert.deepEqual(dropped.to, ['cron@example.org']);
    });
  });
});

describe('sendmail -bs and DSN parameters', () => {
  it('RCPT NOTIFY=NEVER in a -bs dialog suppresses the bounce like -N never', async () => {
    await withRelay({}, {}, async (daemon, capture, config) => {
      capture.script.rcpt = new Map([['gone@example.net', [550, '5.1.1 no such user']]]);
      const { child, write, waitFor } = bsSession(config);
      await waitFor(/^220 /m);
      write('EHLO localhost\r\n');
      await waitFor(/^250[ -]DSN/m);
      write('MAIL FROM:<cron@example.org>\r\n');
      await waitFor(/^250 2\.1\.[05] Accepted/m);
      write('RCPT TO:<gone@example.net> NOTIFY=NEVER\r\n');
      await waitFor(/^250 2\.1\.[05] Accepted[\s\S]*^250 2\.1\.[05] Accepted/m);
      write('DATA\r\n');
      await waitFor(/^354 /m);
      write('Subject: via -bs\r\n\r\nbody\r\n.\r\n');
      await waitFor(/^250 2\.0\.0 Ok: queued as/m);
      write('QUIT\r\n');
      await new Promise((resolve) => child.once('close', resolve));
      const line = await daemon.waitForLog((l) => l.event === 'delivery' && l.result === 'permanent');
      assert.equal(line.dsnQueueIds, undefined, 'no notice queued');
    });
  });
});
