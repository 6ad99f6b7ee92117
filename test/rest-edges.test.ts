/**
 * Issue 12, item by item: each REST provider as its documentation says it behaves, driven through
 * the real upstream modules against the strict fakes (test/fakes/*, each citing its source), and
 * the outcome read through the same classification the daemon uses. Every case here failed
 * against the first adapters (the fakes model what the APIs really do: drop, track, substitute,
 * refuse some recipients inside a 200, answer 64-bit ids).
 */
import { bufferBody } from '../src/message/body.js';
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import type { ApiKeyUpstreamConfig, MailgunUpstreamConfig, MailjetUpstreamConfig, SesUpstreamConfig, UnsupportedPolicy, UpstreamConfig } from '../src/config/types.js';
import { classify } from '../src/delivery/classify.js';
import { Router } from '../src/delivery/router.js';
import { BrevoUpstream } from '../src/upstreams/brevo.js';
import { MailgunUpstream } from '../src/upstreams/mailgun.js';
import { MailjetUpstream } from '../src/upstreams/mailjet.js';
import { PostmarkUpstream } from '../src/upstreams/postmark.js';
import { ResendUpstream } from '../src/upstreams/resend.js';
import { SendgridUpstream } from '../src/upstreams/sendgrid.js';
import { SesUpstream } from '../src/upstreams/ses.js';
import { SparkpostUpstream } from '../src/upstreams/sparkpost.js';
import type { OutboundMessage, RecipientResult, Upstream } from '../src/upstreams/types.js';
import { brevoError, startBrevoFake } from './fakes/brevo.js';
import { startMailgunFake } from './fakes/mailgun.js';
import { FIRST_MESSAGE_ID, startMailjetFake } from './fakes/mailjet.js';
import { startPostmarkFake } from './fakes/postmark.js';
import { startResendFake } from './fakes/resend.js';
import { startSendgridFake } from './fakes/sendgrid.js';
import { header, type Json } from './fakes/server.js';
import { sesError, startSesFake } from './fakes/ses.js';
import { startSparkpostFake } from './fakes/sparkpost.js';

const fakes: Array<{ close(): Promise<void> }> = [];
after(async () => {
  await Promise.all(fakes.map((f) => f.close()));
});
async function started<F extends { close(): Promise<void> }>(fake: Promise<F>): Promise<F> {
  const f = await fake;
  fakes.push(f);
  return f;
}

const common = (type: string, endpoint: string, extra: { timeout?: number; unsupported?: UnsupportedPolicy } = {}) => ({
  name: type,
  matchFrom: [],
  maxConcurrency: 5,
  timeout: extra.timeout ?? 5000,
  endpoint,
  unsupported: extra.unsupported,
});
const apiKey = (type: ApiKeyUpstreamConfig['type'], endpoint: string, key: string, extra: Parameters<typeof common>[2] & { messageStream?: string } = {}): ApiKeyUpstreamConfig => ({
  ...common(type, endpoint, extra),
  type,
  apiKey: key,
  ...(extra.messageStream ? { messageStream: extra.messageStream } : {}),
});

let serial = 0;
/** A message as the spool hands it over. */
function message(recipients: string[], headers: string, body: string, id = `Q${++serial}TEST`): OutboundMessage & { raw: Buffer } {
  const raw = `From: Alice <alice@example.org>\r\nSubject: test ${id}\r\nDate: Fri, 27 Nov 2026 10:00:00 +0000\r\nMessage-ID: <${id}@example.org>\r\nMIME-Version: 1.0\r\n${headers}\r\n${body}`;
  const bytes = Buffer.from(raw);
  return { id, sender: 'alice@example.org', recipients, raw: bytes, body: bufferBody(bytes) };
}
const textMessage = (recipients: string[], to = recipients.join(', '), body = 'cron: all good <ok> & done\r\n') =>
  message(recipients, `To: ${to}\r\nContent-Type: text/plain; charset=utf-8\r\n`, body);

const outcome = (results: RecipientResult[], recipient: string) => {
  const found = results.find((r) => r.recipient === recipient);
  assert.ok(found, `a result for ${recipient}`);
  return { ...classify(found.result), result: found.result };
};

