/** Mailjet through the real daemon against the strict fake (test/fakes/mailjet.ts). */
import assert from 'node:assert/strict';
import { mailjetGlobalError, startMailjetFake } from './fakes/mailjet.js';
import type { Json } from './fakes/server.js';
import { providerSuite } from './helpers/provider-suite.js';
import { normalise, PDF, PNG, RICH } from './helpers/rest.js';

const KEY = 'mj-public-0123456789';
const SECRET = 'mj-secret-0123456789';
const emails = (v: unknown) => ((v as Array<{ Email: string }> | undefined) ?? []).map((c) => c.Email.toLowerCase());

providerSuite<Json>({
  type: 'mailjet',
  start: () => startMailjetFake(KEY, SECRET),
  upstream: (url) => `[[upstream]]\nname = "mailjet"\ntype = "mailjet"\napi_key = "\${MJ_KEY}"\nsecret_key = "\${MJ_SECRET}"\nendpoint = "${url}"\ntimeout = "5s"\n`,
  env: { MJ_KEY: KEY, MJ_SECRET: SECRET },
  secret: SECRET,
  recipientsOf: (a) => [...emails(a.payload.To), ...emails(a.payload.Cc), ...emails(a.payload.Bcc)].sort(),
  assertRich(a, built) {
    const m = a.payload;
    assert.deepEqual(m.From, { Email: RICH.from.address, Name: RICH.from.name });
    assert.deepEqual(m.To, [{ Email: RICH.to.address, Name: RICH.to.name }]);
    assert.deepEqual(m.Cc, [{ Email: RICH.cc.address, Name: RICH.cc.name }]);
    assert.deepEqual(m.Bcc, [{ Email: RICH.bcc }]);
    assert.deepEqual(m.ReplyTo, { Email: RICH.replyTo });
    assert.equal(m.Subject, built.subject);
    assert.equal(normalise(m.TextPart), normalise(RICH.text));
    assert.equal(m.HTMLPart, RICH.html);
    assert.deepEqual(m.Attachments, [{ ContentType: 'application/pdf', Filename: 'report.pdf', Base64Content: PDF.toString('base64') }]);
    assert.deepEqual(m.InlinedAttachments, [{ ContentType: 'image/png', Filename: 'logo.png', ContentID: RICH.cid, Base64Content: PNG.toString('base64') }]);
    const headers = m.Headers as Record<string, string>;
    assert.equal(headers['X-Report-ID'], 'Q3-2026');
    assert.equal(headers['In-Reply-To'], '<prev@example.org>');
    assert.equal(headers['Message-ID'], undefined, 'Mailjet forbids Message-ID; it sets its own (documented)');
    assert.match(String(m.CustomID), /^[0-9A-Z]+$/, 'CustomID carries the queue id');
  },
  textOf: (a) => `${(a.payload.TextPart as string | undefined) ?? ''}\n${(a.payload.HTMLPart as string | undefined) ?? ''}`,
  rateLimited: { status: 429, headers: { 'retry-after': '1' }, body: { ErrorIdentifier: 'x', StatusCode: 429, ErrorMessage: 'Too many requests' } },
  unauthorized: mailjetGlobalError(401, 'mj-0015', 'API key authentication/authorization failure.'),
  rejected: {
    status: 400,
    body: {
      Messages: [
        { Status: 'error', Errors: [{ ErrorIdentifier: 'id', ErrorCode: 'mj-0013', StatusCode: 400, ErrorMessage: '"bob@example" is an invalid email address.', ErrorRelatedTo: ['To[0].Email'] }] },
      ],
    },
  },
  rejectedQuote: /mj-0013: "bob@example" is an invalid email address/,
  rejectedStatus: /^5\.1\.3$/,
});
