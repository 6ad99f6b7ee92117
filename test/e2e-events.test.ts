/**
 * The webhook listener inside the real daemon: [events] starts it, a signed provider event is
 * answered 200, logged and counted in mailshim_provider_events_total{upstream,type}; a forged one
 * gets 401 and changes neither the log nor the counter.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { relayConfig } from './helpers/config.js';
import { startDaemon, writeConfig } from './helpers/daemon.js';
import { runCli } from './helpers/cli.js';
import { closedPort, tempDir } from './helpers/tmp.js';
import { mailgunHardBounce, mailgunWebhook } from './helpers/webhooks.js';

const KEY = 'e2e-mailgun-signing-key';

const event = (token: string, key = KEY) => mailgunWebhook(key, token, mailgunHardBounce(token, 'gone@example.net', '<20261127.1@mg.example.org>', '5.1.1 mailbox unavailable'));

test('daemon: [events] listener records verified events in the log and metrics; forged ones get 401', async (t) => {
  const dir = tempDir();
  t.after(dir.cleanup);
  writeFileSync(join(dir.path, 'mg-webhook.key'), KEY, { mode: 0o600 });
  // A fixed port: `mailshim events test` finds the listener through the config.
  const eventsPort = await closedPort();
  const config = writeConfig(
    dir.path,
    relayConfig({
      spool: `${dir.path}/spool`,
      extra: `[metrics]\naddress = "127.0.0.1:0"\n\n[events]\naddress = "127.0.0.1:${eventsPort}"\npublic_url = "https://relay.example.com/events"\n\n[control]\nsocket = "${dir.path}/ctl.sock"`,
      upstreams: `[[upstream]]\nname = "mg"\ntype = "mailgun"\napi_key = "key-x"\ndomain = "mg.example.org"\nendpoint = "http://127.0.0.1:1"\nwebhook_signing_key_file = "${dir.path}/mg-webhook.key"\n`,
    }),
  );
  const daemon = await startDaemon(config);
  t.after(() => daemon.stop());
  const events = await daemon.waitForLog((l) => l.event === 'events-listening');
  const metricsPort = (await daemon.waitForLog((l) => l.event === 'metrics')).port;
  const post = (body: string) => fetch(`http://127.0.0.1:${String(events.port)}/events/mg`, { method: 'POST', body, headers: { 'content-type': 'application/json' } });
  const counter = async () => /mailshim_provider_events_total\{upstream="mg",type="hard_bounce"\} (\d+)/.exec(await (await fetch(`http://127.0.0.1:${String(metricsPort)}/metrics`)).text())?.[1];

  assert.equal((await post(event('forged', 'not-the-key'))).status, 401);
  assert.equal(await counter(), undefined);
  assert.equal((await post(event('t-1'))).status, 200);
  const line = await daemon.waitForLog((l) => l.event === 'provider-event');
  assert.equal(line.type, 'hard_bounce');
  assert.equal(line.recipient, 'gone@example.net');
  assert.equal(line.providerMessageId, '20261127.1@mg.example.org');
  assert.equal(await counter(), '1');
  assert.equal((await post(event('t-1'))).status, 401, 'replay');
  assert.equal(await counter(), '1');
  assert.equal(daemon.logs.filter((l) => l.event === 'provider-event').length, 1);
  assert.ok(!daemon.output().includes(KEY), 'the signing key is never logged');

  // mailshim events test: a correctly signed sample reaches the listener and is recorded.
  const sample = await runCli(['events', 'test', 'mg', '--config', config]);
  assert.equal(sample.code, 0, sample.stdout + sample.stderr);
  assert.match(sample.stdout, /mg: 200 ok — the listener verified and recorded/);
  const recorded = await daemon.waitForLog((l) => l.event === 'provider-event' && l.providerMessageId === 'mailshim-events-test');
  assert.equal(recorded.type, 'delivered');
  // test-upstream prints the webhook URL and the Mailgun console steps.
  const tu = await runCli(['test-upstream', 'mg', '--config', config]);
  assert.match(tu.stdout, /webhook URL: https:\/\/relay\.example\.com\/events\/mg; listener 127\.0\.0\.1:\d+/);
  assert.match(tu.stdout, /Mailgun: Sending → Webhooks → add https:\/\/relay\.example\.com\/events\/mg/);
});
