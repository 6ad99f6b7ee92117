/** Postmark through the real daemon against the strict fake (test/fakes/postmark.ts). */
import assert from 'node:assert/strict';
import { startPostmarkFake } from './fakes/postmark.js';
import type { Json } from './fakes/server.js';
import { providerSuite } from './helpers/provider-suite.js';
import { normalise, PDF, PNG, RICH } from './helpers/rest.js';

const TOKEN = 'pm-server-token-0123456789';
const split = (v: unknown) => (typeof v === 'string' ? v.split(',').map((s) => s.trim()) : []);
const bare = (v: string) => (/<([^>]+)>/.exec(v)?.[1] ?? v).toLowerCase();

providerSuite<Json>({
  type: 'postmark',
  start: () => startPostmarkFake(TOKEN),
  upstream: (url) => `[[upstream]]\nname = "postmark"\ntype = "postmark"\napi_key = "\${PM_TOKEN}"\nendpoint = "${url}"\ntimeout = "5s"\n`,
  env: { PM_TOKEN: TOKEN },
  secret: TOKEN,
  recipientsOf: (a) => [...split(a.payload.To), ...split(a.payload.Cc), ...split(a.payload.Bcc)].map(bare).sort(),
  assertRich(a, built) {
    const b = a.payload;
    assert.equal(b.From, `${RICH.from.name} <${RICH.from.address}>`);
    assert.equal(b.To, `${RICH.to.name} <${RICH.to.address}>`);
    assert.equal(b.Cc, `${RICH.cc.name} <${RICH.cc.address}>`);
    assert.equal(b.Bcc, RICH.bcc);
    assert.equal(b.ReplyTo, RICH.replyTo);
    assert.equal(b.Subject, built.subject);
    assert.equal(normalise(b.TextBody), normalise(RICH.text));
    assert.equal(b.HtmlBody, RICH.html);
    assert.deepEqual(b.Attachments, [
      { Name: 'logo.png', Content: PNG.toString('base64'), ContentType: 'image/png', ContentID: `cid:${RICH.cid}` },
      { Name: 'report.pdf', Content: PDF.toString('base64'), ContentType: 'application/pdf' },
    ]);
    const headers = Object.fromEntries((b.Headers as Array<{ Name: string; Value: string }>).map((h) => [h.Name, h.Value]));
    assert.equal(headers['Message-ID'], built.messageId);
    assert.equal(headers['X-Report-ID'], 'Q3-2026');
    assert.equal(headers['In-Reply-To'], '<prev@example.org>');
    assert.equal(headers['List-Unsubscribe'], '<mailto:unsub@example.org>');
  },
  textOf: (a) => `${(a.payload.TextBody as string | undefined) ?? ''}\n${(a.payload.HtmlBody as string | undefined) ?? ''}`,
  rateLimited: { status: 429, headers: { 'retry-after': '1' }, body: { ErrorCode: 429, Message: 'Rate limit exceeded.' } },
  unauthorized: { status: 401, body: { ErrorCode: 10, Message: 'The Server Token you provided in the X-Postmark-Server-Token request header was invalid.' } },
  rejected: { status: 422, body: { ErrorCode: 406, Message: 'You tried to send to recipient(s) that have been marked as inactive.' } },
  rejectedQuote: /406: You tried to send to recipient\(s\) that have been marked as inactive/,
  rejectedStatus: /^5\.1\.1$/,
});