describe('1. Brevo: htmlContent is required', () => {
  it('sends text-only mail as escaped <pre> HTML plus textContent', async () => {
    const fake = await started(startBrevoFake('xkeysib-1'));
    const results = await new BrevoUpstream(apiKey('brevo', fake.url, 'xkeysib-1')).send(textMessage(['bob@example.net']));
    assert.equal(outcome(results, 'bob@example.net').outcome, 'delivered');
    const sent = fake.accepted[0]!.payload;
    assert.equal(sent.htmlContent, '<pre>cron: all good &lt;ok&gt; &amp; done\n</pre>');
    assert.equal(sent.textContent, 'cron: all good <ok> & done\n');
  });
});

describe('2. Brevo: display names never cost a recipient', () => {
  it('shortens a name over 70 characters and cleans a non-ASCII name with specials', async () => {
    const fake = await started(startBrevoFake('xkeysib-2'));
    const long = 'The Very Long Name Of The Operations Team Of A Large And Busy Organisation';
    const m = textMessage(['bob@example.net', 'jorg@example.net'], `"${long}" <bob@example.net>, "Müller, Jörg" <jorg@example.net>`);
    const results = await new BrevoUpstream(apiKey('brevo', fake.url, 'xkeysib-2')).send(m);
    for (const r of ['bob@example.net', 'jorg@example.net']) assert.equal(outcome(results, r).outcome, 'delivered');
    const to = fake.accepted[0]!.payload.to as Array<{ email: string; name: string }>;
    assert.ok([...to[0]!.name].length <= 70, `shortened: ${to[0]!.name}`);
    assert.ok(to[0]!.name.startsWith('The Very Long Name'));
    assert.equal(to[1]!.name, 'Müller Jörg');
    assert.deepEqual(fake.dropped, [], 'Brevo dropped nobody');
  });
});

describe('3. Brevo: a repeated idempotency key means the first attempt was accepted', () => {
  it('records duplicate_parameter on a retry as delivered (inferred), and nothing is sent twice', async () => {
    const fake = await started(startBrevoFake('xkeysib-3'));
    const upstream = new BrevoUpstream(apiKey('brevo', fake.url, 'xkeysib-3', { timeout: 300 }));
    const m = textMessage(['bob@example.net']);
    fake.delayNext = 1000; // Brevo takes the request, the answer comes too late
    const first = outcome(await upstream.send(m), 'bob@example.net');
    assert.equal(first.outcome, 'transient');
    assert.equal(fake.accepted.length, 1, 'Brevo did accept the first request');
    const second = outcome(await upstream.send(m), 'bob@example.net');
    assert.equal(second.outcome, 'delivered');
    assert.match(second.reply, /duplicate_parameter.*inferred/);
    assert.equal(fake.accepted.length, 1, 'sent once');
    const keys = fake.received.map((r) => (JSON.parse(r.body.toString()) as { headers: Record<string, string> }).headers.idempotencyKey);
    assert.equal(new Set(keys).size, 1, 'both attempts carried the same key');
    assert.match(keys[0]!, /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/, 'a UUID, as Brevo documents');
  });

  it('never bounces on duplicate_parameter', async () => {
    const fake = await started(startBrevoFake('xkeysib-3b'));
    fake.script.push(brevoError(400, 'duplicate_parameter', 'Request with the same idempotencyKey has already been processed'));
    const got = outcome(await new BrevoUpstream(apiKey('brevo', fake.url, 'xkeysib-3b')).send(textMessage(['bob@example.net'])), 'bob@example.net');
    assert.notEqual(got.outcome, 'permanent');
  });
});

const htmlMessage = (recipients: string[], html: string) => message(recipients, `To: ${recipients.join(', ')}\r\nContent-Type: text/html; charset=utf-8\r\n`, `${html}\r\n`);

