/** SendGrid through the real daemon against the strict fake (test/fakes/sendgrid.ts). */
import assert from 'node:assert/strict';
import { startSendgridFake } from './fakes/sendgrid.js';
import type { Json } from './fakes/server.js';
import { providerSuite } from './helpers/provider-suite.js';
import { normalise, PDF, PNG, RICH } from './helpers/rest.js';

const KEY = 'SG.test-key-0123456789';
type Person = { email: string; name?: string };
const personalization = (p: Json) => (p.personalizations as Json[])[0]!;
const emails = (list: unknown) => ((list as Person[] | undefined) ?? []).map((a) => a.email);

providerSuite<Json>({
  type: 'sendgrid',
  start: () => startSendgridFake(KEY),
  upstream: (url) => `[[upstream]]\nname = "sendgrid"\ntype = "sendgrid"\napi_key = "\${SG_KEY}"\nendpoint = "${url}"\ntimeout = "5s"\n`,
  env: { SG_KEY: KEY },
  secret: KEY,
  recipientsOf: (a) => {
    const p = personalization(a.payload);
    return [...emails(p.to), ...emails(p.cc), ...emails(p.bcc)].map((e) => e.toLowerCase()).sort();
  },
  assertRich(a, built) {
    const body = a.payload;
    const p = personalization(body);
    assert.deepEqual(p.to, [{ email: RICH.to.address, name: RICH.to.name }]);
    assert.deepEqual(p.cc, [{ email: RICH.cc.address, name: RICH.cc.name }]);
    assert.deepEqual(p.bcc, [{ email: RICH.bcc }]);
    assert.deepEqual(body.from, { email: RICH.from.address, name: RICH.from.name });
    assert.deepEqual(body.reply_to, { email: RICH.replyTo });
    assert.equal(body.subject, built.subject);
    const content = body.content as Array<{ type: string; value: string }>;
    assert.deepEqual(
      content.map((c) => c.type),
      ['text/plain', 'text/html'],
    );
    assert.equal(normalise(content[0]!.value), normalise(RICH.text));
    assert.equal(content[1]!.value, RICH.html);
    const attachments = body.attachments as Json[];
    assert.deepEqual(attachments, [
      { content: PNG.toString('base64'), filename: 'logo.png', type: 'image/png', disposition: 'inline', content_id: RICH.cid },
      { content: PDF.toString('base64'), filename: 'report.pdf', type: 'application/pdf', disposition: 'attachment' },
    ]);
    const headers = body.headers as Record<string, string>;
    assert.equal(headers['Message-ID'], built.messageId);
    assert.equal(headers['X-Report-ID'], 'Q3-2026');
    assert.equal(headers['In-Reply-To'], '<prev@example.org>');
    assert.equal(headers.References, '<prev@example.org>');
    assert.equal(headers['List-Unsubscribe'], '<mailto:unsub@example.org>');
  },
  textOf: (a) => (a.payload.content as Array<{ value: string }>).map((c) => c.value).join('\n'),
  rateLimited: { status: 429, headers: { 'retry-after': '1' }, body: { errors: [{ field: null, message: 'too many requests' }] } },
  unauthorized: { status: 401, body: { errors: [{ field: null, message: 'The provided authorization grant is invalid, expired, or revoked', help: null }] } },
  rejected: { status: 400, body: { errors: [{ message: 'Does not contain a valid address.', field: 'personalizations.0.to.0.email', help: null }] } },
  rejectedQuote: /Does not contain a valid address/,
  rejectedStatus: /^5\.1\.3$/,
});
