/**
 * The fakes are only worth something if they are as strict as the providers: each one must reject
 * wrong paths, missing or wrong credentials, unknown or missing fields, bad base64 and too many
 * recipients with the provider's own error body shape, and accept a valid request.
 */
import assert from 'node:assert/strict';
import aws4 from 'aws4';
import { after, describe, it } from 'node:test';
import { startBrevoFake } from './fakes/brevo.js';
import { startMailgunFake } from './fakes/mailgun.js';
import { startMailjetFake } from './fakes/mailjet.js';
import { startPostmarkFake } from './fakes/postmark.js';
import { startResendFake } from './fakes/resend.js';
import { startSendgridFake } from './fakes/sendgrid.js';
import type { Fake, Json } from './fakes/server.js';
import { startSesFake } from './fakes/ses.js';
import { startSparkpostFake } from './fakes/sparkpost.js';

interface Call {
  path: string;
  headers: Record<string, string>;
  body: string | FormData;
}

interface Case {
  name: string;
  change: (valid: Call) => Call;
  status: number;
  /** Matches the JSON (or text) error body. */
  body: RegExp;
}

const json = (headers: Record<string, string>, path: string, body: Json): Call => ({ path, headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) });
const withBody = (call: Call, change: (b: Json) => void): Call => {
  const body = JSON.parse(call.body as string) as Json;
  change(body);
  return { ...call, body: JSON.stringify(body) };
};
const without = (headers: Record<string, string>, name: string) => Object.fromEntries(Object.entries(headers).filter(([k]) => k !== name));
const many = (n: number) => Array.from({ length: n }, (_, i) => `r${i}@example.net`);

async function send(fake: Fake<unknown>, call: Call): Promise<{ status: number; text: string }> {
  const response = await fetch(fake.url + call.path, { method: 'POST', headers: call.headers, body: call.body });
  return { status: response.status, text: await response.text() };
}

function suite(name: string, start: () => Promise<Fake<unknown>>, valid: () => Call, successStatus: number, cases: Case[]): void {
  describe(`fake ${name}`, () => {
    let fake: Fake<unknown> | undefined;
    const get = async () => (fake ??= await start());
    after(async () => fake?.close());
    it('accepts a valid request', async () => {
      const got = await send(await get(), valid());
      assert.equal(got.status, successStatus, got.text);
    });
    for (const c of cases) {
      it(`rejects ${c.name}`, async () => {
        const f = await get();
        const before = f.accepted.length;
        const got = await send(f, c.change(valid()));
        assert.equal(got.status, c.status, got.text);
        assert.match(got.text, c.body);
        assert.equal(f.accepted.length, before, 'nothing accepted');
      });
    }
  });
}

const b64 = Buffer.from('%PDF-1.4').toString('base64');

