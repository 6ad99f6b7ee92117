/**
 * Event parsing: each provider's documented sample payload (page cited per case, trimmed to the
 * fields the docs show) becomes the normalized ProviderEvent, with the message id in the form the
 * upstream stored at delivery.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseMailgun } from '../src/events/providers/mailgun.js';
import { parseSendgrid } from '../src/events/providers/sendgrid.js';
import { parsePostmark } from '../src/events/providers/postmark.js';
import { parseResend } from '../src/events/providers/resend.js';
import { parseSes } from '../src/events/providers/ses.js';
import { parseMailjet } from '../src/events/providers/mailjet.js';
import { parseBrevo } from '../src/events/providers/brevo.js';
import { parseSparkpost } from '../src/events/providers/sparkpost.js';
import type { SnsMessage } from '../src/events/sns.js';

const json = (value: unknown) => Buffer.from(JSON.stringify(value));

test('Mailgun: failed/permanent/bounce is a hard bounce; suppress-* is suppressed; temporary is deferred', () => {
  // https://documentation.mailgun.com/docs/mailgun/user-manual/tracking-messages/ (webhook payload for "failed")
  const failed = (extra: object) =>
    json({
      signature: { timestamp: '1529006854', token: 't', signature: 's' },
      'event-data': {
        event: 'failed',
        id: 'G9Bn5sl1TC6nu79C8C0bwg',
        timestamp: 1521233195.375624,
        severity: 'permanent',
        reason: 'bounce',
        recipient: 'Alice@example.com',
        'delivery-status': { 'attempt-no': 1, message: '550 5.1.1 The email account that you tried to reach does not exist', code: 550, description: '' },
        message: { headers: { to: 'Alice <alice@example.com>', 'message-id': '20130503192659.13651.20287@sandbox.mailgun.org', from: 'Bob <bob@sandbox.mailgun.org>', subject: 'Test' } },
        ...extra,
      },
    });
  assert.deepEqual(parseMailgun(failed({})).events, [
    {
      type: 'hard_bounce',
      providerMessageId: '20130503192659.13651.20287@sandbox.mailgun.org',
      recipient: 'alice@example.com',
      reason: '550 5.1.1 The email account that you tried to reach does not exist',
      status: '550',
      eventId: 'G9Bn5sl1TC6nu79C8C0bwg',
      at: new Date(1521233195375.624),
    },
  ]);
  assert.equal(parseMailgun(failed({ reason: 'suppress-bounce' })).events[0]!.type, 'suppressed');
  assert.equal(parseMailgun(failed({ reason: 'generic' })).events[0]!.type, 'permanent_failure');
  assert.equal(parseMailgun(failed({ severity: 'temporary' })).events[0]!.type, 'deferred');
  assert.equal(parseMailgun(failed({ event: 'complained' })).events[0]!.type, 'complaint');
  assert.deepEqual(parseMailgun(failed({ event: 'clicked' })).events, []);
});

test('SendGrid: bounce/dropped/spamreport/delivered; sg_message_id is cut back to the X-Message-Id', () => {
  // https://www.twilio.com/docs/sendgrid/for-developers/tracking-events/event (delivery and engagement event samples)
  const events = parseSendgrid(
    json([
      {
        email: 'example@test.com',
        timestamp: 1513299569,
        'smtp-id': '<14c5d75ce93.dfd.64b469@ismtpd-555>',
        event: 'bounce',
        category: 'cat facts',
        sg_event_id: 'sg_event_id',
        sg_message_id: '14c5d75ce93.dfd.64b469.filter0001.16648.5515E0B88.0',
        reason: '500 unknown recipient',
        status: '5.0.0',
        type: 'bounce',
      },
      {
        email: 'example@test.com',
        timestamp: 1513299569,
        event: 'bounce',
        sg_event_id: 'e2',
        sg_message_id: 'LRzXl_NHStOGhQ4kofSm_A.filterdrecv-p3mdw1-756b745b58-kmzbl-18-5F5FC76C-9.0',
        reason: '550 blocked',
        status: '5.7.1',
        type: 'blocked',
      },
      {
        email: 'hello@world.com',
        event: 'dropped',
        reason: 'Bounced Address',
        sg_event_id: 'e3',
        sg_message_id: 'LRzXl_NHStOGhQ4kofSm_A.filterdrecv-p3mdw1-756b745b58-kmzbl-18-5F5FC76C-9.0',
        timestamp: 1600112492,
      },
      { email: 'example@test.com', timestamp: 1513299569, event: 'spamreport', sg_event_id: 'e4', sg_message_id: 'abc.filter0001' },
      { email: 'example@test.com', timestamp: 1513299569, event: 'delivered', response: '250 OK', sg_event_id: 'e5', sg_message_id: 'abc.filter0001' },
      { email: 'example@test.com', timestamp: 1513299569, event: 'processed', sg_event_id: 'e6', sg_message_id: 'abc.filter0001' },
    ]),
  ).events;
  assert.deepEqual(
    events.map((e) => [e.type, e.providerMessageId]),
    [
      ['hard_bounce', '14c5d75ce93.dfd.64b469'],
      ['permanent_failure', 'LRzXl_NHStOGhQ4kofSm_A'],
      ['suppressed', 'LRzXl_NHStOGhQ4kofSm_A'],
      ['complaint', 'abc'],
      ['delivered', 'abc'],
    ],
  );
  assert.equal(events[0]!.reason, '500 unknown recipient');
  assert.equal(events[0]!.status, '5.0.0');
  assert.equal(events[0]!.eventId, 'sg_event_id');
});

test('Postmark: HardBounce, SpamComplaint, Delivery, and soft bounces as deferred', () => {
  // https://postmarkapp.com/developer/webhooks/bounce-webhook (example payload)
  const bounce = {
    RecordType: 'Bounce',
    MessageStream: 'outbound',
    ID: 4323372036854776000,
    Type: 'HardBounce',
    TypeCode: 1,
    Name: 'Hard bounce',
    Tag: 'Test',
    MessageID: '883953f4-6105-42a2-a16a-77a8eac79483',
    ServerID: 23,
    Description: 'The server was unable to deliver your message (ex: unknown user, mailbox not found).',
    Details: 'Test bounce details',
    Email: 'john@example.com',
    From: 'sender@example.com',
    BouncedAt: '2019-11-05T16:33:54.9070259Z',
    DumpAvailable: true,
    Inactive: true,
    CanActivate: true,
    Subject: 'Test subject',
  };
  // The documented ID does not fit a double: the exact digits as Postmark sends them.
  const exact = Buffer.from(JSON.stringify(bounce).replace('"ID":4323372036854776000', '"ID":4323372036854775807'));
  assert.deepEqual(parsePostmark(exact).events, [
    {
      type: 'hard_bounce',
      providerMessageId: '883953f4-6105-42a2-a16a-77a8eac79483',
      recipient: 'john@example.com',
      reason: 'The server was unable to deliver your message (ex: unknown user, mailbox not found). — Test bounce details',
      eventId: 'bounce:4323372036854775807',
      at: new Date('2019-11-05T16:33:54.907Z'),
    },
  ]);
  assert.equal(parsePostmark(json({ ...bounce, Type: 'SoftBounce', TypeCode: 4096 })).events[0]!.type, 'deferred');
  assert.deepEqual(parsePostmark(json({ ...bounce, Type: 'AutoResponder', TypeCode: 64 })).events, []);
  // https://postmarkapp.com/developer/webhooks/spam-complaint-webhook, .../delivery-webhook
  assert.equal(parsePostmark(json({ ...bounce, RecordType: 'SpamComplaint', Type: 'SpamComplaint', TypeCode: 512 })).events[0]!.type, 'complaint');
  assert.deepEqual(
    parsePostmark(
      json({
        RecordType: 'Delivery',
        ServerID: 23,
        MessageStream: 'outbound',
        MessageID: '00000000-0000-0000-0000-000000000000',
        Recipient: 'john@example.com',
        Tag: 'welcome-email',
        DeliveredAt: '2021-02-21T16:34:52Z',
        Details: 'Test delivery webhook details',
      }),
    ).events.map((e) => e.type),
    ['delivered'],
  );
});

test('Resend: email.bounced Permanent is a hard bounce of the single recipient; several recipients cannot be attributed', () => {
  // https://resend.com/docs/dashboard/webhooks/event-types (email.bounced)
  const bounced = (to: string[]) =>
    json({
      type: 'email.bounced',
      created_at: '2024-11-22T23:41:12.126Z',
      data: {
        created_at: '2024-11-22T23:41:11.894719+00:00',
        email_id: '56761188-7520-42d8-8898-ff6fc54ce618',
        from: 'Acme <onboarding@resend.dev>',
        to,
        subject: 'Sending this example',
        bounce: { message: "The recipient's email address is on the suppression list because it has a recent history of producing hard bounces.", subType: 'Suppressed', type: 'Permanent' },
      },
    });
  const [event] = parseResend(bounced(['delivered@resend.dev']), { 'svix-id': 'msg_1' }).events;
  assert.equal(event!.type, 'hard_bounce');
  assert.equal(event!.providerMessageId, '56761188-7520-42d8-8898-ff6fc54ce618');
  assert.equal(event!.recipient, 'delivered@resend.dev');
  assert.match(event!.reason!, /suppression list/);
  assert.equal(event!.eventId, 'msg_1');
  assert.deepEqual(parseResend(bounced(['a@example.com', 'b@example.com'])).events, []);
});

test('SES: Bounce (Permanent/General and Suppressed), Complaint, Delivery from the SNS Message; SubscriptionConfirmation asks for a confirmation', () => {
  // https://docs.aws.amazon.com/ses/latest/dg/notification-examples.html (bounce with a DSN)
  const notification = {
    notificationType: 'Bounce',
    bounce: {
      bounceType: 'Permanent',
      reportingMTA: 'dns; email.example.com',
      bouncedRecipients: [{ emailAddress: 'jane@example.com', status: '5.1.1', action: 'failed', diagnosticCode: 'smtp; 550 5.1.1 <jane@example.com>... User unknown' }],
      bounceSubType: 'General',
      timestamp: '2016-01-27T14:59:44.101Z',
      feedbackId: '00000138111222aa-44455566-cccc-cccc-cccc-ddddaaaa068a-000000',
    },
    mail: {
      timestamp: '2016-01-27T14:59:38.237Z',
      messageId: '00000138111222aa-33322211-cccc-cccc-cccc-ddddaaaa0680-000000',
      source: 'john@example.com',
      destination: ['jane@example.com', 'mary@example.com'],
    },
  };
  const sns = (message: object, type = 'Notification'): SnsMessage => ({
    Type: type,
    MessageId: 'sns-1',
    TopicArn: 'arn:aws:sns:us-east-1:123456789012:t',
    Message: JSON.stringify(message),
    Timestamp: '2016-01-27T14:59:45Z',
    Signature: '',
    SignatureVersion: '1',
    SigningCertURL: '',
  });
  assert.deepEqual(parseSes(sns(notification)).events, [
    {
      type: 'hard_bounce',
      providerMessageId: '00000138111222aa-33322211-cccc-cccc-cccc-ddddaaaa0680-000000',
      recipient: 'jane@example.com',
      eventId: 'sns-1:jane@example.com',
      reason: 'smtp; 550 5.1.1 <jane@example.com>... User unknown',
      status: '5.1.1',
      at: new Date('2016-01-27T14:59:44.101Z'),
    },
  ]);
  assert.equal(parseSes(sns({ ...notification, bounce: { ...notification.bounce, bounceSubType: 'OnAccountSuppressionList' } })).events[0]!.type, 'suppressed');
  assert.equal(parseSes(sns({ ...notification, bounce: { ...notification.bounce, bounceType: 'Transient' } })).events[0]!.type, 'deferred');
  // Configuration-set event publishing says eventType instead of notificationType.
  assert.deepEqual(
    parseSes(
      sns({
        eventType: 'Complaint',
        complaint: { complainedRecipients: [{ emailAddress: 'richard@example.com' }], timestamp: '2016-01-27T14:59:38.237Z', complaintFeedbackType: 'abuse' },
        mail: notification.mail,
      }),
    ).events.map((e) => [e.type, e.recipient]),
    [['complaint', 'richard@example.com']],
  );
  assert.deepEqual(
    parseSes(sns({ notificationType: 'Delivery', delivery: { timestamp: '2016-01-27T14:59:38.237Z', recipients: ['jane@example.com'], smtpResponse: '250 ok' }, mail: notification.mail })).events.map(
      (e) => e.type,
    ),
    ['delivered'],
  );
  const confirm = {
    ...sns({}, 'SubscriptionConfirmation'),
    Message: 'You have chosen to subscribe…',
    SubscribeURL: 'https://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription&TopicArn=t&Token=x',
    Token: 'x',
  };
  assert.deepEqual(parseSes(confirm), { events: [], confirmUrl: confirm.SubscribeURL });
});

test('Mailjet: bounce with hard_bounce, blocked, spam; 64-bit MessageID kept exact', () => {
  // https://dev.mailjet.com/email/guides/webhooks/ (bounce event sample)
  const body = Buffer.from(
    '{"event":"bounce","time":1430812195,"MessageID":576460753067090994,"Message_GUID":"1ab23cd4-e567-8901-2345-6789f0gh1i2j","email":"bounce@mailjet.com","mj_campaign_id":0,"mj_contact_id":0,"customcampaign":"","CustomID":"helloworld","Payload":"","blocked":false,"hard_bounce":true,"error_related_to":"recipient","error":"user unknown"}',
  );
  const [event] = parseMailjet(body).events;
  assert.equal(event!.type, 'hard_bounce');
  assert.equal(event!.providerMessageId, '576460753067090994');
  assert.equal(event!.reason, 'recipient — user unknown');
  assert.equal(parseMailjet(Buffer.from(body.toString().replace('"hard_bounce":true', '"hard_bounce":false'))).events[0]!.type, 'deferred');
  assert.deepEqual(
    parseMailjet(
      json([
        { event: 'spam', time: 1, MessageID: 1, email: 'a@b.example', source: 'JMRPP' },
        { event: 'blocked', time: 1, MessageID: 2, email: 'c@b.example', error: 'preblocked' },
      ]),
    ).events.map((e) => e.type),
    ['complaint', 'rejected'],
  );
});

test('Brevo: hard_bounce with the bracketed message-id, spam, delivered', () => {
  // https://developers.brevo.com/docs/transactional-webhooks (hard_bounce sample)
  const [event] = parseBrevo(
    json({
      event: 'hard_bounce',
      email: 'example@domain.com',
      id: 26224,
      date: '2020-10-09 00:00:00',
      ts: 1604937111,
      'message-id': '<202010091500.21744851401@smtp-relay.mailin.fr>',
      ts_event: 1604933654,
      subject: 'My first Transactional',
      tag: '["transactionalTag"]',
      sending_ip: '185.41.28.109',
      ts_epoch: 1604933654021,
      reason: 'user unknown',
    }),
  ).events;
  assert.deepEqual(event, {
    type: 'hard_bounce',
    providerMessageId: '202010091500.21744851401@smtp-relay.mailin.fr',
    recipient: 'example@domain.com',
    reason: 'user unknown',
    eventId: 'hard_bounce:<202010091500.21744851401@smtp-relay.mailin.fr>:example@domain.com',
    at: new Date(1604933654000),
  });
  assert.deepEqual(
    parseBrevo(
      json([
        { event: 'spam', email: 'a@x.example', 'message-id': '<1@x>' },
        { event: 'delivered', email: 'a@x.example', 'message-id': '<1@x>' },
        { event: 'click', email: 'a@x.example', 'message-id': '<1@x>' },
      ]),
    ).events.map((e) => e.type),
    ['complaint', 'delivered'],
  );
});

test('SparkPost: bounce classes (10 hard, 90 unsubscribe, 21 soft), spam_complaint, delivery; the test batch is ignored', () => {
  // https://developers.sparkpost.com/api/webhooks/ (event samples: message_event bounce)
  const bounce = (bounceClass: string) => ({
    msys: {
      message_event: {
        type: 'bounce',
        bounce_class: bounceClass,
        event_id: '92356927693813856',
        message_id: '0e0d94b7-9085-4e3c-ab30-e3f2cd9c273e',
        transmission_id: '65832150921904138',
        rcpt_to: 'recipient@example.com',
        raw_reason: '550: 5.1.1 The email account that you tried to reach does not exist',
        reason: '550 5.1.1 The email account that you tried to reach does not exist',
        error_code: '550',
        timestamp: '1454442600',
      },
    },
  });
  const events = parseSparkpost(json([bounce('10'), bounce('90'), bounce('21'), { msys: { message_event: { ...bounce('10').msys.message_event, type: 'spam_complaint' } } }, { msys: {} }])).events;
  assert.deepEqual(
    events.map((e) => e.type),
    ['hard_bounce', 'suppressed', 'deferred', 'complaint'],
  );
  assert.equal(events[0]!.providerMessageId, '65832150921904138');
  assert.match(events[0]!.reason!, /5\.1\.1/);
  assert.deepEqual(parseSparkpost(json([{ msys: {} }])).events, []);
});
