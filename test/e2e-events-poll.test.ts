/**
 * poll = true inside the real daemon, with no [events] section (a relay behind NAT): a bounce in
 * the provider's pull API (a fake) reaches the event log and metrics once; a refused token shows
 * in `mailshim status` as a WARNING without touching delivery; SIGHUP turns polling off and on.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { test } from 'node:test';
import { postmarkBounce, startPostmarkPullFake } from './fakes/pull/postmark.js';
import { runCli } from './helpers/cli.js';
import { relayConfig } from './helpers/config.js';
import { startDaemon, writeConfig } from './helpers/daemon.js';
import { tempDir } from './helpers/tmp.js';

test('daemon: poll = true without [events] hands pulled bounces on once; a refused token is a status WARNING; SIGHUP reconfigures', async (t) => {
  const dir = tempDir();
  t.after(dir.cleanup);
  const fake = await startPostmarkPullFake('pm-token');
  t.after(() => fake.close());
  const at = Date.now() - 60_000;
  fake.bounces.push({ item: postmarkBounce('0a1b2c3d-e2e', 'gone@example.net', at), at });
  const upstreams = (poll: string) =>
    `[[upstream]]\nname = "pm"\ntype = "postmark"\napi_key = "pm-token"\nendpoint = "${fake.url}"\n${poll}\n` +
    `[[upstream]]\nname = "pm-wrong"\ntype = "postmark"\napi_key = "not-the-token"\nendpoint = "${fake.url}"\npoll = true\npoll_interval = "1s"\n`;
  const toml = (poll: string) => relayConfig({ spool: `${dir.path}/spool`, extra: `[metrics]\naddress = "127.0.0.1:0"\n\n[control]\nsocket = "${dir.path}/ctl.sock"`, upstreams: upstreams(poll) });
  const config = writeConfig(dir.path, toml('poll = true\npoll_interval = "1s"'));
  const daemon = await startDaemon(config);
  t.after(() => daemon.stop());
  const metricsPort = (await daemon.waitForLog((l) => l.event === 'metrics')).port;

  const line = await daemon.waitForLog((l) => l.event === 'provider-event');
  assert.deepEqual([line.upstream, line.type, line.providerMessageId, line.recipient], ['pm', 'hard_bounce', '0a1b2c3d-e2e', 'gone@example.net']);
  await daemon.waitForLog((l) => l.event === 'poll-config-error' && l.upstream === 'pm-wrong');
  // Several more rounds: the same bounce is not handed on again.
  const rounds = fake.received.length;
  while (fake.received.filter((r) => r.headers['x-postmark-server-token'] === 'pm-token').length < 3) await new Promise((r) => setTimeout(r, 100));
  assert.ok(fake.received.length > rounds);
  assert.equal(daemon.logs.filter((l) => l.event === 'provider-event').length, 1);
  const metrics = await (await fetch(`http://127.0.0.1:${String(metricsPort)}/metrics`)).text();
  assert.match(metrics, /mailshim_provider_events_total\{upstream="pm",type="hard_bounce"\} 1/);

  const status = await runCli(['status', '--config', config]);
  assert.equal(status.code, 1, status.stdout + status.stderr);
  assert.match(status.stdout, /WARNING: event polling refused for pm-wrong: GET http:\/\/127\.0\.0\.1:\d+\/bounces answered HTTP 401/);
  assert.match(status.stdout, /Event polling:\n {2}pm {2}every 1s {2}ok, last success .* ago, 1 event\(s\)\n {2}pm-wrong {2}every 1s {2}config-error/);
  assert.ok(!daemon.output().includes('not-the-token'), 'API keys are not logged');

  // SIGHUP without poll on "pm": its poller stops; the other keeps going.
  writeFileSync(config, toml(''));
  daemon.child.kill('SIGHUP');
  await daemon.waitForLog((l) => l.event === 'reloaded');
  const json = JSON.parse((await runCli(['status', '--json', '--config', config])).stdout) as { polls: Array<{ upstream: string }> };
  assert.deepEqual(
    json.polls.map((p) => p.upstream),
    ['pm-wrong'],
  );
  const tokenCount = (token: string) => fake.received.filter((r) => r.headers['x-postmark-server-token'] === token).length;
  const after = tokenCount('pm-token');
  // Two more rounds of the other poller (1 s apart) is time enough for "pm" to have polled again had it not stopped.
  const wrong = tokenCount('not-the-token');
  while (tokenCount('not-the-token') < wrong + 2) await new Promise((r) => setTimeout(r, 100));
  assert.equal(tokenCount('pm-token'), after, 'no more polling for pm');
});
