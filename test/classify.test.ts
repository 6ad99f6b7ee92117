/** The retry classification table, row by row. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { backoffDelay } from '../src/delivery/backoff.js';
import { classify } from '../src/delivery/classify.js';
import type { AttemptResult, SmtpStage } from '../src/upstreams/types.js';

const smtp = (code: number, enhanced: string | undefined, text: string, stage: SmtpStage = 'rcpt'): AttemptResult => ({ kind: 'smtp', code, enhanced, text, stage });

describe('classification', () => {
  const rows: Array<[string, AttemptResult, string, string]> = [
    ['250 accepted', { kind: 'accepted', reply: '250 2.0.0 Ok' }, 'delivered', '2.0.0'],
    ['421 throttled', smtp(421, '4.7.0', 'Try again later', 'connect'), 'transient', '4.7.0'],
    ['450 mailbox busy', smtp(450, '4.2.1', 'busy'), 'transient', '4.2.1'],
    ['451 local error, no enhanced code', smtp(451, undefined, 'local error', 'data'), 'transient', '4.0.0'],
    ['452 4.5.3 too many recipients', smtp(452, '4.5.3', 'Too many recipients'), 'transient', '4.5.3'],
    ['550 5.1.1 unknown user', smtp(550, '5.1.1', 'no such user'), 'permanent', '5.1.1'],
    ['553 bad address, no enhanced code', smtp(553, undefined, 'mailbox name not allowed'), 'permanent', '5.0.0'],
    ['552 5.3.4 too big', smtp(552, '5.3.4', 'Message too big', 'data'), 'permanent', '5.3.4'],
    ['554 5.7.1 policy rejection', smtp(554, '5.7.1', 'Message rejected by policy', 'data'), 'permanent', '5.7.1'],
    ['535 5.7.8 bad credentials', smtp(535, '5.7.8', 'Authentication credentials invalid', 'auth'), 'config', '5.7.8'],
    ['530 5.7.0 auth required at MAIL', smtp(530, '5.7.0', 'Authentication required', 'mail'), 'config', '5.7.0'],
    ['534 auth mechanism too weak', smtp(534, '5.7.9', 'Authentication mechanism is too weak', 'auth'), 'config', '5.7.9'],
    ['530 must issue STARTTLS (tls = none refused)', smtp(530, '5.7.0', 'Must issue a STARTTLS command first', 'mail'), 'config', '5.7.0'],
    ['554 sender not verified (SES style)', smtp(554, undefined, 'Message rejected: Email address is not verified.', 'mail'), 'config', '4.7.0'],
    ['550 sending paused', smtp(550, '5.7.1', 'Your account sending is paused', 'mail'), 'config', '5.7.1'],
    ['550 rate limit in a 5xx', smtp(550, '5.7.1', 'Daily sending quota exceeded', 'data'), 'transient', '4.0.0'],
    // RFC 5321 §4.2.1: the reply code decides; a disagreeing enhanced code keeps only its class X.0.0 (Postfix smtp).
    ['550 4.4.5: the 5xx reply decides (bounce), detail 5.0.0', smtp(550, '4.4.5', 'system congestion'), 'permanent', '5.0.0'],
    ['450 5.1.1: the 4xx reply decides (retry), detail 4.0.0', smtp(450, '5.1.1', 'odd server'), 'transient', '4.0.0'],
    ['451 5.7.1 greylisting is retried', smtp(451, '5.7.1', 'Greylisted, please try again in 300 seconds', 'rcpt'), 'transient', '4.0.0'],
    ['554 5.7.1 Relay access denied holds the queue', smtp(554, '5.7.1', '<bob@example.org>: Relay access denied'), 'config', '5.7.1'],
    ['550 5.7.1 not permitted to relay holds the queue', smtp(550, '5.7.1', 'Unauthenticated senders not permitted to relay'), 'config', '5.7.1'],
    ['530 5.7.0 Authentication required at RCPT', smtp(530, '5.7.0', 'Authentication required'), 'config', '5.7.0'],
    ['connection refused', { kind: 'network', errorCode: 'ECONNREFUSED', message: 'connect ECONNREFUSED' }, 'transient', '4.4.1'],
    ['connection reset', { kind: 'network', errorCode: 'ECONNRESET', message: 'read ECONNRESET' }, 'transient', '4.4.1'],
    ['timeout', { kind: 'network', errorCode: 'ETIMEDOUT', message: 'Connection timeout' }, 'transient', '4.4.1'],
    ['TLS handshake timeout', { kind: 'tls', errorCode: 'ETLS', message: 'handshake timeout', timeout: true }, 'transient', '4.4.2'],
    ['certificate rejected', { kind: 'tls', errorCode: 'DEPTH_ZERO_SELF_SIGNED_CERT', message: 'self-signed certificate' }, 'config', '4.7.5'],
    ['host name mismatch', { kind: 'tls', errorCode: 'ERR_TLS_CERT_ALTNAME_INVALID', message: "Hostname/IP does not match certificate's altnames" }, 'config', '4.7.5'],
    ['unknown CA', { kind: 'tls', errorCode: 'UNABLE_TO_VERIFY_LEAF_SIGNATURE', message: 'unable to verify the first certificate' }, 'config', '4.7.5'],
    ['expired certificate', { kind: 'tls', errorCode: 'CERT_HAS_EXPIRED', message: 'certificate has expired' }, 'config', '4.7.5'],
    ['TLS handshake closed without a verdict is the network', { kind: 'tls', errorCode: 'ETLS', message: 'Connection closed unexpectedly' }, 'transient', '4.4.2'],
    ['HTTP 401', { kind: 'http', status: 401, text: 'bad key' }, 'config', '4.7.0'],
    ['HTTP 429 with Retry-After', { kind: 'http', status: 429, text: 'slow down', retryAfterMs: 5000 }, 'transient', '4.7.0'],
    ['HTTP 503', { kind: 'http', status: 503, text: 'unavailable' }, 'transient', '4.3.0'],
    ['HTTP 422 invalid recipient', { kind: 'http', status: 422, text: 'invalid recipient address' }, 'permanent', '5.1.3'],
    ['HTTP 400 other payload rejection', { kind: 'http', status: 400, text: 'content must not be empty' }, 'permanent', '5.6.0'],
    ['HTTP 413', { kind: 'http', status: 413, text: 'too large' }, 'permanent', '5.3.4'],
    ['HTTP 418 unknown → retried, never lost', { kind: 'http', status: 418, text: '?' }, 'transient', '4.0.0'],
    ['unsupported message', { kind: 'unsupported', text: 'multipart/signed cannot be converted' }, 'permanent', '5.6.3'],
  ];
  for (const [name, result, outcome, status] of rows) {
    it(name, () => {
      const c = classify(result);
      assert.equal(c.outcome, outcome);
      assert.equal(c.status, status);
    });
  }

  it('tells a refusal of this message (unverified sender, sandbox) from a refusal of the upstream', () => {
    assert.equal(classify(smtp(554, undefined, 'Message rejected: Email address is not verified.', 'mail')).scope, 'message');
    assert.equal(classify(smtp(550, '5.7.1', 'Sandbox subdomains are for test purposes only; authorized recipients only')).scope, 'message');
    assert.equal(classify(smtp(535, '5.7.8', 'Authentication credentials invalid', 'auth')).scope, 'upstream');
    assert.equal(classify(smtp(554, '5.7.1', 'Relay access denied')).scope, 'upstream');
    assert.equal(classify(smtp(550, '5.7.1', 'Your account sending is paused', 'mail')).scope, 'upstream');
    assert.equal(classify({ kind: 'http', status: 401, text: 'bad key' }).scope, 'upstream');
    assert.equal(classify({ kind: 'http', provider: 'sendgrid', status: 403, text: 'The from address does not match a verified Sender Identity' }).scope, 'message');
    assert.equal(classify({ kind: 'http', provider: 'postmark', status: 401, errorCode: '10', text: 'Bad or missing Server API token' }).scope, 'upstream');
    assert.equal(classify({ kind: 'http', status: 400, text: 'Sender is not verified' }).scope, 'message');
    assert.equal(classify({ kind: 'http', provider: 'mailgun', status: 404, text: 'Domain not found: mg.example.com' }).scope, 'upstream', 'the configured domain: our setup');
  });

  it('keeps Retry-After from HTTP answers', () => {
    assert.equal(classify({ kind: 'http', status: 429, text: 'x', retryAfterMs: 7000 }).retryAfterMs, 7000);
  });
});

describe('backoff', () => {
  const retry = { initialDelay: 60_000, maxDelay: 3_600_000 };
  it('doubles from initial_delay with ±20 % jitter and caps at max_delay', () => {
    assert.equal(
      backoffDelay(1, retry, () => 0.5),
      60_000,
    );
    assert.equal(
      backoffDelay(2, retry, () => 0.5),
      120_000,
    );
    assert.equal(
      backoffDelay(3, retry, () => 0),
      192_000,
    );
    assert.equal(
      backoffDelay(3, retry, () => 1),
      288_000,
    );
    assert.equal(
      backoffDelay(30, retry, () => 1),
      3_600_000,
    );
    assert.equal(
      backoffDelay(100, retry, () => 0.5),
      3_600_000,
    );
  });
});
