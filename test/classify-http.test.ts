/** The HTTP classification tables, row by row: every rule is hit by at least one case below. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { classifyHttp, httpRule, PROVIDER_HTTP_RULES, SHARED_HTTP_RULES, type HttpResult, type HttpRule } from '../src/delivery/classify-http.js';
import { classify } from '../src/delivery/classify.js';

type Case = [provider: string | undefined, status: number, code: string | undefined, text: string, outcome: string, dsn: string];

const CASES: Case[] = [
  // shared
  [undefined, 401, undefined, 'unauthorized', 'config', '4.7.0'],
  [undefined, 403, undefined, 'forbidden', 'config', '4.7.0'],
  [undefined, 402, undefined, 'payment required', 'config', '4.7.0'],
  [undefined, 429, undefined, 'slow down', 'transient', '4.7.0'],
  [undefined, 408, undefined, 'request timeout', 'transient', '4.7.0'],
  [undefined, 500, undefined, 'oops', 'transient', '4.3.0'],
  [undefined, 503, undefined, 'maintenance', 'transient', '4.3.0'],
  [undefined, 400, undefined, 'The sender domain is not verified', 'config', '4.7.0'],
  [undefined, 413, undefined, 'payload too large', 'permanent', '5.3.4'],
  [undefined, 422, undefined, 'invalid email address in to', 'permanent', '5.1.3'],
  [undefined, 400, undefined, 'bad request', 'permanent', '5.6.0'],
  [undefined, 404, undefined, 'not found', 'transient', '4.0.0'],
  [undefined, 418, undefined, 'teapot', 'transient', '4.0.0'],
  // m365 (token endpoint and Graph; see test/oauth-m365.test.ts for the end-to-end cases)
  ['m365', 429, 'ApplicationThrottled', 'Application is over its MailboxConcurrency limit.', 'transient', '4.7.0'],
  ['m365', 503, 'temporarily_unavailable', 'token endpoint: temporarily_unavailable', 'transient', '4.3.0'],
  ['m365', 401, 'AADSTS7000215', 'token endpoint: invalid_client (AADSTS7000215: Invalid client secret provided.)', 'config', '4.7.0'],
  ['m365', 400, 'AADSTS700016', 'token endpoint: unauthorized_client (AADSTS700016: Application was not found in the directory)', 'config', '4.7.0'],
  ['m365', 403, 'ErrorSendAsDenied', 'The user account which was used to submit this request does not have the right to send mail on behalf of the specified sending account.', 'config', '4.7.0'],
  ['m365', 404, 'ErrorInvalidUser', "The requested user 'gone@contoso.com' is invalid.", 'config', '4.7.0'],
  ['m365', 403, 'ErrorAccessDenied', 'Access is denied. Check credentials and try again.', 'config', '4.7.0'],
  ['m365', 400, 'ErrorInvalidRecipients', "At least one recipient is not valid., Recipient 'x@y.z' is not resolved.", 'permanent', '5.1.1'],
  ['m365', 400, 'OtherRecipientRefused', 'not sent: Microsoft Graph refused another recipient of this message', 'transient', '4.5.3'],
  ['m365', 400, 'ErrorMessageSizeExceeded', 'The message exceeds the maximum supported size.', 'permanent', '5.3.4'],
  ['m365', 429, 'ErrorQuotaExceeded', 'The mailbox quota was exceeded.', 'transient', '4.2.2'],
  // gmail
  ['gmail', 429, 'rateLimitExceeded', 'Too many concurrent requests for user', 'transient', '4.7.0'],
  ['gmail', 503, 'backendError', 'token endpoint: backend error', 'transient', '4.3.0'],
  ['gmail', 401, 'unauthorized_client', 'token endpoint: unauthorized_client (Client is unauthorized to retrieve access tokens using this method)', 'config', '4.7.0'],
  ['gmail', 403, 'NoSendingMailbox', 'sender <root@box.lan> is not a mailbox and send_as is not set', 'config', '4.7.0'],
  ['gmail', 403, 'forbidden', 'Delegation denied for scanner@example.com', 'config', '4.7.0'],
  ['gmail', 400, 'failedPrecondition', 'Mail service not enabled', 'config', '4.7.0'],
  ['gmail', 400, 'OtherRecipientRefused', 'not sent: the Gmail API refused another recipient of this message', 'transient', '4.5.3'],
  ['gmail', 400, 'invalidArgument', 'Invalid To header', 'permanent', '5.1.3'],
  // sendgrid
  ['sendgrid', 403, undefined, 'The from address does not match a verified Sender Identity.', 'config', '4.7.0'],
  ['sendgrid', 429, undefined, 'too many requests', 'transient', '4.7.0'],
  ['sendgrid', 400, 'personalizations.0.to.0.email', 'Does not contain a valid address.', 'permanent', '5.1.3'],
  // mailgun
  ['mailgun', 404, undefined, 'Domain not found: mg.example.org', 'config', '4.7.0'],
  ['mailgun', 400, undefined, 'Sandbox subdomains are for test purposes only. Please add your own domain or add the address to authorized recipients in Account Settings.', 'config', '4.7.0'],
  ['mailgun', 403, undefined, 'Domain mg.example.org is disabled', 'config', '4.7.0'],
  ['mailgun', 400, undefined, "'to' parameter is missing", 'permanent', '5.6.0'],
  // postmark
  ['postmark', 401, '10', 'Bad or missing Server API token', 'config', '4.7.0'],
  ['postmark', 503, '100', 'Maintenance', 'transient', '4.3.0'],
  ['postmark', 422, '300', 'Invalid email request', 'permanent', '5.6.0'],
  ['postmark', 422, '400', 'Sender signature not found', 'config', '4.7.0'],
  ['postmark', 422, '401', 'Sender signature not confirmed', 'config', '4.7.0'],
  ['postmark', 422, '405', 'Not allowed to send', 'config', '4.7.0'],
  ['postmark', 422, '412', 'Account pending approval', 'config', '4.7.0'],
  ['postmark', 422, '406', 'Inactive recipient', 'permanent', '5.1.1'],
  ['postmark', 422, '411', 'Forbidden attachment type', 'permanent', '5.6.0'],
  ['postmark', 429, '429', 'Rate limit exceeded', 'transient', '4.7.0'],
  ['postmark', 422, '1101', 'The message stream does not exist', 'config', '4.7.0'],
  // resend
  ['resend', 403, 'invalid_api_key', 'API key is invalid', 'config', '4.7.0'],
  ['resend', 401, 'restricted_api_key', 'This API key is restricted to only send emails', 'config', '4.7.0'],
  ['resend', 403, 'validation_error', 'The example.org domain is not verified', 'config', '4.7.0'],
  ['resend', 409, 'concurrent_idempotent_requests', 'Same idempotency key used while original request is still in progress', 'transient', '4.3.0'],
  ['resend', 429, 'daily_quota_exceeded', 'You have reached your daily email sending quota', 'transient', '4.7.0'],
  ['resend', 422, 'invalid_attachment', 'Attachment must have either a content or path', 'permanent', '5.6.0'],
  ['resend', 422, 'invalid_from_address', 'Invalid from field', 'permanent', '5.1.7'],
  // ses
  ['ses', 403, 'SignatureDoesNotMatch', 'The request signature we calculated does not match', 'config', '4.7.0'],
  ['ses', 400, 'AccountSuspendedException', 'Account suspended', 'config', '4.7.0'],
  ['ses', 404, 'NotFoundException', 'Configuration set does not exist', 'config', '4.7.0'],
  ['ses', 400, 'MessageRejected', 'Email address is not verified. The following identities failed the check in region EU-WEST-1: alice@example.org', 'config', '4.7.0'],
  ['ses', 400, 'MessageRejected', 'Illegal address', 'permanent', '5.7.1'],
  ['ses', 429, 'TooManyRequestsException', 'Maximum sending rate exceeded.', 'transient', '4.7.0'],
  ['ses', 400, 'BadRequestException', 'Invalid raw message', 'permanent', '5.6.0'],
  // mailjet
  ['mailjet', 401, 'mj-0015', 'API key authentication/authorization failure', 'config', '4.7.0'],
  ['mailjet', 403, 'send-0007', 'The sender is not authorized', 'config', '4.7.0'],
  ['mailjet', 400, 'mj-0013', '"bob@example" is an invalid email address.', 'permanent', '5.1.3'],
  ['mailjet', 400, 'mj-0011', 'Payload over the size limit', 'permanent', '5.3.4'],
  ['mailjet', 400, 'send-0015', 'Too many recipients', 'permanent', '5.5.3'],
  // brevo
  ['brevo', 401, 'unauthorized', 'Key not found', 'config', '4.7.0'],
  ['brevo', 402, 'not_enough_credits', 'Not enough credits', 'config', '4.7.0'],
  ['brevo', 400, 'invalid_parameter', 'Sender is invalid / inactive', 'config', '4.7.0'],
  ['brevo', 429, 'too_many_requests', 'The expected rate limit is exceeded.', 'transient', '4.7.0'],
  // sparkpost
  ['sparkpost', 403, '1100', 'permission denied', 'config', '4.7.0'],
  ['sparkpost', 422, '7001', 'Unconfigured or unverified sending domain', 'config', '4.7.0'],
  ['sparkpost', 420, '2102', 'Exceed Sending Limit (daily)', 'transient', '4.7.0'],
  ['sparkpost', 400, '2101', 'Exceed Sending Limit (hourly)', 'transient', '4.7.0'],
  ['sparkpost', 422, '1902', 'Message generation rejected', 'permanent', '5.1.1'],
  ['sparkpost', 200, 'rejected', 'SparkPost accepted none of the recipients', 'permanent', '5.1.1'],
];

const result = ([provider, status, errorCode, text]: Case): HttpResult => ({ kind: 'http', provider, status, errorCode, text });

describe('HTTP classification tables', () => {
  for (const c of CASES) {
    it(`${c[0] ?? 'shared'} ${c[1]} ${c[2] ?? ''} "${c[3]}" → ${c[4]} ${c[5]}`, () => {
      const got = classifyHttp(result(c));
      assert.equal(got.outcome, c[4]);
      assert.equal(got.status, c[5]);
      assert.ok(got.reply.includes(c[3]), 'the provider text is kept for logs and DSNs');
      if (c[2]) assert.ok(got.reply.includes(c[2]), 'the provider code is kept for logs and DSNs');
    });
  }

  it('every rule of every table is exercised by a case above', () => {
    const hit = new Set<HttpRule>();
    for (const c of CASES) {
      const rule = httpRule(result(c));
      if (rule) hit.add(rule);
    }
    const missing = [...SHARED_HTTP_RULES, ...Object.values(PROVIDER_HTTP_RULES).flat()].filter((rule) => !hit.has(rule)).map((r) => r.name);
    assert.deepEqual(missing, []);
  });

  it('keeps Retry-After for retries but not for permanent failures', () => {
    assert.equal(classifyHttp({ kind: 'http', status: 429, text: 'x', retryAfterMs: 5000 }).retryAfterMs, 5000);
    assert.equal(classifyHttp({ kind: 'http', status: 401, text: 'x', retryAfterMs: 5000 }).retryAfterMs, 5000);
    assert.equal(classifyHttp({ kind: 'http', status: 400, text: 'x', retryAfterMs: 5000 }).retryAfterMs, undefined);
  });

  it('formats the reply with provider, status, code and text', () => {
    assert.equal(classify({ kind: 'http', provider: 'postmark', status: 422, errorCode: '406', text: 'Inactive recipient' }).reply, 'postmark HTTP 422 406: Inactive recipient');
  });

  it('an unsupported message is permanent with its reason (the router tries other upstreams first)', () => {
    const got = classify({ kind: 'unsupported', text: 'multipart/signed cannot be sent through SendGrid' });
    assert.equal(got.outcome, 'permanent');
    assert.equal(got.status, '5.6.3');
    assert.match(got.reply, /multipart\/signed/);
  });
});
