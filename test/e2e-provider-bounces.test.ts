/**
 * Issue 17's "done when", for each of the eight REST providers, through the real daemon and the
 * provider's strict fake: a message to two recipients is delivered through the fake; then the
 * provider's documented hard-bounce webhook for ONE of them, signed as the provider signs it
 * (payload shapes as in test/events-parse.test.ts, pages cited in src/events/providers/*.ts),
 * produces exactly one notice to the original sender naming that recipient and the provider's
 * reason (parsed with mailparser). The same webhook again (401 where the provider has a nonce,
 * else 200) sends nothing more; a forged one is 401 and recorded nowhere; an unknown message id
 * is answered 200 and sends nothing. `queue show` shows the delivered message with the event.
 */
import assert from 'node:assert/strict';
import { generateKeyPairSync, randomUUID, sign } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import { signSvix } from '../src/events/providers/resend.js';
import type { SnsMessage } from '../src/events/sns.js';
import { startBrevoFake } from './fakes/brevo.js';
import { startMailgunFake } from './fakes/mailgun.js';
import { startMailjetFake } from './fakes/mailjet.js';
import { startPostmarkFake } from './fakes/postmark.js';
import { startResendFake } from './fakes/resend.js';
import { startSendgridFake } from './fakes/sendgrid.js';
import type { Accepted, Fake, Json } from './fakes/server.js';
import { startSesFake, type SesPayload } from './fakes/ses.js';
import { startSparkpostFake } from './fakes/sparkpost.js';
import { runCli } from './helpers/cli.js';
import { startDaemon, writeConfig } from './helpers/daemon.js';
import { deliveryStatus, deliveryStatusOfText, type DeliveryStatus } from './helpers/dsn-report.js';
import { restConfig, submit } from './helpers/rest.js';
import { snsTestCertificate } from './helpers/sns.js';
import { tempDir } from './helpers/tmp.js';
import { mailgunWebhook } from './helpers/webhooks.js';

const SENDER = 'alice@example.org';
const KEPT = 'bob@example.net';
const GONE = 'carol@example.com';
const HOOK_USER = 'hooks';
const HOOK_PASS = 'webhook-password-0123';
const basic = (password = HOOK_PASS) => ({ authorization: 'Basic ' + Buffer.from(`${HOOK_USER}:${password}`).toString('base64') });
const basicKeys = `webhook_username = "${HOOK_USER}"\nwebhook_password = "\${HOOK_PASS}"\n`;
const seconds = () => String(Math.floor(Date.now() / 1000));

interface Webhook {
  body: string;
  headers: Record<string, string>;
}

interface Case {
  type: string;
  start(): Promise<Fake<unknown>>;
  /** The [[upstream]] table, webhook secrets included (name = type). */
  upstream(url: string): string;
  env: Record<string, string>;
  /** [events] lines beyond the address (SES: the certificate origin). */
  events?: string;
  recipientsOf(accepted: Accepted<unknown>): string[];
  report(accepted: Accepted<unknown>): Promise<DeliveryStatus>;
  /** The provider's documented hard-bounce webhook for `recipient` of the message it knows as `id`; `forged`: signed with the wrong secret. */
  webhook(id: string, recipient: string, forged?: boolean): Webhook;
  /** What the notice's Diagnostic-Code must carry. */
  diagnostic: RegExp;
}

const lower = (list: unknown, key?: string) =>
  ((list as unknown[] | undefined) ?? []).map((x) =>
    String(key ? (x as Json)[key] : x)
      .replace(/^.*<([^>]+)>.*$/, '$1')
      .toLowerCase(),
  );
const asText = (v: unknown) => (typeof v === 'string' ? v : '');
const textOf = (...parts: unknown[]) => deliveryStatusOfText(parts.map((p) => (typeof p === 'string' ? p : '')).join('\n'));

// SendGrid signs with its private key; the test plays SendGrid with a P-256 key of its own.
const sendgridKey = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
const otherKey = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
const RESEND_SECRET = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw';
const MAILGUN_KEY = 'mailgun-webhook-signing-key';
const TOPIC = 'arn:aws:sns:eu-west-1:123456789012:ses-events';
const certDirs = [tempDir(), tempDir()];
const [sns, other] = certDirs.map((d) => snsTestCertificate(d.path)) as [ReturnType<typeof snsTestCertificate>, ReturnType<typeof snsTestCertificate>];