describe('4. SparkPost delivers the bytes it was given', () => {
  it('turns open and click tracking off: the message arrives unchanged', async () => {
    const fake = await started(startSparkpostFake('sp-4'));
    const m = htmlMessage(['bob@example.net'], '<html><body><a href="https://example.org/report">report</a></body></html>');
    const results = await new SparkpostUpstream(apiKey('sparkpost', fake.url, 'sp-4')).send(m);
    assert.equal(outcome(results, 'bob@example.net').outcome, 'delivered');
    assert.equal(fake.delivered[0], m.raw.toString(), 'no pixel, no rewritten link');
    assert.equal((fake.accepted[0]!.payload.options as Json).transactional, true);
  });

  it('does not hand SparkPost a message its {{…}} substitution would change, in the text or behind quoted-printable', async () => {
    const fake = await started(startSparkpostFake('sp-4b'));
    const upstream = new SparkpostUpstream(apiKey('sparkpost', fake.url, 'sp-4b'));
    const plain = textMessage(['bob@example.net'], 'bob@example.net', 'deploy template: {{ hostname }}\r\n');
    const qp = message(['bob@example.net'], 'To: bob@example.net\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n', '=7B=7Bsecret=7D=7D\r\n');
    for (const m of [plain, qp]) {
      const got = outcome(await upstream.send(m), 'bob@example.net');
      assert.equal(got.result.kind, 'unsupported');
      assert.match(got.reply, /"\{\{" in the body: SparkPost would treat it as template substitution/);
    }
    assert.equal(fake.received.length, 0);
  });
});

describe('5. SparkPost partial acceptance bounces the right address', () => {
  it('sends one transmission per recipient, so a rejection inside a 200 names its recipient', async () => {
    const fake = await started(startSparkpostFake('sp-5'));
    fake.rejects.add('gone@example.net');
    const results = await new SparkpostUpstream(apiKey('sparkpost', fake.url, 'sp-5')).send(textMessage(['bob@example.net', 'gone@example.net', 'carol@example.com']));
    assert.equal(outcome(results, 'bob@example.net').outcome, 'delivered');
    assert.equal(outcome(results, 'carol@example.com').outcome, 'delivered');
    const gone = outcome(results, 'gone@example.net');
    assert.equal(gone.outcome, 'permanent');
    assert.match(gone.reply, /suppressed/);
  });
});

describe('6. SendGrid display names with , or ;', () => {
  it('takes them out, so SendGrid does not silently drop the mail', async () => {
    const fake = await started(startSendgridFake('SG.6'));
    const m = textMessage(['john@example.net', 'ops@example.net'], '"Doe, John" <john@example.net>, "ops; night shift" <ops@example.net>');
    const results = await new SendgridUpstream(apiKey('sendgrid', fake.url, 'SG.6')).send(m);
    for (const r of ['john@example.net', 'ops@example.net']) assert.equal(outcome(results, r).outcome, 'delivered');
    assert.deepEqual(fake.dropped, []);
    const to = ((fake.accepted[0]!.payload.personalizations as Json[])[0]!.to as Json[]).map((a) => a.name);
    assert.deepEqual(to, ['Doe John', 'ops night shift']);
  });
});

