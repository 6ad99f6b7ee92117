/** SparkPost (raw RFC 822 transmissions) through the real daemon against the strict fake (test/fakes/sparkpost.ts). */
import assert from 'node:assert/strict';
import type { Json } from './fakes/server.js';
import { sparkpostError, startSparkpostFake } from './fakes/sparkpost.js';
import { providerSuite } from './helpers/provider-suite.js';
import { assertRawUntouched } from './helpers/rest.js';

const KEY = 'sparkpost-key-0123456789';
const recipients = (p: Json) => (p.recipients as Array<{ address: { email: string } }>).map((r) => r.address.email.toLowerCase());

providerSuite<Json>({
  type: 'sparkpost',
  start: () => startSparkpostFake(KEY),
  upstream: (url) => `[[upstream]]\nname = "sparkpost"\ntype = "sparkpost"\napi_key = "\${SP_KEY}"\nendpoint = "${url}"\ntimeout = "5s"\n`,
  env: { SP_KEY: KEY },
  secret: KEY,
  recipientsOf: (a) => recipients(a.payload).sort(),
  requests: 3,
  assertRich(a, built) {
    const content = a.payload.content as { email_rfc822: string };
    assertRawUntouched(Buffer.from(content.email_rfc822, 'utf8'), built.raw);
    assert.deepEqual(Object.keys(a.payload).sort(), ['content', 'options', 'recipients']);
    assert.deepEqual(a.payload.options, { open_tracking: false, click_tracking: false, transactional: true });
  },
  textOf: (a) => (a.payload.content as { email_rfc822: string }).email_rfc822,
  rateLimited: { status: 429, headers: { 'retry-after': '1' }, body: { errors: [{ message: 'Too many requests' }] } },
  unauthorized: sparkpostError(403, '1100', 'permission denied'),
  rejected: sparkpostError(422, '1902', 'Message generation rejected', 'recipient address suppressed due to customer policy'),
  rejectedQuote: /1902: Message generation rejected: recipient address suppressed/,
  rejectedStatus: /^5\.1\.1$/,
});