const CASES: Case[] = [
  {
    type: 'mailgun',
    start: () => startMailgunFake('key-mg', 'mg.example.org'),
    upstream: (url) => `api_key = "key-mg"\ndomain = "mg.example.org"\nendpoint = "${url}"\nwebhook_signing_key = "${MAILGUN_KEY}"\n`,
    env: {},
    recipientsOf: (a) => lower((a.payload as { to: string[] }).to),
    report: (a) => deliveryStatus((a.payload as { message: Buffer }).message),
    // https://documentation.mailgun.com/docs/mailgun/user-manual/tracking-messages/ ("failed" webhook payload)
    webhook(id, recipient, forged) {
      const timestamp = seconds();
      const token = randomUUID();
      return {
        headers: {},
        body: mailgunWebhook(
          forged ? 'not-the-key' : MAILGUN_KEY,
          token,
          {
            event: 'failed',
            id: token,
            timestamp: Date.now() / 1000,
            severity: 'permanent',
            reason: 'bounce',
            recipient,
            'delivery-status': { 'attempt-no': 1, message: '550 5.1.1 The email account that you tried to reach does not exist', code: 550, description: '' },
            message: { headers: { to: recipient, 'message-id': id, from: SENDER, subject: 'Test' } },
          },
          timestamp,
        ),
      };
    },
    diagnostic: /^smtp; 550 5\.1\.1 The email account that you tried to reach does not exist$/,
  },
  {
    type: 'sendgrid',
    start: () => startSendgridFake('SG.key'),
    upstream: (url) => `api_key = "SG.key"\nendpoint = "${url}"\nwebhook_signing_key = "${sendgridKey.publicKey.export({ format: 'der', type: 'spki' }).toString('base64')}"\n`,
    env: {},
    recipientsOf: (a) => {
      const p = ((a.payload as Json).personalizations as Json[])[0]!;
      return [...lower(p.to, 'email'), ...lower(p.cc, 'email'), ...lower(p.bcc, 'email')];
    },
    report: (a) => textOf(...((a.payload as Json).content as Array<{ value: string }>).map((c) => c.value)),
    // https://www.twilio.com/docs/sendgrid/for-developers/tracking-events/event (bounce sample; sg_message_id = X-Message-Id + ".filter…")
    webhook(id, recipient, forged) {
      const timestamp = seconds();
      const body =
        JSON.stringify([
          {
            email: recipient,
            timestamp: Number(timestamp),
            'smtp-id': `<${id}@ismtpd-555>`,
            event: 'bounce',
            category: 'cat facts',
            sg_event_id: randomUUID(),
            sg_message_id: `${id}.filter0001.16648.5515E0B88.0`,
            reason: '500 unknown recipient',
            status: '5.0.0',
            type: 'bounce',
          },
        ]) + '\r\n';
      const signature = sign('sha256', Buffer.from(timestamp + body), (forged ? otherKey : sendgridKey).privateKey).toString('base64');
      return { body, headers: { 'x-twilio-email-event-webhook-signature': signature, 'x-twilio-email-event-webhook-timestamp': timestamp } };
    },
    diagnostic: /^smtp; 500 unknown recipient$/,
  },
  {
    type: 'postmark',
    start: () => startPostmarkFake('pm-token'),
    upstream: (url) => `api_key = "pm-token"\nendpoint = "${url}"\n${basicKeys}`,
    env: { HOOK_PASS },
    recipientsOf: (a) =>
      ['To', 'Cc', 'Bcc']
        .flatMap((k) =>
          lower(
            asText((a.payload as Json)[k])
              .split(',')
              .filter((s) => s.trim()),
          ),
        )
        .map((s) => s.trim()),
    report: (a) => textOf((a.payload as Json).TextBody, (a.payload as Json).HtmlBody),
    // https://postmarkapp.com/developer/webhooks/bounce-webhook (example payload)
    webhook: (id, recipient, forged) => ({
      headers: basic(forged ? 'wrong' : HOOK_PASS),
      body: JSON.stringify({
        RecordType: 'Bounce',
        MessageStream: 'outbound',
        ID: Math.floor(Math.random() * 1e12),
        Type: 'HardBounce',
        TypeCode: 1,
        Name: 'Hard bounce',
        Tag: 'Test',
        MessageID: id,
        ServerID: 23,
        Description: 'The server was unable to deliver your message (ex: unknown user, mailbox not found).',
        Details: 'smtp;550 5.1.1 The email account that you tried to reach does not exist.',
        Email: recipient,
        From: SENDER,
        BouncedAt: new Date().toISOString(),
        DumpAvailable: true,
        Inactive: true,
        CanActivate: true,
        Subject: 'Test subject',
      }),
    }),
    diagnostic: /^x-mailshim; The server was unable to deliver your message \(ex: unknown user, mailbox not found\)\. - smtp;550 5\.1\.1/,
  },
  {
    type: 'resend',
    start: () => startResendFake('re_key'),
    upstream: (url) => `api_key = "re_key"\nendpoint = "${url}"\nwebhook_signing_key = "${RESEND_SECRET}"\n`,
    env: {},
    recipientsOf: (a) => ['to', 'cc', 'bcc'].flatMap((k) => lower((a.payload as Json)[k])),
    report: (a) => textOf((a.payload as Json).text, (a.payload as Json).html),
    // https://resend.com/docs/dashboard/webhooks/event-types (email.bounced), delivered by Svix
    webhook(id, recipient, forged) {
      const body = JSON.stringify({
        type: 'email.bounced',
        created_at: new Date().toISOString(),
        data: {
          created_at: new Date().toISOString(),
          email_id: id,
          from: `Alice <${SENDER}>`,
          to: [recipient],
          subject: 'Test',
          bounce: { message: "The recipient's email address is on the suppression list because it has a recent history of producing hard bounces.", subType: 'Suppressed', type: 'Permanent' },
        },
      });
      const svixId = `msg_${randomUUID()}`;
      const timestamp = seconds();
      return {
        body,
        headers: {
          'svix-id': svixId,
          'svix-timestamp': timestamp,
          'svix-signature': signSvix(forged ? 'whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA' : RESEND_SECRET, svixId, timestamp, Buffer.from(body)),
        },
      };
    },
    diagnostic: /^x-mailshim; The recipient's email address is on the suppression list/,
  },
  {
    type: 'ses',
    start: () => startSesFake({ accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'ses-secret', region: 'eu-west-1' }),
    upstream: (url) => `access_key_id = "AKIDEXAMPLE"\nsecret_access_key = "ses-secret"\nregion = "eu-west-1"\nendpoint = "${url}"\nwebhook_topic_arn = ["${TOPIC}"]\n`,
    env: {},
    recipientsOf: (a) => lower((a.payload as SesPayload).destinations),
    report: (a) => deliveryStatus((a.payload as SesPayload).raw),
    // https://docs.aws.amazon.com/ses/latest/dg/notification-examples.html (bounce), in an SNS Notification
    webhook(id, recipient, forged) {
      const notification = {
        notificationType: 'Bounce',
        bounce: {
          bounceType: 'Permanent',
          bounceSubType: 'General',
          reportingMTA: 'dns; email.example.com',
          timestamp: new Date().toISOString(),
          feedbackId: randomUUID(),
          bouncedRecipients: [{ emailAddress: recipient, status: '5.1.1', action: 'failed', diagnosticCode: `smtp; 550 5.1.1 <${recipient}>... User unknown` }],
        },
        mail: { timestamp: new Date().toISOString(), messageId: id, source: SENDER, destination: [KEPT, GONE] },
      };
      const message: Omit<SnsMessage, 'Signature'> = {
        Type: 'Notification',
        MessageId: randomUUID(),
        TopicArn: TOPIC,
        Message: JSON.stringify(notification),
        Timestamp: new Date().toISOString(),
        SignatureVersion: '1',
        SigningCertURL: 'https://sns.eu-west-1.amazonaws.com/SimpleNotificationService-test.pem',
      };
      const signature = (forged ? other : sns).sign(message as SnsMessage);
      return { headers: { 'x-amz-sns-message-type': 'Notification' }, body: JSON.stringify({ ...message, Signature: signature }) };
    },
    diagnostic: /^smtp; 550 5\.1\.1 <carol@example\.com>\.\.\. User unknown$/,
  },
  {
    type: 'mailjet',
    start: () => startMailjetFake('mj-key', 'mj-secret'),
    upstream: (url) => `api_key = "mj-key"\nsecret_key = "mj-secret"\nendpoint = "${url}"\n${basicKeys}`,
    env: { HOOK_PASS },
    recipientsOf: (a) => ['To', 'Cc', 'Bcc'].flatMap((k) => lower((a.payload as Json)[k], 'Email')),
    report: (a) => textOf((a.payload as Json).TextPart, (a.payload as Json).HTMLPart),
    // https://dev.mailjet.com/email/guides/webhooks/ (bounce event; MessageID a bare 64-bit integer)
    webhook: (id, recipient, forged) => ({
      headers: basic(forged ? 'wrong' : HOOK_PASS),
      body: `{"event":"bounce","time":${seconds()},"MessageID":${id},"Message_GUID":"${randomUUID()}","email":"${recipient}","mj_campaign_id":0,"mj_contact_id":0,"customcampaign":"","CustomID":"","Payload":"","blocked":false,"hard_bounce":true,"error_related_to":"recipient","error":"user unknown"}`,
    }),
    diagnostic: /^x-mailshim; recipient - user unknown$/,
  },
  {
    type: 'brevo',
    start: () => startBrevoFake('xkeysib-key'),
    upstream: (url) => `api_key = "xkeysib-key"\nendpoint = "${url}"\n${basicKeys}`,
    env: { HOOK_PASS },
    recipientsOf: (a) => ['to', 'cc', 'bcc'].flatMap((k) => lower((a.payload as Json)[k], 'email')),
    report: (a) => textOf((a.payload as Json).textContent, (a.payload as Json).htmlContent),
    // https://developers.brevo.com/docs/transactional-webhooks (hard_bounce; message-id in angle brackets)
    webhook: (id, recipient, forged) => ({
      headers: basic(forged ? 'wrong' : HOOK_PASS),
      body: JSON.stringify({
        event: 'hard_bounce',
        email: recipient,
        id: 26224,
        date: new Date().toISOString(),
        ts: Number(seconds()),
        'message-id': `<${id}>`,
        ts_event: Number(seconds()),
        subject: 'Test',
        tag: '',
        sending_ip: '185.41.28.109',
        ts_epoch: Date.now(),
        reason: 'user unknown',
      }),
    }),
    diagnostic: /^x-mailshim; user unknown$/,
  },
  {
    type: 'sparkpost',
    start: () => startSparkpostFake('sp-key'),
    upstream: (url) => `api_key = "sp-key"\nendpoint = "${url}"\n${basicKeys}`,
    env: { HOOK_PASS },
    recipientsOf: (a) => ((a.payload as Json).recipients as Array<{ address: { email: string } }>).map((r) => r.address.email.toLowerCase()),
    report: (a) => deliveryStatus(((a.payload as Json).content as { email_rfc822: string }).email_rfc822),
    // https://developers.sparkpost.com/api/webhooks/ (message_event bounce, bounce_class 10 = hard)
    webhook: (id, recipient, forged) => ({
      headers: basic(forged ? 'wrong' : HOOK_PASS),
      body: JSON.stringify([
        {
          msys: {
            message_event: {
              type: 'bounce',
              bounce_class: '10',
              event_id: randomUUID(),
              message_id: randomUUID(),
              transmission_id: id,
              rcpt_to: recipient,
              raw_reason: '550: 5.1.1 The email account that you tried to reach does not exist',
              reason: '550 5.1.1 The email account that you tried to reach does not exist',
              error_code: '550',
              timestamp: seconds(),
            },
          },
        },
      ]),
    }),
    diagnostic: /^smtp; 550: 5\.1\.1 The email account that you tried to reach does not exist$/,
  },
];