describe('7. One invalid address does not bounce its group', () => {
  const group = ['bob@example.net', 'root@intranet', 'carol@example.com'];
  const onlyTheBadOneBounces = (results: RecipientResult[]) => {
    for (const r of group) assert.equal(outcome(results, r).outcome, r === 'root@intranet' ? 'permanent' : 'delivered', r);
  };

  it('Postmark ("Invalid \'To\' address", no address named): each recipient is tried alone, only the bad one bounces', async () => {
    const fake = await started(startPostmarkFake('pm-7'));
    onlyTheBadOneBounces(await new PostmarkUpstream(apiKey('postmark', fake.url, 'pm-7')).send(textMessage(group)));
    assert.deepEqual(fake.deliveredTo.flat().sort(), ['bob@example.net', 'carol@example.com']);
  });

  it('SendGrid (field personalizations.0.to.1.email): the named address bounces, the rest go in one request', async () => {
    const fake = await started(startSendgridFake('SG.7'));
    onlyTheBadOneBounces(await new SendgridUpstream(apiKey('sendgrid', fake.url, 'SG.7')).send(textMessage(group)));
    assert.equal(fake.received.length, 2, 'the first request, then one without the bad address');
  });

  it('Mailgun ("to parameter is not a valid address … root@intranet"): the address in the text bounces', async () => {
    const fake = await started(startMailgunFake('key-7', 'mg.example.org'));
    const upstream = new MailgunUpstream({ ...common('mailgun', fake.url), type: 'mailgun', apiKey: 'key-7', domain: 'mg.example.org' } satisfies MailgunUpstreamConfig);
    onlyTheBadOneBounces(await upstream.send(textMessage(group)));
    assert.deepEqual(fake.accepted[0]!.payload.to, ['bob@example.net', 'carol@example.com']);
  });

  it('Resend (validation_error, no address named): one by one', async () => {
    const fake = await started(startResendFake('re_7'));
    onlyTheBadOneBounces(await new ResendUpstream(apiKey('resend', fake.url, 're_7')).send(textMessage(group)));
  });

  it('a payload problem that is not about an address still applies to everyone (no per-recipient retries)', async () => {
    const fake = await started(startPostmarkFake('pm-7b'));
    const m = message(
      ['bob@example.net', 'carol@example.com'],
      'To: bob@example.net, carol@example.com\r\nContent-Type: multipart/mixed; boundary=b\r\n',
      '--b\r\nContent-Type: text/plain\r\n\r\nx\r\n--b\r\nContent-Type: application/octet-stream\r\nContent-Disposition: attachment; filename=setup.exe\r\n\r\nMZ\r\n--b--\r\n',
    );
    const results = await new PostmarkUpstream(apiKey('postmark', fake.url, 'pm-7b')).send(m);
    assert.equal(outcome(results, 'bob@example.net').outcome, 'permanent');
    assert.equal(outcome(results, 'carol@example.com').outcome, 'permanent');
    assert.equal(fake.received.length, 1);
  });
});

describe('8. Postmark inactive recipients and message stream', () => {
  it('bounces the inactive recipients named in a 200 and delivers the rest', async () => {
    const fake = await started(startPostmarkFake('pm-8'));
    fake.inactive.add('gone@example.net');
    const results = await new PostmarkUpstream(apiKey('postmark', fake.url, 'pm-8')).send(textMessage(['bob@example.net', 'gone@example.net']));
    assert.equal(outcome(results, 'bob@example.net').outcome, 'delivered');
    const gone = outcome(results, 'gone@example.net');
    assert.equal(gone.outcome, 'permanent');
    assert.equal(gone.status, '5.1.1');
    assert.match(gone.reply, /inactive addresses: gone@example\.net/);
  });

  it('sends on the configured message stream', async () => {
    const fake = await started(startPostmarkFake('pm-8b', { streams: ['outbound', 'alerts'] }));
    const results = await new PostmarkUpstream(apiKey('postmark', fake.url, 'pm-8b', { messageStream: 'alerts' })).send(textMessage(['bob@example.net']));
    assert.equal(outcome(results, 'bob@example.net').outcome, 'delivered');
    assert.equal(fake.accepted[0]!.payload.MessageStream, 'alerts');
  });
});

describe('9. SES: credential and clock errors are configuration; what SES refuses is caught first', () => {
  const credentials = { accessKeyId: 'AKID9', secretAccessKey: 'secret9', region: 'eu-west-1' };
  const ses = (url: string): SesUpstream => new SesUpstream({ ...common('ses', url), type: 'ses', ...credentials } satisfies SesUpstreamConfig);

  for (const name of ['RequestExpired', 'NotAuthorized', 'IncompleteSignature', 'AccessDeniedException', 'InvalidClientTokenId', 'SignatureDoesNotMatch', 'ExpiredToken']) {
    it(`holds on HTTP 400 ${name} (never bounces)`, async () => {
      const fake = await started(startSesFake(credentials));
      fake.script.push(sesError(400, name, 'fix your credentials or clock'));
      assert.equal(outcome(await ses(fake.url).send(textMessage(['bob@example.net'])), 'bob@example.net').outcome, 'config');
    });
  }

  it('does not send a raw line over 998 octets (says why)', async () => {
    const fake = await started(startSesFake(credentials));
    const got = outcome(await ses(fake.url).send(textMessage(['bob@example.net'], 'bob@example.net', `${'x'.repeat(1200)}\r\n`)), 'bob@example.net');
    assert.equal(got.result.kind, 'unsupported');
    assert.match(got.reply, /1200 octets long; SES refuses lines over 998 octets/);
    assert.equal(fake.received.length, 0);
  });

  it('does not send a header address with a non-ASCII domain (says why)', async () => {
    const fake = await started(startSesFake(credentials));
    const m = message(['bob@example.net'], 'To: bob@example.net\r\nCc: kurt@bücher.example\r\nContent-Type: text/plain; charset=utf-8\r\n', 'x\r\n');
    const got = outcome(await ses(fake.url).send(m), 'bob@example.net');
    assert.equal(got.result.kind, 'unsupported');
    assert.match(got.reply, /the Cc header has an address with a non-ASCII domain, which SES refuses/);
    assert.equal(fake.received.length, 0);
  });

  it('sends a non-ASCII recipient domain as punycode', async () => {
    const fake = await started(startSesFake(credentials));
    // The envelope (e.g. from an alias) has the Unicode domain; the header is already punycode.
    const results = await ses(fake.url).send(textMessage(['kurt@bücher.example'], 'kurt@xn--bcher-kva.example'));
    assert.equal(outcome(results, 'kurt@bücher.example').outcome, 'delivered');
    assert.deepEqual(fake.accepted[0]!.payload.destinations, ['kurt@xn--bcher-kva.example']);
  });
});

