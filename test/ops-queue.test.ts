/** `mailshim queue ...` against a running daemon: real spool, real capture upstream, the CLI as a process. */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { startCapture, type Capture } from './helpers/capture.js';
import { auditLines, runCli } from './helpers/cli.js';
import { relayConfig } from './helpers/config.js';
import { startDaemon, writeConfig, type RunningDaemon } from './helpers/daemon.js';
import { parseDsn } from './helpers/dsn.js';
import { submit } from './helpers/submit.js';
import { tempDir } from './helpers/tmp.js';

describe('queue tools against a running daemon', () => {
  let capture: Capture;
  let daemon: RunningDaemon;
  let dir: ReturnType<typeof tempDir>;
  let config: string;
  const cli = (...args: string[]) => runCli([...args, '--config', config]);
  /** Waits for the daemon to log an attempt for this id with this result. */
  const attempted = (id: string, result: string) => daemon.waitForLog((l) => l.event === 'delivery' && l.queueId === id && l.result === result);
  const show = async (id: string) => JSON.parse((await cli('queue', 'show', id, '--json')).stdout) as Record<string, unknown> & { recipients: Array<Record<string, unknown>> };

  before(async () => {
    dir = tempDir();
    capture = await startCapture();
    // A deferred message waits an hour: anything delivered sooner was made due by a queue command.
    config = writeConfig(dir.path, relayConfig({ spool: `${dir.path}/spool`, upstreamPort: capture.port, retry: { initial: '1h', max: '2h', age: '5d' } }));
    daemon = await startDaemon(config);
  });

  after(async () => {
    const code = await daemon.stop();
    await capture.close();
    dir.cleanup();
    assert.equal(code, 0);
  });

  it('show prints envelope, recipient state with history, and headers; --json and --raw agree', async () => {
    capture.script.rcpt = new Map([['later@example.net', [451, 'try again later']]]);
    const id = await submit(daemon.port, 'alice@example.org', ['later@example.net'], 'show me');
    await attempted(id, 'transient');
    const text = await cli('queue', 'show', id);
    assert.equal(text.code, 0, text.stderr);
    assert.match(text.stdout, new RegExp(`^Queue ID: +${id}$`, 'm'));
    assert.match(text.stdout, /^State: +deferred$/m);
    assert.match(text.stdout, /^Sender: +<alice@example\.org>$/m);
    assert.match(text.stdout, /<later@example\.net> +deferred, 1 attempt\(s\), last via capture/);
    assert.match(text.stdout, /last reply: 451 4\.3\.0 try again later/);
    assert.match(text.stdout, /capture +transient +451 4\.3\.0 try again later/);
    assert.match(text.stdout, /^ +Subject: show me$/m);

    const json = await show(id);
    assert.equal(json.id, id);
    assert.equal(json.state, 'deferred');
    assert.equal(json.recipients[0]!.status, 'deferred');
    assert.match(String(json.headers), /^Subject: show me$/m);

    const raw = await cli('queue', 'show', id, '--raw');
    assert.equal(raw.code, 0);
    assert.match(raw.bytes.toString(), new RegExp(`^Received: from .*\\r\\n\\tby relay\\.test \\(mailshim\\) with ESMTP id ${id}`));
    assert.match(raw.bytes.toString(), /\r\n\r\nbody of show me/);
    assert.equal((await cli('queue', 'delete', id, '--yes')).code, 0, 'leave the queue empty for the flush test');
  });

  it('exit 66 for an unknown id and 64 for something that is not a queue id', async () => {
    const missing = await cli('queue', 'show', 'BBBBBBBBBBBBBBBB');
    assert.equal(missing.code, 66);
    assert.match(missing.stderr, /BBBBBBBBBBBBBBBB: no such message in the queue/);
    const bad = await cli('queue', 'hold', 'not-an-id');
    assert.equal(bad.code, 64);
    assert.match(bad.stderr, /"not-an-id" is not a queue id/);
    const neither = await cli('queue', 'retry');
    assert.equal(neither.code, 64);
    assert.match(neither.stderr, /name one queue id, or --all/);
  });

  it('never creates a spool: exit 74 when the configured one does not exist', async () => {
    const elsewhere = writeConfig(dir.path, relayConfig({ spool: `${dir.path}/no-spool-here` }), 'other.toml');
    const result = await runCli(['queue', 'hold', 'BBBBBBBBBBBBBBBB', '--config', elsewhere]);
    assert.equal(result.code, 74);
    assert.match(result.stderr, /no spool at .*no-spool-here: the daemon has not run yet/);
    assert.equal(existsSync(`${dir.path}/no-spool-here`), false);
  });

  it('hold stops delivery, retry refuses a held message, release delivers it', async () => {
    capture.script.rcpt = new Map([['held@example.net', [451, 'busy']]]);
    const id = await submit(daemon.port, 'alice@example.org', ['held@example.net'], 'hold me');
    await attempted(id, 'transient');
    const held = await cli('queue', 'hold', id);
    assert.deepEqual([held.code, held.stdout], [0, `${id}: held\n`]);
    assert.equal(auditLines(held.stderr).find((l) => l.event === 'queue-hold')?.queueId, id);
    const again = await cli('queue', 'hold', id);
    assert.deepEqual([again.code, again.stdout], [0, `${id}: already held\n`]);
    const json = await show(id);
    assert.equal(json.state, 'held');
    assert.equal(json.nextAttemptAt, null);

    capture.script.rcpt = undefined;
    const retry = await cli('queue', 'retry', id);
    assert.equal(retry.code, 1);
    assert.match(retry.stdout, /is held; run `mailshim queue release`/);
    assert.equal((await show(id)).state, 'held', 'still held after a refused retry');

    const release = await cli('queue', 'release', id);
    assert.deepEqual([release.code, release.stdout], [0, `${id}: released, due now\n`]);
    await attempted(id, 'delivered');
    assert.ok(capture.messages.some((m) => m.recipients.includes('held@example.net')));
    const gone = await cli('queue', 'show', id);
    assert.equal(gone.code, 66, 'a delivered message leaves the queue');
    const releaseGone = await cli('queue', 'release', id);
    assert.equal(releaseGone.code, 66);
  });

  it('retry ID makes a deferred message due now (its backoff is an hour)', async () => {
    capture.script.rcpt = new Map([['retry@example.net', [451, 'busy']]]);
    const id = await submit(daemon.port, 'alice@example.org', ['retry@example.net'], 'retry me');
    await attempted(id, 'transient');
    const next = Number((await show(id)).nextAttemptAt);
    assert.ok(next - Date.now() > 30 * 60_000, 'the next attempt is far away');
    capture.script.rcpt = undefined;
    const retry = await cli('queue', 'retry', id);
    assert.deepEqual([retry.code, retry.stdout], [0, `${id}: scheduled for immediate delivery\n`]);
    await attempted(id, 'delivered');
    assert.ok(capture.messages.some((m) => m.recipients.includes('retry@example.net')));
  });

  it('delete refuses without a terminal or --yes, deletes with --yes and logs it', async () => {
    capture.script.rcpt = new Map([['delete@example.net', [451, 'busy']]]);
    const id = await submit(daemon.port, 'alice@example.org', ['delete@example.net'], 'delete me');
    await attempted(id, 'transient');
    const refused = await cli('queue', 'delete', id);
    assert.equal(refused.code, 64);
    assert.match(refused.stderr, /pass --yes/);
    assert.equal((await show(id)).id, id, 'still queued');

    const deleted = await cli('queue', 'delete', id, '--yes');
    assert.deepEqual([deleted.code, deleted.stdout], [0, `${id}: deleted\n`]);
    const audit = auditLines(deleted.stderr).find((l) => l.event === 'queue-delete');
    assert.equal(audit?.queueId, id);
    assert.deepEqual(audit?.recipients, ['delete@example.net']);
    const journal = await daemon.waitForLog((l) => l.event === 'operator' && l.action === 'queue-delete' && l.queueId === id);
    assert.equal(journal.level, 40, 'the daemon logs the deletion as a warning');
    assert.equal((await cli('queue', 'show', id)).code, 66);
    assert.equal((await cli('queue', 'delete', id, '--yes')).code, 66);
  });

  it('bounce gives up now and the DSN reaches the sender through the upstream', async () => {
    capture.script.rcpt = new Map([['bounce@example.net', [451, 'mailbox busy']]]);
    const id = await submit(daemon.port, 'sender@example.org', ['bounce@example.net'], 'bounce me');
    await attempted(id, 'transient');
    const result = await cli('queue', 'bounce', id);
    assert.equal(result.code, 0, result.stderr);
    const dsnId = new RegExp(`^${id}: gave up on 1 recipient\\(s\\); bounce queued as ([0-9A-Z]{16})\\n$`).exec(result.stdout)?.[1];
    assert.ok(dsnId, result.stdout);
    assert.equal(auditLines(result.stderr).find((l) => l.event === 'queue-bounce')?.dsnQueueId, dsnId);
    await attempted(dsnId, 'delivered');
    const dsn = capture.messages.find((m) => m.recipients.includes('sender@example.org') && m.raw.includes(id));
    assert.ok(dsn, 'the DSN was delivered to the envelope sender');
    assert.equal(dsn.sender, '', 'from the null reverse-path <>');
    const report = await parseDsn(dsn.raw);
    assert.equal(report.reportType, 'delivery-status');
    assert.deepEqual(
      report.recipients.map((r) => [r['final-recipient'], r.status, r['diagnostic-code']]),
      [['rfc822; bounce@example.net', '5.0.0', 'x-mailshim; delivery cancelled by the mail administrator; last attempt: 451 4.3.0 mailbox busy']],
    );
    assert.match(report.returned?.body.toString() ?? '', /^Subject: bounce me$/m);
    assert.equal((await cli('queue', 'show', id)).code, 66, 'the bounced message left the queue');
  });

  it('flush --wait times out (exit 75) while the upstream fails, then drains once it recovers; retry --all counts', async () => {
    capture.script.rcpt = new Map([
      ['f1@example.net', [451, 'busy']],
      ['f2@example.net', [451, 'busy']],
    ]);
    const ids = [await submit(daemon.port, 'alice@example.org', ['f1@example.net'], 'flush 1'), await submit(daemon.port, 'alice@example.org', ['f2@example.net'], 'flush 2')];
    for (const id of ids) await attempted(id, 'transient');

    const timedOut = await cli('queue', 'flush', '--wait', '--timeout', '1s');
    assert.equal(timedOut.code, 75);
    assert.match(timedOut.stdout, /^flush: 2 message\(s\) to deliver\n/);
    assert.match(timedOut.stderr, /2 left/);
    assert.match(timedOut.stderr, /timed out with 2 message\(s\) still queued/);

    capture.script.rcpt = undefined;
    const all = await cli('queue', 'retry', '--all');
    assert.equal(all.code, 0);
    assert.match(all.stdout, /^\d+ message\(s\) scheduled for immediate delivery\n$/);
    const drained = await cli('queue', 'flush', '--wait', '--timeout', '30s');
    assert.equal(drained.code, 0, drained.stderr);
    assert.match(drained.stdout, /flush: queue drained\n$/);
    assert.match(drained.stderr, /\[#{30}\] 0 left/);
    for (const id of ids) assert.equal((await cli('queue', 'show', id)).code, 66);
  });
});