interface SentJson {
  state: string;
  recipients: Array<{ address: string; providerMessageId: string; failedAt?: number; events: Array<{ type: string }> }>;
}

for (const c of CASES) {
  test(`${c.type}: a hard-bounce webhook for one of two delivered recipients gives the sender exactly one notice naming it; repeats, forgeries and unknown ids give none`, async (t) => {
    const dir = tempDir();
    t.after(dir.cleanup);
    const fake = await c.start();
    t.after(() => fake.close());
    // SNS certificates (and nothing else) come from a loopback stand-in for sns.<region>.amazonaws.com.
    const aws = createServer((_request, response) => response.end(sns.pem));
    await new Promise<void>((resolve) => aws.listen(0, '127.0.0.1', () => resolve()));
    t.after(() => new Promise<void>((resolve) => aws.close(() => resolve())));
    const events = `[events]\naddress = "127.0.0.1:0"\nsns_certificate_origin = "http://127.0.0.1:${(aws.address() as AddressInfo).port}"\n`;
    const config = writeConfig(dir.path, restConfig(`${dir.path}/spool`, `[[upstream]]\nname = "${c.type}"\ntype = "${c.type}"\ntimeout = "5s"\n${c.upstream(fake.url)}`) + events);
    const daemon = await startDaemon(config, c.env);
    t.after(() => daemon.stop());
    const port = Number((await daemon.waitForLog((l) => l.event === 'events-listening')).port);
    const post = async (hook: Webhook) =>
      (await fetch(`http://127.0.0.1:${port}/events/${c.type}`, { method: 'POST', body: hook.body, headers: { 'content-type': 'application/json', ...hook.headers } })).status;
    const show = async (id: string) => {
      const shown = await runCli(['queue', 'show', id, '--json', '--config', config], c.env);
      assert.equal(shown.code, 0, shown.stderr);
      return JSON.parse(shown.stdout) as SentJson;
    };

    const raw = `From: Alice <${SENDER}>\r\nTo: ${KEPT}, ${GONE}\r\nSubject: Report via ${c.type}\r\nMessage-ID: <bounce-${c.type}@example.org>\r\nDate: ${new Date().toUTCString()}\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\nHello both.\r\n`;
    const id = await submit(daemon.port, { raw, envelope: { from: SENDER, to: [KEPT, GONE] } });
    for (const rcpt of [KEPT, GONE]) await daemon.waitForLog((l) => l.event === 'delivery' && l.queueId === id && l.result === 'delivered' && (l.recipients as string[]).includes(rcpt));
    const sent = await show(id);
    assert.equal(sent.state, 'delivered', 'queue show: a delivered message within events.retention');
    const providerId = sent.recipients.find((r) => r.address === GONE)!.providerMessageId;
    assert.ok(providerId, 'the provider id is retained');
    const before = fake.accepted.length;

    assert.equal(await post(c.webhook(providerId, KEPT, true)), 401, 'forged');
    const bounce = c.webhook(providerId, GONE);
    assert.equal(await post(bounce), 200);
    const [notice] = (await fake.waitForAccepted(before + 1)).slice(before);
    assert.deepEqual(c.recipientsOf(notice!), [SENDER], 'the notice goes to the original envelope sender');
    const report = await c.report(notice!);
    assert.deepEqual(
      report.recipients.map((r) => r.get('final-recipient')),
      [`rfc822; ${GONE}`],
      'it names the bounced recipient, and only it',
    );
    assert.equal(report.recipients[0]!.get('action'), 'failed');
    assert.match(report.recipients[0]!.get('status') ?? '', /^5\.\d+\.\d+$/);
    assert.match(report.recipients[0]!.get('diagnostic-code') ?? '', c.diagnostic, "the provider's reason");
    assert.equal(report.message.get('x-mailshim-queue-id'), id);

    const again = await post(bounce);
    assert.ok(again === 200 || again === 401, `the same webhook again: ${again}`);
    assert.equal(await post(c.webhook(providerId, GONE)), 200, 'the same bounce as a new webhook delivery (another event id)');
    assert.equal(await post(c.webhook(c.type === 'mailjet' ? '4242424242' : 'not-a-message-of-ours', GONE)), 200, 'unknown ids are answered 200');
    // Log lines arrive in order: once the unknown id's line is in, any second notice's would be too.
    await daemon.waitForLog((l) => l.event === 'provider-event' && l.matched === false && l.recipient === GONE);
    assert.equal(daemon.logs.filter((l) => l.event === 'provider-bounce').length, 1, 'exactly one notice');
    assert.ok(!daemon.logs.some((l) => l.event === 'provider-event' && l.recipient === KEPT), 'the forged event was recorded nowhere');
    const after = await show(id);
    const gone = after.recipients.find((r) => r.address === GONE)!;
    assert.ok(gone.failedAt, 'queue show: the recipient failed after acceptance');
    assert.ok(
      gone.events.some((e) => e.type === 'hard_bounce'),
      'queue show: the provider event is in the history',
    );
    assert.equal(after.recipients.find((r) => r.address === KEPT)!.failedAt, undefined);
    const text = await runCli(['queue', 'show', id, '--config', config], c.env);
    assert.match(text.stdout, /State: +delivered, no longer queued/);
    assert.match(text.stdout, /event hard_bounce/);
    // Nothing else is queued behind the notice: once it is delivered, the queue is empty.
    const dsnId = (daemon.logs.find((l) => l.event === 'provider-bounce')!.dsnQueueIds as string[])[0];
    await daemon.waitForLog((l) => l.event === 'delivery' && l.queueId === dsnId && l.result === 'delivered');
    const listed = await runCli(['queue', 'list', '--json', '--config', config], c.env);
    assert.deepEqual((JSON.parse(listed.stdout) as { queue: unknown[] }).queue, [], listed.stderr);
    assert.equal(fake.accepted.length, before + 1);
  });
}