suite(
  'sendgrid',
  () => startSendgridFake('SG.k'),
  () =>
    json({ authorization: 'Bearer SG.k' }, '/v3/mail/send', {
      personalizations: [{ to: [{ email: 'b@example.net' }] }],
      from: { email: 'a@example.org' },
      subject: 's',
      content: [{ type: 'text/plain', value: 'x' }],
      attachments: [{ content: b64, filename: 'a.pdf' }],
    }),
  202,
  [
    { name: 'a wrong path', change: (c) => ({ ...c, path: '/v3/mail/sent' }), status: 404, body: /"errors":\[\{"message":"resource not found"/ },
    { name: 'a missing key', change: (c) => ({ ...c, headers: without(c.headers, 'authorization') }), status: 401, body: /"errors"/ },
    { name: 'a wrong key', change: (c) => ({ ...c, headers: { ...c.headers, authorization: 'Bearer SG.x' } }), status: 401, body: /authorization grant is invalid/ },
    { name: 'an unknown field', change: (c) => withBody(c, (b) => (b.sender = 'x')), status: 400, body: /"field":"sender"/ },
    { name: 'a missing subject', change: (c) => withBody(c, (b) => delete b.subject), status: 400, body: /subject is required/ },
    { name: 'bad base64', change: (c) => withBody(c, (b) => ((b.attachments as Json[])[0]!.content = 'not base64!')), status: 400, body: /base64/ },
    { name: 'more than 1000 recipients', change: (c) => withBody(c, (b) => ((b.personalizations as Json[])[0]!.to = many(1001).map((email) => ({ email })))), status: 400, body: /no more than 1000/ },
    {
      name: 'html before text',
      change: (c) =>
        withBody(
          c,
          (b) =>
            (b.content = [
              { type: 'text/html', value: 'h' },
              { type: 'text/plain', value: 't' },
            ]),
        ),
      status: 400,
      body: /text\/plain content must be first/,
    },
    { name: 'a reserved header', change: (c) => withBody(c, (b) => (b.headers = { 'X-SG-EID': '1' })), status: 400, body: /reserved header/ },
  ],
);

suite(
  'postmark',
  () => startPostmarkFake('pm'),
  () =>
    json({ 'x-postmark-server-token': 'pm', accept: 'application/json' }, '/email', {
      From: 'a@example.org',
      To: 'b@example.net',
      Subject: 's',
      TextBody: 'x',
      Attachments: [{ Name: 'a.pdf', Content: b64, ContentType: 'application/pdf' }],
    }),
  200,
  [
    { name: 'a wrong path', change: (c) => ({ ...c, path: '/emails' }), status: 404, body: /^$/ },
    { name: 'a missing token', change: (c) => ({ ...c, headers: without(c.headers, 'x-postmark-server-token') }), status: 401, body: /"ErrorCode":10/ },
    { name: 'a wrong token', change: (c) => ({ ...c, headers: { ...c.headers, 'x-postmark-server-token': 'x' } }), status: 401, body: /"ErrorCode":10/ },
    { name: 'an unknown field', change: (c) => withBody(c, (b) => (b.Sender = 'x')), status: 422, body: /"ErrorCode":403/ },
    { name: 'a missing body', change: (c) => withBody(c, (b) => delete b.TextBody), status: 422, body: /TextBody or HtmlBody/ },
    { name: 'bad base64', change: (c) => withBody(c, (b) => ((b.Attachments as Json[])[0]!.Content = '@@@')), status: 422, body: /not base64/ },
    { name: 'more than 50 recipients', change: (c) => withBody(c, (b) => (b.Bcc = many(50).join(', '))), status: 422, body: /more than 50 recipients/ },
    { name: 'an unknown message stream', change: (c) => withBody(c, (b) => (b.MessageStream = 'broadcasts')), status: 422, body: /"ErrorCode":1235/ },
  ],
);

suite(
  'resend',
  () => startResendFake('re_k'),
  () =>
    json({ authorization: 'Bearer re_k' }, '/emails', {
      from: 'A <a@example.org>',
      to: ['b@example.net'],
      subject: 's',
      text: 'x',
      attachments: [{ filename: 'a.pdf', content: b64 }],
    }),
  200,
  [
    { name: 'a wrong path', change: (c) => ({ ...c, path: '/email' }), status: 404, body: /"name":"not_found"/ },
    { name: 'a missing key', change: (c) => ({ ...c, headers: without(c.headers, 'authorization') }), status: 401, body: /"name":"missing_api_key"/ },
    { name: 'a wrong key', change: (c) => ({ ...c, headers: { ...c.headers, authorization: 'Bearer re_x' } }), status: 403, body: /"name":"invalid_api_key"/ },
    { name: 'an unknown field', change: (c) => withBody(c, (b) => (b.sender = 'x')), status: 422, body: /"name":"invalid_parameter"/ },
    { name: 'a missing subject', change: (c) => withBody(c, (b) => delete b.subject), status: 422, body: /"name":"missing_required_field"/ },
    { name: 'bad base64', change: (c) => withBody(c, (b) => ((b.attachments as Json[])[0]!.content = 'a')), status: 422, body: /"name":"invalid_attachment"/ },
    { name: 'more than 50 recipients', change: (c) => withBody(c, (b) => (b.to = many(51))), status: 422, body: /maximum is 50/ },
  ],
);

suite(
  'mailjet',
  () => startMailjetFake('k', 's'),
  () =>
    json({ authorization: 'Basic ' + Buffer.from('k:s').toString('base64') }, '/v3.1/send', {
      Messages: [
        { From: { Email: 'a@example.org' }, To: [{ Email: 'b@example.net' }], Subject: 's', TextPart: 'x', Attachments: [{ ContentType: 'application/pdf', Filename: 'a.pdf', Base64Content: b64 }] },
      ],
    }),
  200,
  [
    { name: 'a wrong path', change: (c) => ({ ...c, path: '/v3/send' }), status: 404, body: /"ErrorIdentifier"/ },
    { name: 'missing credentials', change: (c) => ({ ...c, headers: without(c.headers, 'authorization') }), status: 401, body: /"ErrorCode":"mj-0015"/ },
    { name: 'a wrong secret', change: (c) => ({ ...c, headers: { ...c.headers, authorization: 'Basic ' + Buffer.from('k:x').toString('base64') } }), status: 401, body: /"ErrorCode":"mj-0015"/ },
    { name: 'an unknown field', change: (c) => withBody(c, (b) => ((b.Messages as Json[])[0]!.Body = 'x')), status: 400, body: /"Status":"error".*"ErrorRelatedTo":\["Body"\]/ },
    { name: 'a missing To', change: (c) => withBody(c, (b) => delete (b.Messages as Json[])[0]!.To), status: 400, body: /"ErrorRelatedTo":\["To"\]/ },
    { name: 'bad base64', change: (c) => withBody(c, (b) => (((b.Messages as Json[])[0]!.Attachments as Json[])[0]!.Base64Content = '!')), status: 400, body: /Base64Content/ },
    { name: 'more than 50 recipients', change: (c) => withBody(c, (b) => ((b.Messages as Json[])[0]!.Bcc = many(50).map((Email) => ({ Email })))), status: 400, body: /"ErrorCode":"send-0015"/ },
    { name: 'a forbidden header', change: (c) => withBody(c, (b) => ((b.Messages as Json[])[0]!.Headers = { 'Message-Id': '<x@y>' })), status: 400, body: /"ErrorCode":"send-0011"/ },
  ],
);

suite(
  'brevo',
  () => startBrevoFake('xkeysib'),
  () =>
    json({ 'api-key': 'xkeysib' }, '/v3/smtp/email', {
      sender: { email: 'a@example.org' },
      to: [{ email: 'b@example.net' }],
      subject: 's',
      htmlContent: '<pre>x</pre>',
      textContent: 'x',
      attachment: [{ content: b64, name: 'a.pdf' }],
    }),
  201,
  [
    { name: 'text without htmlContent (required without a template)', change: (c) => withBody(c, (b) => delete b.htmlContent), status: 400, body: /htmlContent is missing/ },
    { name: 'a display name over 70 characters', change: (c) => withBody(c, (b) => ((b.to as Json[])[0]!.name = 'n'.repeat(71))), status: 400, body: /max 70 character in to name/ },
    { name: 'an idempotency key that is not a UUID', change: (c) => withBody(c, (b) => (b.headers = { idempotencyKey: 'mailshim-1' })), status: 400, body: /must be a valid UUID/ },
    { name: 'a wrong path', change: (c) => ({ ...c, path: '/v3/email' }), status: 404, body: /"code":"not_found"/ },
    { name: 'a missing key', change: (c) => ({ ...c, headers: without(c.headers, 'api-key') }), status: 401, body: /"code":"unauthorized"/ },
    { name: 'a wrong key', change: (c) => ({ ...c, headers: { ...c.headers, 'api-key': 'x' } }), status: 401, body: /Key not found/ },
    { name: 'an unknown field', change: (c) => withBody(c, (b) => (b.from = 'x')), status: 400, body: /"code":"invalid_parameter"/ },
    { name: 'a missing subject', change: (c) => withBody(c, (b) => delete b.subject), status: 400, body: /"code":"missing_parameter"/ },
    { name: 'bad base64', change: (c) => withBody(c, (b) => ((b.attachment as Json[])[0]!.content = '%%')), status: 400, body: /base64/ },
    { name: 'a forbidden extension', change: (c) => withBody(c, (b) => ((b.attachment as Json[])[0]!.name = 'a.exe')), status: 400, body: /Unsupported file extension: exe/ },
    { name: 'more than 99 recipients', change: (c) => withBody(c, (b) => (b.bcc = many(99).map((email) => ({ email })))), status: 400, body: /Maximum 99 recipients/ },
  ],
);

suite(
  'sparkpost',
  () => startSparkpostFake('spk'),
  () =>
    json({ authorization: 'spk' }, '/api/v1/transmissions', {
      recipients: [{ address: { email: 'b@example.net' } }],
      content: { email_rfc822: 'From: a@example.org\r\nSubject: s\r\n\r\nx\r\n' },
    }),
  200,
  [
    { name: 'a wrong path', change: (c) => ({ ...c, path: '/api/v1/transmission' }), status: 404, body: /"code":"1101"/ },
    { name: 'a missing key', change: (c) => ({ ...c, headers: without(c.headers, 'authorization') }), status: 401, body: /Unauthorized/ },
    { name: 'a Bearer-prefixed key', change: (c) => ({ ...c, headers: { ...c.headers, authorization: 'Bearer spk' } }), status: 401, body: /Unauthorized/ },
    { name: 'an unknown field', change: (c) => withBody(c, (b) => (b.subject = 'x')), status: 422, body: /"code":"1300"/ },
    { name: 'missing recipients', change: (c) => withBody(c, (b) => delete b.recipients), status: 422, body: /"code":"1400"/ },
    { name: 'raw content mixed with inline content', change: (c) => withBody(c, (b) => ((b.content as Json).html = '<p>')), status: 422, body: /"code":"1301"/ },
    { name: 'an unknown option', change: (c) => withBody(c, (b) => (b.options = { tracking: false })), status: 422, body: /Unknown option 'tracking'/ },
    { name: 'dot-stuffed raw content', change: (c) => withBody(c, (b) => ((b.content as Json).email_rfc822 = 'From: a@example.org\r\n\r\nx\r\n.\r\n')), status: 422, body: /dot-stuffed/ },
  ],
);

function mailgunForm(to: string[], message = true): FormData {
  const form = new FormData();
  for (const t of to) form.append('to', t);
  if (message) form.append('message', new Blob(['From: a@example.org\r\n\r\nx\r\n']), 'message.mime');
  return form;
}
const mgAuth = { authorization: 'Basic ' + Buffer.from('api:key-1').toString('base64') };
suite(
  'mailgun',
  () => startMailgunFake('key-1', 'mg.example.org'),
  () => ({ path: '/v3/mg.example.org/messages.mime', headers: mgAuth, body: mailgunForm(['b@example.net']) }),
  200,
  [
    { name: 'a wrong path', change: (c) => ({ ...c, path: '/v3/mg.example.org/messages' }), status: 404, body: /404 page not found/ },
    { name: 'a missing key', change: (c) => ({ ...c, headers: {} }), status: 401, body: /^Forbidden$/ },
    { name: 'an unknown domain', change: (c) => ({ ...c, path: '/v3/other.example.org/messages.mime' }), status: 404, body: /Domain not found/ },
    {
      name: 'an unknown field',
      change: (c) => {
        const form = mailgunForm(['b@example.net']);
        form.append('subject', 'x');
        return { ...c, body: form };
      },
      status: 400,
      body: /"message":"Unknown or malformed parameter: subject"/,
    },
    { name: 'a missing message part', change: (c) => ({ ...c, body: mailgunForm(['b@example.net'], false) }), status: 400, body: /'message' parameter is missing/ },
    { name: 'a missing to', change: (c) => ({ ...c, body: mailgunForm([]) }), status: 400, body: /'to' parameter is missing/ },
    { name: 'more than 1000 recipients', change: (c) => ({ ...c, body: mailgunForm(many(1001)) }), status: 400, body: /maximum is 1000/ },
    {
      name: 'a malformed tracking option',
      change: (c) => {
        const form = mailgunForm(['b@example.net']);
        form.append('o:tracking', 'off');
        return { ...c, body: form };
      },
      status: 400,
      body: /o:tracking must be yes, no/,
    },
  ],
);

describe('fake ses verifies SigV4', () => {
  const credentials = { accessKeyId: 'AKIDTEST', secretAccessKey: 'secret/key+1', region: 'eu-west-1' };
  let fake: Awaited<ReturnType<typeof startSesFake>> | undefined;
  after(async () => fake?.close());
  const body = JSON.stringify({ Destination: { ToAddresses: ['b@example.net'] }, Content: { Raw: { Data: Buffer.from('From: a@example.org\r\n\r\nx\r\n').toString('base64') } } });
  async function signedSend(secret: string, keyId = credentials.accessKeyId, tamper?: (b: string) => string, region = credentials.region) {
    fake ??= await startSesFake(credentials);
    const url = new URL(fake.url + '/v2/email/outbound-emails');
    const signed = aws4.sign(
      { host: url.host, path: url.pathname, method: 'POST', service: 'ses', region, body, headers: { 'content-type': 'application/json' } },
      { accessKeyId: keyId, secretAccessKey: secret },
    );
    const headers = Object.fromEntries(
      Object.entries(signed.headers ?? {})
        .filter(([k]) => !/^(host|content-length)$/i.test(k))
        .map(([k, v]) => [k, String(v)]),
    );
    const response = await fetch(url, { method: 'POST', headers, body: tamper ? tamper(body) : body });
    return { status: response.status, type: response.headers.get('x-amzn-errortype') ?? '', text: await response.text() };
  }
  it('accepts a correctly signed request', async () => assert.equal((await signedSend(credentials.secretAccessKey)).status, 200));
  it('rejects a wrong secret key', async () => assert.match((await signedSend('wrong')).type, /^SignatureDoesNotMatch:/));
  it('rejects an unknown access key id', async () => assert.match((await signedSend(credentials.secretAccessKey, 'AKIDOTHER')).type, /^UnrecognizedClientException:/));
  it('rejects a body changed after signing', async () =>
    assert.match((await signedSend(credentials.secretAccessKey, undefined, (b) => b.replace('b@example', 'c@example'))).type, /^SignatureDoesNotMatch:/));
  it('rejects a signature for another region', async () => assert.match((await signedSend(credentials.secretAccessKey, undefined, undefined, 'us-east-1')).type, /^SignatureDoesNotMatch:/));
  const rawBody = (raw: string, to = 'b@example.net') => JSON.stringify({ Destination: { ToAddresses: [to] }, Content: { Raw: { Data: Buffer.from(raw).toString('base64') } } });
  it('rejects a non-ASCII recipient domain and a line over 998 octets when correctly signed', async () => {
    const f = (fake ??= await startSesFake(credentials));
    const before = f.accepted.length;
    for (const [payload, type] of [
      [rawBody('From: a@example.org\r\n\r\nx\r\n', 'b@bücher.example'), /^BadRequestException:/],
      [rawBody(`From: a@example.org\r\n\r\n${'x'.repeat(999)}\r\n`), /^MessageRejected:/],
    ] as const) {
      const url: URL = new URL(f.url + '/v2/email/outbound-emails');
      const signed = aws4.sign(
        { host: url.host, path: url.pathname, method: 'POST', service: 'ses', region: credentials.region, body: payload, headers: { 'content-type': 'application/json' } },
        credentials,
      );
      const headers = Object.fromEntries(
        Object.entries(signed.headers ?? {})
          .filter(([k]) => !/^(host|content-length)$/i.test(k))
          .map(([k, v]) => [k, String(v)]),
      );
      const response: Response = await fetch(url, { method: 'POST', headers, body: payload });
      assert.equal(response.status, 400);
      assert.match(response.headers.get('x-amzn-errortype') ?? '', type);
    }
    assert.equal(f.accepted.length, before);
  });
  it('rejects an unsigned request', async () => {
    fake ??= await startSesFake(credentials);
    const response = await fetch(fake.url + '/v2/email/outbound-emails', { method: 'POST', headers: { 'content-type': 'application/json' }, body });
    assert.equal(response.status, 403);
    assert.equal(fake.accepted.length, 1, 'only the correctly signed request was accepted');
  });
});
