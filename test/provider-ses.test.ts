/**
 * Amazon SES v2 (raw content, SigV4) through the real daemon against the strict fake
 * (test/fakes/ses.ts), which verifies every signature server-side with its own node:crypto SigV4.
 */
import assert from 'node:assert/strict';
import { sesError, startSesFake, type SesPayload } from './fakes/ses.js';
import { providerSuite } from './helpers/provider-suite.js';
import { assertRawUntouched } from './helpers/rest.js';

const CREDENTIALS = { accessKeyId: 'AKIDEXAMPLE0123456789', secretAccessKey: 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY', region: 'eu-west-1' };

providerSuite<SesPayload>({
  type: 'ses',
  start: () => startSesFake(CREDENTIALS),
  upstream: (url) =>
    `[[upstream]]\nname = "ses"\ntype = "ses"\naccess_key_id = "${CREDENTIALS.accessKeyId}"\nsecret_access_key = "\${AWS_SECRET}"\nregion = "${CREDENTIALS.region}"\nendpoint = "${url}"\ntimeout = "5s"\n`,
  env: { AWS_SECRET: CREDENTIALS.secretAccessKey },
  secret: CREDENTIALS.secretAccessKey,
  recipientsOf: (a) => a.payload.destinations.map((d) => d.toLowerCase()).sort(),
  assertRich(a, built) {
    assertRawUntouched(a.payload.raw, built.raw);
    assert.deepEqual(Object.keys(a.payload.body).sort(), ['Content', 'Destination']);
  },
  textOf: (a) => a.payload.raw.toString(),
  rateLimited: { ...sesError(429, 'TooManyRequestsException', 'Maximum sending rate exceeded.'), headers: { 'x-amzn-errortype': 'TooManyRequestsException', 'retry-after': '1' } },
  unauthorized: sesError(403, 'AccessDeniedException', 'User is not authorized to perform ses:SendEmail'),
  rejected: sesError(400, 'MessageRejected', 'Illegal address'),
  rejectedQuote: /MessageRejected: Illegal address/,
  rejectedStatus: /^5\.7\.1$/,
});