describe('10. Mailjet 64-bit MessageID', () => {
  it('records the id exactly as Mailjet sent it', async () => {
    const fake = await started(startMailjetFake('mj-10', 'secret'));
    const upstream = new MailjetUpstream({ ...common('mailjet', fake.url), type: 'mailjet', apiKey: 'mj-10', secretKey: 'secret' } satisfies MailjetUpstreamConfig);
    const results = await upstream.send(textMessage(['bob@example.net']));
    const sent = /"MessageID":(\d+)/.exec(String(fake.replies[0]!.body))![1]!;
    assert.ok(BigInt(sent) >= FIRST_MESSAGE_ID && BigInt(sent) > BigInt(Number.MAX_SAFE_INTEGER));
    const got = results[0]!.result;
    assert.ok(got.kind === 'accepted');
    assert.equal(got.providerMessageId, sent);
    assert.match(got.reply, new RegExp(`id=${sent}$`));
  });
});

describe('11. Mailgun raw MIME is not tracked', () => {
  it('sends o:tracking=no (and clicks/opens): the message arrives as accepted', async () => {
    const fake = await started(startMailgunFake('key-11', 'mg.example.org'));
    const upstream = new MailgunUpstream({ ...common('mailgun', fake.url), type: 'mailgun', apiKey: 'key-11', domain: 'mg.example.org' } satisfies MailgunUpstreamConfig);
    const m = htmlMessage(['bob@example.net'], '<html><body><a href="https://example.org/x">x</a></body></html>');
    assert.equal(outcome(await upstream.send(m), 'bob@example.net').outcome, 'delivered');
    assert.deepEqual(fake.accepted[0]!.payload.options, { 'o:tracking': 'no', 'o:tracking-clicks': 'no', 'o:tracking-opens': 'no' });
    assert.ok(fake.delivered[0]!.equals(m.raw), 'no rewritten link, no pixel');
  });
});

