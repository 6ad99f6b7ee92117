/**
 * The webhook listener over real HTTP: 401 and nothing recorded for anything unverified (forged,
 * replayed, stale), 2xx only once the sink has recorded, a failed record answered 5xx and the
 * provider's retry let in, bodies capped, SNS subscriptions confirmed and certificates fetched
 * through the loopback override; and the [events]/webhook_* configuration keys.
 */
import assert from 'node:assert/strict';
import { chmodSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { test } from 'node:test';
import { parseConfig } from '../src/config/load.js';
import { maskedConfig } from '../src/config/mask.js';
import { permissionProblems } from '../src/config/permissions.js';
import type { RestUpstreamConfig } from '../src/config/types.js';
import { EventsListener, type EventSink } from '../src/events/listener.js';
import { signMailgun } from '../src/events/providers/mailgun.js';
import type { SnsMessage } from '../src/events/sns.js';
import type { ProviderEvent } from '../src/events/types.js';
import { createLogger } from '../src/log.js';
import { snsTestCertificate } from './helpers/sns.js';
import { tempDir } from './helpers/tmp.js';
import { mailgunHardBounce, mailgunWebhook } from './helpers/webhooks.js';

const KEY = 'mailgun-webhook-signing-key';

function config(dir: string, extra = '', eventsExtra = ''): string {
  writeFileSync(join(dir, 'mg.key'), `${KEY}\n`, { mode: 0o600 });
  return `[spool]
path = "${dir}/spool"
[events]
address = "127.0.0.1:0"
max_body = "4KB"
${eventsExtra}
[[upstream]]
name = "mg"
type = "mailgun"
api_key = "\${MG}"
domain = "mg.example.org"
webhook_signing_key_file = "mg.key"
${extra}
`;
}

const mailgunBody = (token: string, extra: object = {}, key = KEY) =>
  mailgunWebhook(key, token, { ...mailgunHardBounce(token, 'alice@example.com', '<20130503192659.13651.20287@mg.example.org>', '5.1.1 unknown user'), ...extra });

async function startListener(t: { after: (fn: () => unknown) => void }, dir: string, source: string, sink: EventSink) {
  const cfg = parseConfig(source, join(dir, 'mailshim.toml'), { MG: 'k' });
  const listener = new EventsListener({ config: cfg.events!, upstreams: cfg.upstreams, sink, log: createLogger('silent') });
  const address = await listener.start();
  t.after(() => listener.close());
  const post = (path: string, body: string, headers: Record<string, string> = {}) =>
    fetch(`http://127.0.0.1:${address.port}${path}`, { method: 'POST', body, headers: { 'content-type': 'application/json', ...headers } });
  return { listener, post, cfg };
}

test('signed Mailgun event: recorded then 200; replayed, forged or stale: 401 and nothing recorded', async (t) => {
  const dir = tempDir();
  t.after(dir.cleanup);
  const recorded: ProviderEvent[][] = [];
  const { post } = await startListener(t, dir.path, config(dir.path), async (_u, events) => void recorded.push(events));
  const body = mailgunBody('token-1');
  assert.equal((await post('/events/mg', body)).status, 200);
  assert.equal(recorded.length, 1);
  assert.equal(recorded[0]![0]!.type, 'hard_bounce');
  assert.equal(recorded[0]![0]!.providerMessageId, '20130503192659.13651.20287@mg.example.org');
  assert.equal((await post('/events/mg', body)).status, 401, 'replayed token');
  assert.equal((await post('/events/mg', mailgunBody('token-2', {}, 'wrong-key'))).status, 401, 'forged');
  const stale = JSON.parse(mailgunBody('token-3')) as { signature: { timestamp: string; signature: string } };
  stale.signature.timestamp = String(Math.floor(Date.now() / 1000) - 3600);
  stale.signature.signature = signMailgun(KEY, stale.signature.timestamp, 'token-3');
  assert.equal((await post('/events/mg', JSON.stringify(stale))).status, 401, 'stale');
  assert.equal((await post('/events/mg', 'not json')).status, 401);
  assert.equal(recorded.length, 1, 'nothing unverified was recorded');
  assert.equal((await post('/events/nope', body)).status, 404);
  assert.equal((await fetch((await post('/events/mg', '')).url, { method: 'GET' })).status, 405);
  assert.equal((await post('/events/mg', mailgunBody('token-4', { padding: 'x'.repeat(5000) }))).status, 413, 'over max_body');
  assert.equal(recorded.length, 1);
});

test("the answer waits for the record; a failed record is 500 and the provider's retry of the same request is let in", async (t) => {
  const dir = tempDir();
  t.after(dir.cleanup);
  let release!: () => void;
  let fail = true;
  const recorded: ProviderEvent[][] = [];
  const { post } = await startListener(t, dir.path, config(dir.path), (_u, events) => {
    if (fail) return Promise.reject(new Error('spool busy'));
    return new Promise<void>((resolve) => {
      release = () => {
        recorded.push(events);
        resolve();
      };
    });
  });
  const body = mailgunBody('token-retry');
  assert.equal((await post('/events/mg', body)).status, 500);
  fail = false;
  let answered = false;
  const pending = post('/events/mg', body).then((r) => {
    answered = true;
    return r.status;
  });
  while (!release && !answered) await new Promise((r) => setImmediate(r));
  assert.ok(release, `the retry reached the sink (it was answered ${answered ? await pending : '-'} instead)`);
  await new Promise((r) => setTimeout(r, 50)); // give a premature answer the chance to arrive
  assert.equal(answered, false, 'no 2xx before the events are recorded');
  release();
  assert.equal(await pending, 200);
  assert.equal(recorded.length, 1);
});

test('SES: a SubscriptionConfirmation is verified, then confirmed by GET of its SubscribeURL (through the loopback override); notifications are recorded', async (t) => {
  const dir = tempDir();
  t.after(dir.cleanup);
  const { pem, sign } = snsTestCertificate(dir.path);
  const gets: string[] = [];
  const aws = createServer((request, response) => {
    gets.push(request.url!);
    if (request.url!.endsWith('.pem')) response.end(pem);
    else response.end('<ConfirmSubscriptionResponse/>');
  });
  await new Promise<void>((r) => aws.listen(0, '127.0.0.1', () => r()));
  t.after(() => new Promise<void>((r) => aws.close(() => r())));
  const topic = 'arn:aws:sns:eu-west-1:123456789012:ses-events';
  const source =
    `[spool]\npath = "${dir.path}/spool"\n[events]\naddress = "127.0.0.1:0"\nsns_certificate_origin = "http://127.0.0.1:${(aws.address() as AddressInfo).port}"\n` +
    `[[upstream]]\nname = "ses"\ntype = "ses"\naccess_key_id = "AKIA"\nsecret_access_key = "\${MG}"\nregion = "eu-west-1"\nwebhook_topic_arn = ["${topic}"]\n`;
  const recorded: Array<[RestUpstreamConfig, ProviderEvent[]]> = [];
  const { post } = await startListener(t, dir.path, source, async (u, events) => void recorded.push([u, events]));
  const signed = (m: Omit<SnsMessage, 'Signature'>) => JSON.stringify({ ...m, Signature: sign(m as SnsMessage) });
  const base = { TopicArn: topic, Timestamp: new Date().toISOString(), SignatureVersion: '1', SigningCertURL: 'https://sns.eu-west-1.amazonaws.com/SimpleNotificationService-test.pem' };
  const confirm = signed({
    ...base,
    Type: 'SubscriptionConfirmation',
    MessageId: 'c1',
    Token: 'tok',
    Message: 'You have chosen to subscribe',
    SubscribeURL: 'https://sns.eu-west-1.amazonaws.com/?Action=ConfirmSubscription&TopicArn=x&Token=tok',
  });
  assert.equal((await post('/events/ses', confirm, { 'x-amz-sns-message-type': 'SubscriptionConfirmation' })).status, 200);
  assert.deepEqual(gets, ['/SimpleNotificationService-test.pem', '/?Action=ConfirmSubscription&TopicArn=x&Token=tok']);
  const bounce = {
    notificationType: 'Bounce',
    bounce: { bounceType: 'Permanent', bounceSubType: 'General', bouncedRecipients: [{ emailAddress: 'jane@example.com', status: '5.1.1', diagnosticCode: 'smtp; 550 5.1.1 user unknown' }] },
    mail: { messageId: 'ses-id-1', destination: ['jane@example.com'] },
  };
  const notification = signed({ ...base, Type: 'Notification', MessageId: 'n1', Message: JSON.stringify(bounce) });
  assert.equal((await post('/events/ses', notification)).status, 200);
  assert.equal((await post('/events/ses', notification)).status, 401, 'replayed SNS message');
  assert.equal((await post('/events/ses', notification.replace('user unknown', 'user known'))).status, 401, 'tampered');
  assert.deepEqual(
    recorded.map(([, e]) => e.map((x) => [x.type, x.recipient, x.providerMessageId])),
    [[], [['hard_bounce', 'jane@example.com', 'ses-id-1']]],
  );
  assert.equal(gets.filter((g) => g.endsWith('.pem')).length, 1, 'the certificate is cached');
});

test('config: [events] defaults to loopback 127.0.0.1:8025; webhook keys per provider method; secret files must be private; sns_certificate_origin loopback only', () => {
  const dir = tempDir();
  try {
    const cfg = parseConfig(config(dir.path).replace('address = "127.0.0.1:0"\n', ''), join(dir.path, 'mailshim.toml'), { MG: 'k' });
    assert.equal(cfg.events!.address, '127.0.0.1:8025');
    assert.equal((cfg.upstreams[0] as RestUpstreamConfig).webhookSigningKey, KEY);
    const masked = maskedConfig(cfg);
    assert.ok(!masked.includes(KEY) && /webhook_signing_key = "\*+"/.test(masked) && /\[events\]/.test(masked), 'check-config masks the webhook key and shows [events]');
    chmodSync(join(dir.path, 'mg.key'), 0o644);
    assert.match(permissionProblems(cfg).join('\n'), /mg\.key holds a secret/);
    assert.throws(() => parseConfig(config(dir.path, 'webhook_username = "u"'), join(dir.path, 'm.toml'), { MG: 'k' }), /webhook_username/);
    const postmark = `[[upstream]]\nname = "pm"\ntype = "postmark"\napi_key = "\${MG}"\nwebhook_username = "hook"\nwebhook_password = "\${MG}"\n`;
    const pm = parseConfig(`[events]\n${postmark}`, join(dir.path, 'm.toml'), { MG: 'k' }).upstreams[0] as RestUpstreamConfig;
    assert.deepEqual([pm.webhookUsername, pm.webhookPassword], ['hook', 'k']);
    assert.throws(() => parseConfig(`[events]\n${postmark.replace('webhook_password = "${MG}"\n', '')}`, join(dir.path, 'm.toml'), { MG: 'k' }), /go together/);
    assert.throws(() => parseConfig(config(dir.path, '', 'sns_certificate_origin = "https://attacker.example"'), join(dir.path, 'm.toml'), { MG: 'k' }), /loopback/);
    const open = parseConfig(config(dir.path).replace('127.0.0.1:0', '0.0.0.0:8025'), join(dir.path, 'm.toml'), { MG: 'k' });
    assert.match(open.warnings.join('\n'), /not loopback.*reverse proxy/);
  } finally {
    dir.cleanup();
  }
});
