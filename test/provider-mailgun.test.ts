/** Mailgun (raw MIME via messages.mime) through the real daemon against the strict fake (test/fakes/mailgun.ts). */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startMailgunFake, type MailgunPayload } from './fakes/mailgun.js';
import { providerSuite } from './helpers/provider-suite.js';
import { assertRawUntouched } from './helpers/rest.js';

const KEY = 'key-mailgun-0123456789';
const DOMAIN = 'mg.example.org';
// api_key_file, as systemd credentials pass it (trailing newline trimmed).
const KEY_FILE = join(tmpdir(), `mailshim-mailgun-key-${process.pid}`);
writeFileSync(KEY_FILE, `${KEY}\n`, { mode: 0o600 });

providerSuite<MailgunPayload>({
  type: 'mailgun',
  start: () => startMailgunFake(KEY, DOMAIN),
  upstream: (url) => `[[upstream]]\nname = "mailgun"\ntype = "mailgun"\napi_key_file = "\${MG_KEY_FILE}"\ndomain = "${DOMAIN}"\nendpoint = "${url}"\ntimeout = "5s"\n`,
  env: { MG_KEY_FILE: KEY_FILE },
  secret: KEY,
  recipientsOf: (a) => a.payload.to.map((t) => t.toLowerCase()).sort(),
  assertRich(a, built) {
    assertRawUntouched(a.payload.message, built.raw);
    assert.deepEqual(a.payload.options, { 'o:tracking': 'no', 'o:tracking-clicks': 'no', 'o:tracking-opens': 'no' }, 'only tracking turned off');
  },
  textOf: (a) => a.payload.message.toString(),
  rateLimited: { status: 429, headers: { 'retry-after': '1' }, body: { message: 'Too many requests' } },
  unauthorized: { status: 401, body: 'Forbidden' },
  rejected: { status: 400, body: { message: 'to parameter is not a valid address. please check documentation' } },
  rejectedQuote: /to parameter is not a valid address/,
  rejectedStatus: /^5\.1\.3$/,
});