describe('12. Rate limits', () => {
  it("reads Brevo's x-sib-ratelimit-reset and SendGrid's X-RateLimit-Reset on a 429", async () => {
    const brevo = await started(startBrevoFake('xkeysib-12'));
    brevo.script.push({
      status: 429,
      headers: { 'x-sib-ratelimit-limit': '1000', 'x-sib-ratelimit-remaining': '0', 'x-sib-ratelimit-reset': '7' },
      body: { code: 'too_many_requests', message: 'The expected rate limit is exceeded.' },
    });
    const b = (await new BrevoUpstream(apiKey('brevo', brevo.url, 'xkeysib-12', { timeout: 1000 })).send(textMessage(['bob@example.net'])))[0]!.result;
    assert.ok(b.kind === 'http' && b.retryAfterMs === 7000, JSON.stringify(b));
    assert.equal(classify(b).outcome, 'transient');

    const sendgrid = await started(startSendgridFake('SG.12'));
    const reset = Math.floor(Date.now() / 1000) + 30;
    sendgrid.script.push({
      status: 429,
      headers: { 'x-ratelimit-limit': '600', 'x-ratelimit-remaining': '0', 'x-ratelimit-reset': String(reset) },
      body: { errors: [{ field: null, message: 'too many requests' }] },
    });
    const s = (await new SendgridUpstream(apiKey('sendgrid', sendgrid.url, 'SG.12', { timeout: 1000 })).send(textMessage(['bob@example.net'])))[0]!.result;
    assert.ok(s.kind === 'http' && s.retryAfterMs !== undefined && s.retryAfterMs > 20_000 && s.retryAfterMs <= 30_000, JSON.stringify(s));
  });

  it("holds the upstream's next requests until the reset instead of sending into the limit", async () => {
    const fake = await started(startResendFake('re_12'));
    const upstream = new ResendUpstream(apiKey('resend', fake.url, 're_12', { timeout: 5000 }));
    fake.script.push({ status: 429, headers: { 'retry-after': '1', 'ratelimit-reset': '1' }, body: { statusCode: 429, name: 'rate_limit_exceeded', message: 'Too many requests.' } });
    const limited = (await upstream.send(textMessage(['bob@example.net'])))[0]!.result;
    assert.ok(limited.kind === 'http' && limited.status === 429 && limited.retryAfterMs === 1000);
    const askedAt = Date.now();
    const next = await upstream.send(textMessage(['carol@example.com']));
    assert.equal(next[0]!.result.kind, 'accepted');
    assert.ok(Date.now() - askedAt >= 900, 'the next request waited for the reset');
    assert.equal(fake.received.length, 2, 'and was not refused again');
  });

  it('defers without a request while a reset longer than the timeout is pending', async () => {
    const fake = await started(startResendFake('re_12b'));
    const upstream = new ResendUpstream(apiKey('resend', fake.url, 're_12b', { timeout: 1000 }));
    fake.script.push({ status: 429, headers: { 'retry-after': '60' }, body: { statusCode: 429, name: 'rate_limit_exceeded', message: 'Too many requests.' } });
    await upstream.send(textMessage(['bob@example.net']));
    const held = (await upstream.send(textMessage(['carol@example.com'])))[0]!.result;
    assert.ok(held.kind === 'http' && held.status === 429 && held.retryAfterMs! > 50_000, JSON.stringify(held));
    assert.equal(classify(held).outcome, 'transient');
    assert.equal(fake.received.length, 1, 'nothing sent into the limit');
  });

  it('cools the upstream down exactly as long as the provider asked, not for the retry backoff', async () => {
    let now = 1_000_000;
    const limited: Upstream = {
      name: 'limited',
      type: 'resend',
      send: async (m) => m.recipients.map((recipient) => ({ recipient, result: { kind: 'http', provider: 'resend', status: 429, text: 'Too many requests', retryAfterMs: 2000 } })),
      close: async () => {},
    };
    const config = { name: 'limited', type: 'maildir', path: '/nonexistent', matchFrom: [], maxConcurrency: 1, timeout: 1000 } as UpstreamConfig;
    const router = new Router([limited], [config], { initialDelay: 60_000, maxDelay: 3_600_000, maxAge: 86_400_000 }, () => now);
    for (let i = 0; i < 3; i++) await router.deliver(textMessage(['bob@example.net']));
    assert.equal(router.health()[0]!.coolDownUntil, now + 2000);
    assert.equal(router.pausedUntil(), now + 2000, 'delivery pauses for the 2 s asked, not the 60 s+ backoff');
    now += 2001;
    assert.equal(router.pausedUntil(), undefined);
  });
});

