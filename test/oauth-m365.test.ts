/**
 * The m365 upstream in-process against the strict Microsoft fakes (token endpoint, Graph
 * sendMail, Exchange SMTP with XOAUTH2): both paths deliver the body byte for byte, secret and
 * certificate credentials, every error class of issue 13 classified as documented, Graph's 4 MB
 * limit decided before sending, and a token that expires between messages refreshed once.
 */
import { bufferBody } from '../src/message/body.js';
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { classify } from '../src/delivery/classify.js';
import { Router } from '../src/delivery/router.js';
import { M365Upstream } from '../src/upstreams/m365.js';
import type { OutboundMessage, RecipientResult } from '../src/upstreams/types.js';
import { EXCHANGE_SCOPE, startMicrosoft, type MicrosoftFake } from './fakes/microsoft.js';
import { startOAuthSmtp, type OAuthSmtp } from './fakes/oauth-smtp.js';
import { makeAppCertificate, type AppCertificate } from './helpers/oauth-keys.js';
import { bodyOf, m365Upstream, oauthConfig, scannerMessage } from './helpers/oauth.js';
import { tempDir } from './helpers/tmp.js';

const MAILBOX = 'scanner@contoso.com';
let n = 0;
/** A message as the spool hands it over, with its bytes (`raw`) for the assertions. */
function message(recipients: string[], options: { from?: string; headerTo?: string[]; bytes?: number } = {}): OutboundMessage & { raw: Buffer } {
  const tag = `m365-${++n}`;
  const from = options.from ?? MAILBOX;
  const raw = scannerMessage(from, options.headerTo ?? recipients, tag, options.bytes);
  return { id: `Q${n}`, sender: from, recipients, raw, body: bufferBody(raw) };
}
const outcomes = (results: RecipientResult[]) => results.map((r) => `${r.recipient}:${classify(r.result).outcome}`);

