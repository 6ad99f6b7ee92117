/**
 * The gmail upstream in-process against the strict Google fakes (token endpoint with domain-wide
 * delegation, users.messages.send media upload, Gmail SMTP with XOAUTH2): both paths deliver the
 * body byte for byte with one token per impersonated mailbox, and delegation missing, an unknown
 * user, a 403 on send, rate limits and an early-expired token are handled as documented.
 */
import { bufferBody } from '../src/message/body.js';
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { classify } from '../src/delivery/classify.js';
import { GmailUpstream } from '../src/upstreams/gmail.js';
import type { OutboundMessage, RecipientResult } from '../src/upstreams/types.js';
import { GMAIL_SEND, MAIL_GOOGLE, startGoogle, type GoogleFake } from './fakes/google.js';
import { startOAuthSmtp, type OAuthSmtp } from './fakes/oauth-smtp.js';
import { makeServiceAccount, type ServiceAccount } from './helpers/oauth-keys.js';
import { bodyOf, gmailUpstream, oauthConfig, scannerMessage } from './helpers/oauth.js';
import { tempDir } from './helpers/tmp.js';

const MAILBOX = 'scanner@example.com';
let n = 0;
/** A message as the spool hands it over, with its bytes (`raw`) for the assertions. */
function message(recipients: string[], options: { from?: string; headerTo?: string[] } = {}): OutboundMessage & { raw: Buffer } {
  const from = options.from ?? MAILBOX;
  const raw = scannerMessage(from, options.headerTo ?? recipients, `gmail-${++n}`);
  return { id: `G${n}`, sender: from, recipients, raw, body: bufferBody(raw) };
}
const outcomes = (results: RecipientResult[]) => results.map((r) => `${r.recipient}:${classify(r.result).outcome}`);

