/** Resend through the real daemon against the strict fake (test/fakes/resend.ts), including Idempotency-Key. */
import assert from 'node:assert/strict';
import { startResendFake } from './fakes/resend.js';
import { header, type Json } from './fakes/server.js';
import { providerSuite } from './helpers/provider-suite.js';
import { normalise, PDF, PNG, RICH } from './helpers/rest.js';

const KEY = 're_test_0123456789';
const bare = (v: string) => (/<([^>]+)>/.exec(v)?.[1] ?? v).toLowerCase();
const list = (v: unknown) => (Array.isArray(v) ? (v as string[]) : []);

providerSuite<Json>({
  type: 'resend',
  start: () => startResendFake(KEY),
  upstream: (url) => `[[upstream]]\nname = "resend"\ntype = "resend"\napi_key = "\${RESEND_KEY}"\nendpoint = "${url}"\ntimeout = "5s"\n`,
  env: { RESEND_KEY: KEY },
  secret: KEY,
  recipientsOf: (a) => [...list(a.payload.to), ...list(a.payload.cc), ...list(a.payload.bcc)].map(bare).sort(),
  assertRich(a, built) {
    const b = a.payload;
    assert.equal(b.from, `${RICH.from.name} <${RICH.from.address}>`);
    assert.deepEqual(b.to, [`${RICH.to.name} <${RICH.to.address}>`]);
    assert.deepEqual(b.cc, [`${RICH.cc.name} <${RICH.cc.address}>`]);
    assert.deepEqual(b.bcc, [RICH.bcc]);
    assert.deepEqual(b.reply_to, [RICH.replyTo]);
    assert.equal(b.subject, built.subject);
    assert.equal(normalise(b.text), normalise(RICH.text));
    assert.equal(b.html, RICH.html);
    assert.deepEqual(b.attachments, [
      { filename: 'logo.png', content: PNG.toString('base64'), content_type: 'image/png', content_id: RICH.cid },
      { filename: 'report.pdf', content: PDF.toString('base64'), content_type: 'application/pdf' },
    ]);
    const headers = b.headers as Record<string, string>;
    assert.equal(headers['Message-ID'], built.messageId);
    assert.equal(headers['X-Report-ID'], 'Q3-2026');
    assert.equal(headers.References, '<prev@example.org>');
    const key = header(a.request, 'idempotency-key');
    assert.match(key ?? '', /^mailshim-[0-9A-Z]+-[0-9a-f]{16}$/, 'Idempotency-Key derived from the queue id');
  },
  textOf: (a) => `${(a.payload.text as string | undefined) ?? ''}\n${(a.payload.html as string | undefined) ?? ''}`,
  rateLimited: {
    status: 429,
    headers: { 'retry-after': '1', 'ratelimit-reset': '1' },
    body: { statusCode: 429, name: 'rate_limit_exceeded', message: 'Too many requests. You can only make 2 requests per second.' },
  },
  unauthorized: { status: 401, body: { statusCode: 401, name: 'restricted_api_key', message: 'This API key is restricted to only send emails.' } },
  rejected: { status: 422, body: { statusCode: 422, name: 'invalid_attachment', message: 'Attachment must have either a `content` or `path`.' } },
  rejectedQuote: /invalid_attachment: Attachment must have either a `content` or `path`/,
  rejectedStatus: /^5\.6\.0$/,
});