test('mailgun: a complaint is logged and counted, never reported to the sender; with complaints_to_admin, [local] admin hears of it once', async (t) => {
  const c = CASES[0]!;
  const dir = tempDir();
  t.after(dir.cleanup);
  const fake = await c.start();
  t.after(() => fake.close());
  const events = `[events]\naddress = "127.0.0.1:0"\ncomplaints_to_admin = true\n\n[metrics]\naddress = "127.0.0.1:0"\n`;
  const source = restConfig(`${dir.path}/spool`, `[[upstream]]\nname = "mailgun"\ntype = "mailgun"\ntimeout = "5s"\n${c.upstream(fake.url)}`).replace(
    '[local]\n',
    '[local]\nadmin = "postmaster@example.org"\n',
  );
  const daemon = await startDaemon(writeConfig(dir.path, source + events));
  t.after(() => daemon.stop());
  const port = Number((await daemon.waitForLog((l) => l.event === 'events-listening')).port);
  const metricsPort = Number((await daemon.waitForLog((l) => l.event === 'metrics')).port);
  const raw = `From: Alice <${SENDER}>\r\nTo: ${KEPT}\r\nSubject: Newsletter\r\nMessage-ID: <complaint@example.org>\r\n\r\nHello.\r\n`;
  const id = await submit(daemon.port, { raw, envelope: { from: SENDER, to: [KEPT] } });
  const delivered = await daemon.waitForLog((l) => l.event === 'delivery' && l.queueId === id && l.result === 'delivered');
  const before = fake.accepted.length;
  // https://documentation.mailgun.com/docs/mailgun/user-manual/tracking-messages/ ("complained")
  const complaint = (token: string) =>
    mailgunWebhook(MAILGUN_KEY, token, {
      event: 'complained',
      id: token,
      timestamp: Date.now() / 1000,
      recipient: KEPT,
      message: { headers: { to: KEPT, 'message-id': String(delivered.providerMessageId), from: SENDER, subject: 'Newsletter' } },
    });
  for (const token of ['c-1', 'c-2']) {
    const status = (await fetch(`http://127.0.0.1:${port}/events/mailgun`, { method: 'POST', body: complaint(token), headers: { 'content-type': 'application/json' } })).status;
    assert.equal(status, 200);
  }
  const [notice] = (await fake.waitForAccepted(before + 1)).slice(before);
  assert.deepEqual(c.recipientsOf(notice!), ['postmaster@example.org'], 'the admin, not the sender');
  const text = (notice!.payload as { message: Buffer }).message.toString();
  assert.match(text, /Subject: Spam complaint from bob@example\.net/);
  assert.ok(!daemon.logs.some((l) => l.event === 'provider-bounce'), 'no failure notice');
  assert.equal(daemon.logs.filter((l) => l.event === 'provider-complaint').length, 1, 'one complaint per recipient, however often it is reported');
  const metrics = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
  assert.match(metrics, /mailshim_provider_events_total\{upstream="mailgun",type="complaint"\} 2/);
  const dsnId = (await daemon.waitForLog((l) => l.event === 'delivery' && l.result === 'delivered' && (l.recipients as string[]).includes('postmaster@example.org'))).queueId;
  assert.ok(dsnId);
  assert.equal(fake.accepted.length, before + 1, 'nothing went to the sender');
});

test('cleanup of the SNS stand-in certificates', () => certDirs.forEach((d) => d.cleanup()));