describe('gmail upstream', () => {
  let fake: GoogleFake;
  let smtp: OAuthSmtp;
  let dir: ReturnType<typeof tempDir>;
  let account: ServiceAccount;
  const upstreams: GmailUpstream[] = [];
  const make = (via: 'api' | 'smtp' = 'api', extra = '') => {
    const upstream = new GmailUpstream(oauthConfig(dir.path, gmailUpstream({ url: fake.url, file: account.file, via, smtpPort: smtp.port, extra })) as never, 'relay.test');
    upstreams.push(upstream);
    return upstream;
  };

  before(async () => {
    dir = tempDir();
    account = makeServiceAccount(dir.path, 'https://oauth2.googleapis.com/token');
    fake = await startGoogle(account);
    smtp = await startOAuthSmtp({ style: 'gmail', scope: MAIL_GOOGLE, valid: (token, user) => Boolean(fake.validToken(token, user, MAIL_GOOGLE)) });
  });

  after(async () => {
    await Promise.all(upstreams.map((u) => u.close()));
    await fake.close();
    await smtp.close();
    dir.cleanup();
  });

  it('via api: media upload of the raw message as message/rfc822, impersonating the sender mailbox; Bcc for envelope-only recipients is stripped', async () => {
    const upstream = make();
    const m = message(['bob@example.net', 'erin@example.net'], { headerTo: ['bob@example.net'] });
    const before = fake.accepted.length;
    const results = await upstream.send(m);
    assert.deepEqual(outcomes(results), ['bob@example.net:delivered', 'erin@example.net:delivered']);
    const got = fake.accepted[before]!;
    assert.equal(got.payload.userId, MAILBOX);
    assert.ok(got.payload.raw.equals(m.raw), 'the delivered message is byte-identical (the added Bcc is gone)');
    assert.ok(bodyOf(got.payload.uploaded).equals(bodyOf(m.raw)));
    assert.deepEqual(got.payload.recipients.sort(), ['bob@example.net', 'erin@example.net']);
    assert.match((results[0]!.result as { reply: string }).reply, /id=fake-/);
    assert.equal(fake.tokens.at(-1)!.sub, MAILBOX);
    assert.deepEqual(fake.tokens.at(-1)!.scopes, [GMAIL_SEND]);
  });

  it('a sender outside the Workspace domains goes out as send_as', async () => {
    const before = fake.accepted.length;
    const results = await make().send({ ...message(['bob@example.net']), sender: 'cron@box.lan' });
    assert.deepEqual(outcomes(results), ['bob@example.net:delivered']);
    assert.equal(fake.accepted[before]!.payload.userId, MAILBOX);
  });

  it('delegation missing (unauthorized_client) → config with the admin-console step naming the client id and scope', async () => {
    fake.delegated.delete(GMAIL_SEND);
    try {
      const [r] = await make().send(message(['bob@example.net']));
      const c = classify(r!.result);
      assert.equal(c.outcome, 'config');
      assert.match(c.reply, /unauthorized_client/);
      assert.match(c.reply, new RegExp(`Domain Wide Delegation .*client ID ${account.clientId}, OAuth scopes ${GMAIL_SEND.replace(/\./g, '\\.')}`));
    } finally {
      fake.delegated.add(GMAIL_SEND);
    }
  });

  it('an unknown user (invalid_grant "Invalid email or User ID") → config: mailbox not found', async () => {
    const [r] = await make().send(message(['bob@example.net'], { from: 'gone@example.com' }));
    const c = classify(r!.result);
    assert.equal(c.outcome, 'config');
    assert.match(c.reply, /gone@example\.com is not a user of the Workspace/);
  });

  it('403 on send (delegation denied) → config with the fix; 429 and 403 userRateLimitExceeded → transient', async () => {
    const upstream = make();
    fake.script.push({
      status: 403,
      body: {
        error: {
          code: 403,
          message: `Delegation denied for ${MAILBOX}`,
          errors: [{ message: `Delegation denied for ${MAILBOX}`, domain: 'global', reason: 'forbidden' }],
          status: 'PERMISSION_DENIED',
        },
      },
    });
    const [a] = await upstream.send(message(['bob@example.net']));
    assert.equal(classify(a!.result).outcome, 'config');
    assert.match(classify(a!.result).reply, /fix: /);
    fake.script.push({
      status: 429,
      headers: { 'retry-after': '30' },
      body: { error: { code: 429, message: 'Too many concurrent requests for user', errors: [{ reason: 'rateLimitExceeded', domain: 'usageLimits', message: 'x' }], status: 'RESOURCE_EXHAUSTED' } },
    });
    const [b] = await upstream.send(message(['bob@example.net']));
    assert.equal(classify(b!.result).outcome, 'transient');
    assert.equal(classify(b!.result).retryAfterMs, 30_000);
    fake.script.push({
      status: 403,
      body: { error: { code: 403, message: 'User-rate limit exceeded', errors: [{ reason: 'userRateLimitExceeded', domain: 'usageLimits', message: 'x' }], status: 'PERMISSION_DENIED' } },
    });
    const [c] = await upstream.send(message(['bob@example.net']));
    assert.equal(classify(c!.result).outcome, 'transient');
  });

  it('a token that expires mid-queue is refreshed once per mailbox and nothing fails', async () => {
    const upstream = make();
    await upstream.send(message(['bob@example.net']));
    fake.expireTokens();
    const before = fake.tokenRequests;
    const results = await Promise.all([1, 2, 3].map(() => upstream.send(message(['bob@example.net']))));
    assert.deepEqual(
      results.flat().map((r) => classify(r.result).outcome),
      ['delivered', 'delivered', 'delivered'],
    );
    assert.equal(fake.tokenRequests - before, 1);
  });

  it('via smtp: AUTH XOAUTH2 with a mail.google.com token for the mailbox, envelope exact, message byte-identical', async () => {
    const m = message(['bob@example.net', 'erin@example.net'], { headerTo: ['bob@example.net'] });
    const count = smtp.messages.length;
    const results = await make('smtp').send(m);
    assert.deepEqual(outcomes(results), ['bob@example.net:delivered', 'erin@example.net:delivered']);
    const got = smtp.messages[count]!;
    assert.equal(got.user, MAILBOX);
    assert.deepEqual(got.recipients, ['bob@example.net', 'erin@example.net']);
    assert.ok(got.raw.equals(m.raw));
  });

  it('via smtp: delegation missing for mail.google.com → config before connecting', async () => {
    fake.delegated.delete(MAIL_GOOGLE);
    try {
      const [r] = await make('smtp').send(message(['bob@example.net']));
      assert.equal(classify(r!.result).outcome, 'config');
      assert.match(classify(r!.result).reply, /OAuth scopes https:\/\/mail\.google\.com\//);
    } finally {
      fake.delegated.add(MAIL_GOOGLE);
    }
  });

  it('via smtp: a token Gmail refuses at AUTH (XOAUTH2 challenge, then 535) → renewed, still refused → config', async () => {
    const refusing = await startOAuthSmtp({ style: 'gmail', scope: MAIL_GOOGLE, valid: () => false });
    try {
      const upstream = new GmailUpstream(oauthConfig(dir.path, gmailUpstream({ url: fake.url, file: account.file, via: 'smtp', smtpPort: refusing.port })) as never, 'relay.test');
      upstreams.push(upstream);
      const [r] = await upstream.send(message(['bob@example.net']));
      assert.equal(r!.result.kind, 'smtp');
      assert.equal(classify(r!.result).outcome, 'config');
      assert.ok(refusing.auths.length >= 2, 'a renewed token was tried');
    } finally {
      await refusing.close();
    }
  });
});
