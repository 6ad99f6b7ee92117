/**
 * Webhook verification, one block per provider, each against the method the provider documents
 * (pages cited in src/events/providers/*.ts). Where the provider publishes a signed test vector it
 * is used as a known answer, so the check is proven against a signature we did not make.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { signMailgun, verifyMailgun } from '../src/events/providers/mailgun.js';
import { verifySendgrid } from '../src/events/providers/sendgrid.js';
import { signSvix, verifyResend } from '../src/events/providers/resend.js';
import { verifyPostmark } from '../src/events/providers/postmark.js';
import { verifyBrevo } from '../src/events/providers/brevo.js';
import { verifySes } from '../src/events/providers/ses.js';
import type { SnsMessage } from '../src/events/sns.js';
import { snsTestCertificate } from './helpers/sns.js';
import { WEBHOOK_PROVIDERS } from '../src/events/providers/index.js';
import { ReplayGuard, TIMESTAMP_TOLERANCE_MS } from '../src/events/verify.js';
import { WebhookRejected, type WebhookRequest } from '../src/events/types.js';
import { tempDir } from './helpers/tmp.js';

const req = (body: string | Buffer, headers: Record<string, string> = {}): WebhookRequest => ({ body: Buffer.from(body), headers });
const rejects = (fn: () => unknown, why: RegExp) => assert.throws(fn, (e: unknown) => e instanceof WebhookRejected && why.test(e.reason));

test('Mailgun: HMAC-SHA256(timestamp+token); forged, stale and reused tokens are refused', () => {
  const key = 'mailgun-signing-key';
  const now = 1_529_006_854_000;
  const body = (ts: string, token: string, sig: string) => JSON.stringify({ signature: { timestamp: ts, token, signature: sig }, 'event-data': { event: 'delivered' } });
  const replay = new ReplayGuard();
  const good = body('1529006854', 'tok-1', signMailgun(key, '1529006854', 'tok-1'));
  verifyMailgun(req(good), { signingKey: key }, now, replay);
  rejects(() => verifyMailgun(req(good), { signingKey: key }, now, replay), /replayed/);
  rejects(() => verifyMailgun(req(body('1529006854', 'tok-2', signMailgun('other', '1529006854', 'tok-2'))), { signingKey: key }, now, replay), /bad signature/);
  rejects(() => verifyMailgun(req(body('1529006854', 'tok-3', signMailgun(key, '1529006854', 'tok-3'))), { signingKey: key }, now + TIMESTAMP_TOLERANCE_MS + 1000, replay), /stale/);
  rejects(() => verifyMailgun(req(body('1529006854', 'tok-4', signMailgun(key, '1529006854', 'tok-4'))), {}, now, replay), /no webhook_signing_key/);
  // A refused request claims nothing: the same token, correctly signed and fresh, still passes.
  verifyMailgun(req(body('1529006854', 'tok-2', signMailgun(key, '1529006854', 'tok-2'))), { signingKey: key }, now, replay);
});

test("SendGrid: ECDSA P-256 over timestamp+payload, checked against SendGrid's own signed test vector", () => {
  // sendgrid/sendgrid-ruby spec/fixtures/event_webhook.rb (the fixture its SDK tests verify): a real
  // dropped event signed by SendGrid's key, body ending in CRLF as SendGrid posts it.
  const publicKey = 'MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE83T4O/n84iotIvIW4mdBgQ/7dAfSmpqIM8kF9mN1flpVKS3GRqe62gw+2fNNRaINXvVpiglSI8eNEc6wEA3F+g==';
  const signature = 'MEUCIGHQVtGj+Y3LkG9fLcxf3qfI10QysgDWmMOVmxG0u6ZUAiEAyBiXDWzM+uOe5W0JuG+luQAbPIqHh89M15TluLtEZtM=';
  const timestamp = '1600112502';
  const payload =
    JSON.stringify([
      {
        email: 'hello@world.com',
        event: 'dropped',
        reason: 'Bounced Address',
        sg_event_id: 'ZHJvcC0xMDk5NDkxOS1MUnpYbF9OSFN0T0doUTRrb2ZTbV9BLTA',
        sg_message_id: 'LRzXl_NHStOGhQ4kofSm_A.filterdrecv-p3mdw1-756b745b58-kmzbl-18-5F5FC76C-9.0',
        'smtp-id': '<LRzXl_NHStOGhQ4kofSm_A@ismtpd0039p1iad1.sendgrid.net>',
        timestamp: 1600112492,
      },
    ]) + '\r\n';
  const headers = { 'x-twilio-email-event-webhook-signature': signature, 'x-twilio-email-event-webhook-timestamp': timestamp };
  const now = 1_600_112_502_000;
  verifySendgrid(req(payload, headers), { signingKey: publicKey }, now);
  rejects(() => verifySendgrid(req(payload.replace('hello@', 'hellO@'), headers), { signingKey: publicKey }, now), /bad signature/);
  rejects(() => verifySendgrid(req(payload, { ...headers, 'x-twilio-email-event-webhook-timestamp': '1600112503' }), { signingKey: publicKey }, now), /bad signature/);
  // SendGrid's "failing public key" from the same fixture.
  rejects(
    () => verifySendgrid(req(payload, headers), { signingKey: 'MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEqTxd43gyp8IOEto2LdIfjRQrIbsd4SXZkLW6jDutdhXSJCWHw8REntlo7aNDthvj+y7GjUuFDb/R1NGe1OPzpA==' }, now),
    /bad signature/,
  );
  rejects(() => verifySendgrid(req(payload, headers), { signingKey: publicKey }, now + TIMESTAMP_TOLERANCE_MS + 1000), /stale/);
  rejects(() => verifySendgrid(req(payload, { 'x-twilio-email-event-webhook-timestamp': timestamp }), { signingKey: publicKey }, now), /no signature/);
});

test("Resend (Svix): v1 HMAC of id.timestamp.body, checked against Svix's published example; stale and replayed ids refused", () => {
  // https://docs.svix.com/receiving/verifying-payloads/how-manual (the worked example).
  const secret = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw';
  const body = '{"test": 2432232314}';
  assert.equal(signSvix(secret, 'msg_p5jXN8AQM9LWM0D4loKWxJek', '1614265330', Buffer.from(body)), 'v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=');
  const headers = {
    'svix-id': 'msg_p5jXN8AQM9LWM0D4loKWxJek',
    'svix-timestamp': '1614265330',
    'svix-signature': 'v1,bm9ldHUjKzFob2VudXRob2VodWUzMjRvdWVvdW9ldQo= v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=',
  };
  const now = 1_614_265_330_000;
  const replay = new ReplayGuard();
  verifyResend(req(body, headers), { signingKey: secret }, now, replay);
  rejects(() => verifyResend(req(body, headers), { signingKey: secret }, now, replay), /replayed/);
  rejects(() => verifyResend(req('{"test": 2432232315}', { ...headers, 'svix-id': 'msg_2' }), { signingKey: secret }, now, replay), /bad signature/);
  rejects(() => verifyResend(req(body, { ...headers, 'svix-id': 'msg_3' }), { signingKey: secret }, now + TIMESTAMP_TOLERANCE_MS + 1000, replay), /stale/);
});

test('Basic auth providers (Postmark, Mailjet, SparkPost, Brevo): exact credentials only; Brevo alternatively a bearer token', () => {
  const secrets = { username: 'hook', password: 's3cret:with:colons' };
  const auth = (u: string, p: string) => ({ authorization: 'Basic ' + Buffer.from(`${u}:${p}`).toString('base64') });
  for (const type of ['postmark', 'mailjet', 'sparkpost', 'brevo'] as const) {
    const verify = (headers: Record<string, string>) => WEBHOOK_PROVIDERS[type].verify(req('{}', headers), secrets, undefined as never);
    assert.equal(verify(auth('hook', 's3cret:with:colons')), undefined, 'accepted, synchronously');
    rejects(() => verify(auth('hook', 's3cret:with:colon')), /wrong Basic/);
    rejects(() => verify(auth('Hook', 's3cret:with:colons')), /wrong Basic/);
    rejects(() => verify({}), /no Basic/);
  }
  rejects(() => verifyPostmark(req('{}', auth('a', 'b')), {}), /no webhook_username/);
  verifyBrevo(req('{}', { authorization: 'Bearer tok-123' }), { token: 'tok-123' });
  rejects(() => verifyBrevo(req('{}', { authorization: 'Bearer tok-124' }), { token: 'tok-123' }), /bearer/);
  rejects(() => verifyBrevo(req('{}', auth('hook', 's3cret:with:colons')), { ...secrets, token: 'tok-123' }), /bearer/);
});

test('SES via SNS: signature by the certificate at an sns.<region>.amazonaws.com URL, configured topic only, fresh, not replayed', async (t) => {
  const dir = tempDir();
  t.after(dir.cleanup);
  const { pem, sign } = snsTestCertificate(dir.path);
  const topic = 'arn:aws:sns:eu-west-1:123456789012:ses-events';
  const now = Date.now(); // the test certificate is valid from now on
  const fetched: string[] = [];
  const fetchCertificate = async (url: URL) => {
    fetched.push(url.href);
    return pem;
  };
  const message = (over: Partial<SnsMessage> = {}): SnsMessage => {
    const m: SnsMessage = {
      Type: 'Notification',
      MessageId: 'm-' + Math.random(),
      TopicArn: topic,
      Message: '{"notificationType":"Delivery"}',
      Timestamp: new Date(now - 60_000).toISOString(),
      SignatureVersion: '2',
      Signature: '',
      SigningCertURL: 'https://sns.eu-west-1.amazonaws.com/SimpleNotificationService-abc.pem',
      ...over,
    };
    return { ...m, Signature: over.Signature ?? sign(m) };
  };
  const verify = (m: SnsMessage, replay = new ReplayGuard(), topics = [topic]) => verifySes(req(JSON.stringify(m)), { topicArns: topics }, now, replay, fetchCertificate);
  const rejectsAsync = (p: Promise<unknown>, why: RegExp) => assert.rejects(p, (e: unknown) => e instanceof WebhookRejected && why.test(e.reason));

  await verify(message());
  await verify(message({ SignatureVersion: '1', Subject: 'Amazon SES Email Event Notification' }));
  await verify(message({ Type: 'SubscriptionConfirmation', Token: 'tok', SubscribeURL: 'https://sns.eu-west-1.amazonaws.com/?Action=ConfirmSubscription&Token=tok' }));
  const once = message();
  const replay = new ReplayGuard();
  await verify(once, replay);
  await rejectsAsync(verify(once, replay), /replayed/);
  await rejectsAsync(verify({ ...message(), Message: '{"notificationType":"Bounce"}' }), /bad SNS signature/);
  await rejectsAsync(verify(message({ SigningCertURL: 'https://sns.eu-west-1.amazonaws.com.evil.example/x.pem' })), /not on sns/);
  await rejectsAsync(verify(message({ SigningCertURL: 'https://sns.us-east-1.amazonaws.com/x.pem' })), /not on sns\.eu-west-1/);
  await rejectsAsync(verify(message({ SigningCertURL: 'http://sns.eu-west-1.amazonaws.com/x.pem' })), /not on sns/);
  await rejectsAsync(verify(message({ Type: 'SubscriptionConfirmation', Token: 't', SubscribeURL: 'https://attacker.example/confirm' })), /SubscribeURL/);
  await rejectsAsync(verify(message(), new ReplayGuard(), ['arn:aws:sns:eu-west-1:123456789012:other']), /not in webhook_topic_arn/);
  await rejectsAsync(verify(message({ Timestamp: new Date(now - 2 * 3600_000).toISOString() })), /stale/);
  assert.ok(
    fetched.every((u) => new URL(u).hostname === 'sns.eu-west-1.amazonaws.com'),
    'no certificate fetched from any other host',
  );
});

test("events test samples: each one passes its provider's verification and parses as one delivered event; SendGrid and SES say why there is none", async () => {
  const { sampleEvent } = await import('../src/events/samples.js');
  const secrets = { signingKey: 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw', username: 'u', password: 'p' };
  for (const type of ['mailgun', 'resend', 'postmark', 'mailjet', 'brevo', 'sparkpost', 'sendgrid', 'ses'] as const) {
    const sample = sampleEvent({ type, name: type } as never, secrets, 'to@example.org');
    if ('unavailable' in sample) {
      assert.ok(type === 'sendgrid' || type === 'ses', type);
      continue;
    }
    const request = req(sample.body, sample.headers);
    const now = Date.now();
    await WEBHOOK_PROVIDERS[type].verify(request, secrets, { now, replay: new ReplayGuard(), snsReplay: new ReplayGuard(), fetchCertificate: async () => '' });
    assert.deepEqual(
      WEBHOOK_PROVIDERS[type].parse(request).events.map((e) => [e.type, e.recipient, e.providerMessageId]),
      [['delivered', 'to@example.org', 'mailshim-events-test']],
      type,
    );
  }
});
