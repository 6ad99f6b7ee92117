/** `mailshim status`, `reload` and the [metrics] endpoint against a running daemon. */
import assert from 'node:assert/strict';
import { readFileSync, statSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { startCapture, type Capture } from './helpers/capture.js';
import { runCli } from './helpers/cli.js';
import { relayConfig } from './helpers/config.js';
import { startDaemon, writeConfig, type RunningDaemon } from './helpers/daemon.js';
import { submit } from './helpers/submit.js';
import { tempDir } from './helpers/tmp.js';

async function get(url: string): Promise<{ status: number; type: string; text: string }> {
  const response = await fetch(url);
  return { status: response.status, type: response.headers.get('content-type') ?? '', text: await response.text() };
}

/** The value of one Prometheus sample line, e.g. sample(text, 'x_total{upstream="a"}'). */
function sample(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(series + ' '));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

describe('status and metrics against a running daemon', () => {
  let capture: Capture;
  let daemon: RunningDaemon;
  let dir: ReturnType<typeof tempDir>;
  let config: string;
  let metricsUrl: string;
  const cli = (...args: string[]) => runCli([...args, '--config', config]);

  before(async () => {
    dir = tempDir();
    capture = await startCapture();
    config = writeConfig(
      dir.path,
      relayConfig({
        spool: `${dir.path}/spool`,
        upstreamPort: capture.port,
        retry: { initial: '1h', max: '2h', age: '5d' },
        extra: `[metrics]\naddress = "127.0.0.1:0"\n\n[control]\nsocket = "${dir.path}/ctl.sock"\nmode = "0660"`,
      }),
    );
    daemon = await startDaemon(config);
    const line = await daemon.waitForLog((l) => l.event === 'metrics');
    metricsUrl = `http://127.0.0.1:${String(line.port)}`;
  });

  after(async () => {
    await daemon.stop();
    await capture.close();
    dir.cleanup();
  });

  it('the control socket has the configured mode', () => {
    const stat = statSync(`${dir.path}/ctl.sock`);
    assert.ok(stat.isSocket());
    assert.equal(stat.mode & 0o777, 0o660);
  });

  it('status: running, pid, version, listeners, healthy upstream, exit 0', async () => {
    const text = await cli('status');
    assert.equal(text.code, 0, text.stdout + text.stderr);
    assert.match(text.stdout, new RegExp(`^mailshim \\d+\\.\\d+\\.\\d+: running, pid ${daemon.child.pid}, up \\d+s`));
    assert.match(text.stdout, new RegExp(`^  127\\.0\\.0\\.1:${daemon.port}$`, 'm'));
    assert.match(text.stdout, new RegExp(`^  capture  smtp 127\\.0\\.0\\.1:${capture.port} \\(none\\)  ok, last success never$`, 'm'));
    assert.match(text.stdout, /^OK: 0 message\(s\) queued$/m);
    const json = await cli('status', '--json');
    assert.equal(json.code, 0);
    const report = JSON.parse(json.stdout) as Record<string, unknown> & { listeners: Array<Record<string, unknown>>; upstreams: Array<Record<string, unknown>>; queue: Record<string, unknown> };
    assert.equal(report.running, true);
    assert.equal(report.pid, daemon.child.pid);
    assert.deepEqual(report.listeners, [{ address: '127.0.0.1:0', host: '127.0.0.1', port: daemon.port, activated: false }]);
    assert.equal(report.upstreams[0]!.state, 'ok');
    assert.equal(report.queue.messages, 0);
  });

  it('metrics count accepted and delivered mail by upstream and never expose addresses or content', async () => {
    const id = await submit(daemon.port, 'secret-sender@example.org', ['secret-rcpt@example.net'], 'Top secret subject');
    await daemon.waitForLog((l) => l.event === 'delivery' && l.queueId === id && l.result === 'delivered');
    const metrics = await get(`${metricsUrl}/metrics`);
    assert.equal(metrics.status, 200);
    assert.match(metrics.type, /^text\/plain; version=0\.0\.4/);
    assert.equal(sample(metrics.text, 'mailshim_messages_accepted_total{origin="esmtp"}'), 1);
    assert.equal(sample(metrics.text, 'mailshim_recipients_delivered_total{upstream="capture"}'), 1);
    assert.equal(sample(metrics.text, 'mailshim_delivery_attempt_duration_seconds_count{upstream="capture"}'), 1);
    assert.equal(sample(metrics.text, 'mailshim_delivery_delay_seconds_count{upstream="capture"}'), 1);
    assert.equal(sample(metrics.text, 'mailshim_queue_messages{state="pending"}'), 0);
    assert.equal(sample(metrics.text, 'mailshim_queue_oldest_message_age_seconds'), 0);
    for (const leak of ['secret', 'example.org', 'example.net', id]) assert.ok(!metrics.text.includes(leak), `metrics must not contain ${leak}`);
    const health = await get(`${metricsUrl}/healthz`);
    assert.deepEqual([health.status, health.text], [200, 'ok\n']);
    assert.equal((await get(`${metricsUrl}/nope`)).status, 404);
  });

  it('a transient failure is a WARNING (exit 1) with deferred counts; a configuration failure is CRITICAL (exit 2)', async () => {
    // An upstream-level failure (at MAIL FROM), not one mailbox's: that is what marks the upstream failing.
    capture.script.mail = [451, '4.3.2 system not accepting network messages'];
    const id = await submit(daemon.port, 'a@example.org', ['busy@example.net'], 'deferred one');
    await daemon.waitForLog((l) => l.event === 'delivery' && l.queueId === id && l.result === 'transient');
    const warning = await cli('status');
    assert.equal(warning.code, 1, warning.stdout);
    assert.match(warning.stdout, /capture .* failing, 1 consecutive failure\(s\), last error \d+s ago \(transient\): 451 /);
    assert.match(warning.stdout, /^Queue: 1 message\(s\): 0 pending, 1 deferred, 0 held; 0 being delivered; oldest \d+s$/m);
    assert.match(warning.stdout, /^WARNING: upstream capture failing/m);
    let metrics = (await get(`${metricsUrl}/metrics`)).text;
    assert.equal(sample(metrics, 'mailshim_recipients_deferred_total{upstream="capture"}'), 1);
    assert.equal(sample(metrics, 'mailshim_upstream_errors_total{upstream="capture",class="transient"}'), 1);
    assert.equal(sample(metrics, 'mailshim_queue_messages{state="deferred"}'), 1);
    assert.ok((sample(metrics, 'mailshim_queue_oldest_message_age_seconds') ?? -1) >= 0);

    capture.script.mail = [530, 'Authentication required'];
    assert.equal((await cli('queue', 'retry', id)).code, 0);
    await daemon.waitForLog((l) => l.event === 'delivery' && l.queueId === id && l.result === 'config');
    const critical = await cli('status', '--json');
    assert.equal(critical.code, 2, critical.stdout);
    const report = JSON.parse(critical.stdout) as { upstreams: Array<Record<string, unknown>>; summary: string };
    assert.equal(report.upstreams[0]!.state, 'config-error');
    assert.equal(report.upstreams[0]!.lastErrorClass, 'config');
    assert.match(report.summary, /^CRITICAL: upstream capture rejects our configuration/);
    metrics = (await get(`${metricsUrl}/metrics`)).text;
    assert.equal(sample(metrics, 'mailshim_upstream_errors_total{upstream="capture",class="config"}'), 1);
    assert.equal(sample(metrics, 'mailshim_recipients_bounced_total{upstream="capture"}'), undefined, 'nothing bounced');

    capture.script.mail = undefined;
    assert.equal((await cli('queue', 'retry', id)).code, 0);
    await daemon.waitForLog((l) => l.event === 'delivery' && l.queueId === id && l.result === 'delivered');
    assert.equal((await cli('status')).code, 0, 'healthy again after a success');
  });

  it('reload over the control socket reloads the config', async () => {
    const result = await cli('reload');
    assert.deepEqual([result.code, result.stdout], [0, 'reloaded\n']);
    await daemon.waitForLog((l) => l.event === 'reloaded');
  });

  it('status is CRITICAL (exit 2) once the daemon is down, and the socket is gone', async () => {
    assert.equal(await daemon.stop(), 0);
    const down = await cli('status');
    assert.equal(down.code, 2);
    assert.match(down.stdout, /^CRITICAL: the daemon is not running \(no answer on .*ctl\.sock: ENOENT\)$/m);
    assert.match(down.stdout, /^Queue: 0 message\(s\) waiting in .*\/spool \(0 held\)$/m, 'the spool is read directly');
    const json = await cli('status', '--json');
    assert.equal(json.code, 2);
    assert.equal((JSON.parse(json.stdout) as { running: boolean }).running, false);
    assert.equal((await cli('reload')).code, 69, 'reload: EX_UNAVAILABLE when the daemon is down');
  });

  it('after kill -9 the stale control socket is replaced on restart; a second daemon on the same socket is refused', async () => {
    const first = await startDaemon(config);
    await first.kill9();
    daemon = await startDaemon(config);
    const ok = await cli('status', '--json');
    assert.equal((JSON.parse(ok.stdout) as { pid: number }).pid, daemon.child.pid);
    const refused = (file: string) =>
      startDaemon(file).then(
        () => assert.fail('a second daemon must not start'),
        (error: Error) => error.message,
      );
    // The same config: refused by the spool lock before anything else.
    assert.match(await refused(config), /spool .* is locked by a mailshim daemon \(pid \d+\)/);
    // Another spool but the same control socket: refused by the socket check.
    const other = writeConfig(dir.path, readFileSync(config, 'utf8').replaceAll(`${dir.path}/spool`, `${dir.path}/other-spool`), 'other.toml');
    const second = await refused(other);
    assert.match(second, /another mailshim daemon answers on .*ctl\.sock/);
    assert.equal((await cli('status')).code, 0, 'the first daemon is unaffected');
  });
});