describe('m365 upstream', () => {
  let fake: MicrosoftFake;
  let smtp: OAuthSmtp;
  let dir: ReturnType<typeof tempDir>;
  let cert: AppCertificate;
  let expired: AppCertificate;
  const upstreams: M365Upstream[] = [];
  const make = (keys: Partial<Parameters<typeof m365Upstream>[1]> = {}) => {
    const upstream = new M365Upstream(
      oauthConfig(dir.path, m365Upstream(dir.path, { url: fake.url, tenant: fake.tenant, clientId: fake.clientId, secret: fake.secret, smtpPort: smtp.port, ...keys })) as never,
      'relay.test',
    );
    upstreams.push(upstream);
    return upstream;
  };

  before(async () => {
    dir = tempDir();
    cert = makeAppCertificate(dir.path, 'app');
    expired = makeAppCertificate(dir.path, 'old', true);
    fake = await startMicrosoft({ certificate: cert.cert });
    smtp = await startOAuthSmtp({ style: 'exchange', scope: EXCHANGE_SCOPE, valid: (token) => Boolean(fake.validToken(token, EXCHANGE_SCOPE)?.roles.includes('SMTP.SendAsApp')) });
  });

  after(async () => {
    await Promise.all(upstreams.map((u) => u.close()));
    await fake.close();
    await smtp.close();
    dir.cleanup();
  });

  it('via graph: sendMail with the base64 MIME as text/plain, the body arriving byte-identical; envelope-only recipients go in a Bcc the API strips', async () => {
    const upstream = make();
    const m = message(['bob@example.net', 'erin@example.net'], { headerTo: ['bob@example.net'] });
    const before = fake.accepted.length;
    const results = await upstream.send(m);
    assert.deepEqual(outcomes(results), ['bob@example.net:delivered', 'erin@example.net:delivered']);
    const got = fake.accepted[before]!;
    assert.equal(got.payload.mailbox, MAILBOX);
    assert.equal(got.request.headers['content-type'], 'text/plain');
    assert.ok(bodyOf(got.payload.mime).equals(bodyOf(m.raw)), 'body byte-identical');
    assert.ok(got.payload.mime.subarray(got.payload.mime.length - m.raw.length).equals(m.raw), 'the message itself is untouched after the added Bcc field');
    assert.deepEqual(got.payload.recipients.sort(), ['bob@example.net', 'erin@example.net']);
  });

  it('via graph: a header recipient outside the envelope cannot be expressed: unsupported (next upstream), nothing sent', async () => {
    const upstream = make();
    const before = fake.received.length;
    const results = await upstream.send(message(['bob@example.net'], { headerTo: ['bob@example.net', 'root@localhost.lan'] }));
    assert.equal(results[0]!.result.kind, 'unsupported');
    assert.match((results[0]!.result as { text: string }).text, /root@localhost\.lan.*via = "smtp"/);
    assert.equal(fake.received.filter((r) => r.path.includes('sendMail')).length, fake.received.slice(0, before).filter((r) => r.path.includes('sendMail')).length);
  });

  it('via graph: over the 4 MB request limit is decided before sending and handed on as unsupported', async () => {
    const upstream = make();
    const sends = () => fake.received.filter((r) => r.path.includes('sendMail')).length;
    const before = sends();
    const results = await upstream.send(message(['bob@example.net'], { bytes: 3_200_000 }));
    assert.equal(results[0]!.result.kind, 'unsupported');
    assert.match((results[0]!.result as { text: string }).text, /4 MB request limit.*via = "smtp"/);
    assert.equal(sends(), before, 'no request was made');
  });

  it('a certificate credential (PS256 client assertion with x5t#S256) gets a token and delivers', async () => {
    const upstream = make({ secret: undefined, certificate: cert });
    const results = await upstream.send(message(['bob@example.net']));
    assert.deepEqual(outcomes(results), ['bob@example.net:delivered']);
  });

  it('an expired certificate is a configuration error with the fix, found before asking Microsoft', async () => {
    const upstream = make({ secret: undefined, certificate: expired });
    const requests = fake.tokenRequests;
    const [r] = await upstream.send(message(['bob@example.net']));
    assert.equal(classify(r!.result).outcome, 'config');
    assert.match(classify(r!.result).reply, /expired.*fix: create a new certificate/);
    assert.equal(fake.tokenRequests, requests);
  });

  for (const [what, keys, code, fix] of [
    ['wrong secret (AADSTS7000215)', { secret: 'the-secret-id-not-the-value' }, 'AADSTS7000215', /new client secret and put its Value/],
    ['unknown application (AADSTS700016)', { clientId: '99999999-2222-3333-4444-555555555555' }, 'AADSTS700016', /Application \(client\) ID/],
    ['unknown tenant (AADSTS90002)', { tenant: 'nosuch.onmicrosoft.com' }, 'AADSTS90002', /Directory \(tenant\) ID/],
  ] as const) {
    it(`token error ${what} → config, never a bounce, with the fix in the reply`, async () => {
      const upstream = make(keys);
      const [r] = await upstream.send(message(['bob@example.net']));
      assert.equal(r!.result.kind, 'http');
      assert.equal((r!.result as { errorCode?: string }).errorCode, code);
      const c = classify(r!.result);
      assert.equal(c.outcome, 'config');
      assert.match(c.reply, fix);
    });
  }

  it('401/403 on send → config: consent missing gives the admin-consent step', async () => {
    fake.roles['https://graph.microsoft.com/.default'] = [];
    try {
      const [r] = await make().send(message(['bob@example.net']));
      const c = classify(r!.result);
      assert.equal(c.outcome, 'config');
      assert.match(c.reply, /ErrorAccessDenied|Access is denied/);
      assert.match(c.reply, /Mail\.Send, then "Grant admin consent"/);
    } finally {
      fake.roles['https://graph.microsoft.com/.default'] = ['Mail.Send'];
    }
  });

  it('ErrorSendAsDenied → config for that message, with the fix', async () => {
    const [r] = await make().send({
      ...message(['bob@example.net'], { from: 'alerts@contoso.com' }),
      sender: 'alerts@contoso.com',
      body: bufferBody(scannerMessage('ceo@contoso.com', ['bob@example.net'], 'sendas')),
    });
    const c = classify(r!.result);
    assert.equal(c.outcome, 'config');
    assert.match(c.reply, /ErrorSendAsDenied|right to send mail on behalf/);
    assert.match(c.reply, /fix: alerts@contoso\.com may only send with itself in From/);
  });

  it('429 with Retry-After and 503 MailboxConcurrency / ApplicationThrottled → transient, Retry-After honoured', async () => {
    const upstream = make();
    fake.script.push({ status: 429, headers: { 'retry-after': '7' }, body: { error: { code: 'ApplicationThrottled', message: 'Application is over its MailboxConcurrency limit.' } } });
    const [a] = await upstream.send(message(['bob@example.net']));
    assert.equal(classify(a!.result).outcome, 'transient');
    assert.equal(classify(a!.result).retryAfterMs, 7000);
    fake.script.push({ status: 503, body: { error: { code: 'MailboxConcurrency', message: 'Application is over its MailboxConcurrency limit.' } } });
    const [b] = await upstream.send(message(['bob@example.net']));
    assert.equal(classify(b!.result).outcome, 'transient');
  });

  it('ErrorInvalidRecipients naming a recipient → that recipient permanent, the others retried', async () => {
    fake.invalidRecipients.add('nobody@contoso.com');
    try {
      const results = await make().send(message(['bob@example.net', 'nobody@contoso.com']));
      assert.deepEqual(outcomes(results), ['bob@example.net:transient', 'nobody@contoso.com:permanent']);
    } finally {
      fake.invalidRecipients.clear();
    }
  });

  it('a mailbox that does not exist → config with the fix', async () => {
    const [r] = await make().send(message(['bob@example.net'], { from: 'gone@contoso.com' }));
    const c = classify(r!.result);
    assert.equal(c.outcome, 'config');
    assert.match(c.reply, /gone@contoso\.com is not a mailbox in tenant/);
  });

  it('a token that expires mid-queue is refreshed once (single flight) and nothing fails', async () => {
    const upstream = make();
    assert.deepEqual(outcomes(await upstream.send(message(['bob@example.net']))), ['bob@example.net:delivered']);
    const before = fake.tokenRequests;
    fake.expireTokens();
    const results = await Promise.all([1, 2, 3, 4].map(() => upstream.send(message(['bob@example.net']))));
    assert.deepEqual(
      results.flat().map((r) => classify(r.result).outcome),
      ['delivered', 'delivered', 'delivered', 'delivered'],
    );
    assert.equal(fake.tokenRequests - before, 1, 'one token request for four deliveries');
  });

  it('via smtp: AUTH XOAUTH2 with the Exchange-scoped token, MAIL FROM the mailbox, body byte-identical', async () => {
    const upstream = make({ via: 'smtp' });
    const m = message(['bob@example.net', 'erin@example.net'], { headerTo: ['bob@example.net'] });
    const count = smtp.messages.length;
    const results = await upstream.send(m);
    assert.deepEqual(outcomes(results), ['bob@example.net:delivered', 'erin@example.net:delivered']);
    const got = smtp.messages[count]!;
    assert.equal(got.user, MAILBOX);
    assert.equal(got.sender, MAILBOX);
    assert.deepEqual(got.recipients, ['bob@example.net', 'erin@example.net']);
    assert.ok(got.raw.equals(m.raw), 'the message arrives byte for byte');
  });

  it('via smtp: Exchange refusing the token (535 5.7.3, service principal not registered) → config', async () => {
    fake.roles[EXCHANGE_SCOPE] = [];
    try {
      const [r] = await make({ via: 'smtp' }).send(message(['bob@example.net']));
      assert.equal(r!.result.kind, 'smtp');
      assert.match(classify(r!.result).reply, /535 5\.7\.3/);
      assert.equal(classify(r!.result).outcome, 'config');
    } finally {
      fake.roles[EXCHANGE_SCOPE] = ['SMTP.SendAsApp'];
    }
  });

  it('via smtp: a token refused at AUTH (expired early) is fetched again once and the message goes through', async () => {
    // A server that drops idle connections, so the second message needs a new AUTH with the cached token.
    const idle = await startOAuthSmtp({ style: 'exchange', scope: EXCHANGE_SCOPE, socketTimeout: 300, valid: (token) => Boolean(fake.validToken(token, EXCHANGE_SCOPE)) });
    try {
      const upstream = make({ via: 'smtp', smtpPort: idle.port });
      assert.deepEqual(outcomes(await upstream.send(message(['bob@example.net']))), ['bob@example.net:delivered']);
      await idle.waitForClosed(1);
      fake.expireTokens();
      const before = fake.tokenRequests;
      assert.deepEqual(outcomes(await upstream.send(message(['bob@example.net']))), ['bob@example.net:delivered']);
      assert.equal(fake.tokenRequests - before, 1, 'exactly one new token');
      assert.deepEqual(
        idle.auths.map((a) => a.ok),
        [true, false, true],
      );
    } finally {
      await idle.close();
    }
  });

  it('a sender outside mailbox_domains without send_as is held as configuration naming the key', async () => {
    const upstream = make({ extra: '' });
    const bare = new M365Upstream({ ...(upstream as unknown as { config: object }).config, sendAs: undefined } as never, 'relay.test');
    upstreams.push(bare);
    const [r] = await bare.send({ ...message(['bob@example.net']), sender: 'root@box.lan' });
    const c = classify(r!.result);
    assert.equal(c.outcome, 'config');
    assert.match(c.reply, /sender <root@box\.lan> is not a mailbox .* fix: set send_as/);
  });

  it('Exchange 535 5.7.139 (basic auth disabled) and 5.7.3 at AUTH are configuration errors', () => {
    for (const [enhanced, text] of [
      ['5.7.139', 'Authentication unsuccessful, basic authentication is disabled.'],
      ['5.7.3', 'Authentication unsuccessful'],
    ] as const) {
      assert.equal(classify({ kind: 'smtp', code: 535, enhanced, text, stage: 'auth' }).outcome, 'config', enhanced);
    }
  });

  it('ErrorSendAsDenied holds that message only: the upstream does not cool down and the next message goes out', async () => {
    const upstream = make();
    const router = new Router([upstream], [oauthConfig(dir.path, m365Upstream(dir.path, { url: fake.url, tenant: fake.tenant, clientId: fake.clientId, secret: fake.secret }))], {
      initialDelay: 60_000,
      maxDelay: 3_600_000,
      maxAge: 86_400_000,
    });
    const bad = await router.deliver({ ...message(['bob@example.net']), body: bufferBody(scannerMessage('ceo@contoso.com', ['bob@example.net'], 'router-sendas')) });
    assert.equal(bad.get('bob@example.net')!.outcome, 'config');
    assert.equal(router.health()[0]!.coolDownUntil, null, 'no cool-down for a per-message problem');
    const good = await router.deliver(message(['bob@example.net']));
    assert.equal(good.get('bob@example.net')!.outcome, 'delivered');
  });
});