describe('13. unsupported = "fallback" | "degrade" | "bounce"', () => {
  const inline = () =>
    message(
      ['bob@example.net'],
      'To: bob@example.net\r\nContent-Type: multipart/related; boundary=r\r\n',
      '--r\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<p><img src="cid:logo@x"></p>\r\n--r\r\nContent-Type: image/png\r\nContent-ID: <logo@x>\r\nContent-Disposition: inline; filename=logo.png\r\nContent-Transfer-Encoding: base64\r\n\r\niVBORw0KGgo=\r\n--r--\r\n',
    );

  it('fallback (default): unsupported here, another upstream may carry it', async () => {
    const fake = await started(startBrevoFake('xkeysib-13'));
    const got = (await new BrevoUpstream(apiKey('brevo', fake.url, 'xkeysib-13')).send(inline()))[0]!.result;
    assert.ok(got.kind === 'unsupported' && !got.final);
  });

  it('degrade: the inline image goes as a regular attachment, and the delivery says so', async () => {
    const fake = await started(startBrevoFake('xkeysib-13b'));
    const got = (await new BrevoUpstream(apiKey('brevo', fake.url, 'xkeysib-13b', { unsupported: 'degrade' })).send(inline()))[0]!.result;
    assert.ok(got.kind === 'accepted');
    assert.match(got.reply, /degraded: inline part cid:logo@x sent as a regular attachment/);
    assert.deepEqual(
      (fake.accepted[0]!.payload.attachment as Json[]).map((a) => a.name),
      ['logo.png'],
    );
  });

  it('bounce: bounced at once with the reason, no other upstream tried', async () => {
    const fake = await started(startBrevoFake('xkeysib-13c'));
    const brevo = new BrevoUpstream(apiKey('brevo', fake.url, 'xkeysib-13c', { unsupported: 'bounce' }));
    let tried = 0;
    const other: Upstream = {
      name: 'other',
      type: 'smtp',
      send: async (m) => (tried++, m.recipients.map((recipient) => ({ recipient, result: { kind: 'accepted', reply: '250 ok' } }))),
      close: async () => {},
    };
    const config = (name: string) => ({ name, type: 'maildir', path: '/nonexistent', matchFrom: [], maxConcurrency: 1, timeout: 1000 }) as UpstreamConfig;
    const outcomes = await new Router([brevo, other], [config('brevo'), config('other')], { initialDelay: 1000, maxDelay: 60_000, maxAge: 86_400_000 }).deliver(inline());
    const got = outcomes.get('bob@example.net')!;
    assert.equal(got.outcome, 'permanent');
    assert.match(got.reply, /cannot send inline parts with a Content-ID/);
    assert.equal(tried, 0);
  });
});

describe('14. Attachments: charset kept, names readable', () => {
  const withAttachment = (recipients: string[]) =>
    message(
      recipients,
      `To: ${recipients.join(', ')}\r\nContent-Type: multipart/mixed; boundary=m\r\n`,
      "--m\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nsee attached\r\n--m\r\nContent-Type: text/plain; charset=iso-8859-1\r\nContent-Disposition: attachment; filename*=utf-8''r%C3%A9sum%C3%A9.txt\r\nContent-Transfer-Encoding: base64\r\n\r\n" +
        Buffer.from('caf\xe9\n', 'latin1').toString('base64') +
        '\r\n--m--\r\n',
    );

  it('a text attachment keeps its charset (SendGrid type)', async () => {
    const fake = await started(startSendgridFake('SG.14'));
    await new SendgridUpstream(apiKey('sendgrid', fake.url, 'SG.14')).send(withAttachment(['bob@example.net']));
    const [a] = fake.accepted[0]!.payload.attachments as Json[];
    assert.equal(a!.type, 'text/plain; charset=iso-8859-1');
    assert.equal(a!.filename, 'résumé.txt');
    assert.equal(Buffer.from(String(a!.content), 'base64').toString('latin1'), 'caf\xe9\n', 'the bytes as written');
  });

  it('a non-ASCII filename arrives readable through Brevo, which garbles non-ASCII names', async () => {
    const fake = await started(startBrevoFake('xkeysib-14'));
    await new BrevoUpstream(apiKey('brevo', fake.url, 'xkeysib-14')).send(withAttachment(['bob@example.net']));
    assert.deepEqual(fake.deliveredFilenames, ['resume.txt']);
  });

  it('the request is what the provider documents (sanity: api key header sent)', async () => {
    const fake = await started(startBrevoFake('xkeysib-14b'));
    await new BrevoUpstream(apiKey('brevo', fake.url, 'xkeysib-14b')).send(textMessage(['bob@example.net']));
    assert.equal(header(fake.received[0]!, 'api-key'), 'xkeysib-14b');
  });
});
