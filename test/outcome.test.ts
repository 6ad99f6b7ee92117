/** applyOutcomes: how a refusal ages. A refusal of our setup waits for the operator; one of this message expires at max_age. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { applyOutcomes } from '../src/delivery/outcome.js';
import type { RoutedOutcome } from '../src/delivery/router.js';
import type { MessageRecord } from '../src/spool/types.js';

const retry = { initialDelay: 1000, maxDelay: 60_000, maxAge: 10_000 };
const record = (): MessageRecord => ({
  id: 'Q1',
  sender: 'cron@example.org',
  recipients: [{ address: 'ops@example.net', status: 'deferred', attempts: 3, history: [] }],
  receivedAt: 0,
  size: 1,
  origin: { protocol: 'sendmail' },
  isBounce: false,
  held: false,
  nextAttemptAt: 0,
  attempts: 3,
});
const refusal = (scope: 'message' | 'upstream'): Map<string, RoutedOutcome> =>
  new Map([['ops@example.net', { outcome: 'config', status: '4.7.0', reply: '554 Message rejected: Email address is not verified.', upstream: 'u', scope }]]);

describe('config outcomes and max_age', () => {
  it('an unverified sender (this message) bounces with 4.4.7 once max_age has passed', () => {
    const applied = applyOutcomes(record(), refusal('message'), retry, 20_000);
    assert.equal(applied.record.recipients[0]!.status, 'failed');
    assert.equal(applied.record.recipients[0]!.dsnStatus, '4.4.7');
    assert.equal(applied.newlyFailed.length, 1);
    assert.equal(applied.record.nextAttemptAt, null);
  });

  it('an unverified sender before max_age stays deferred', () => {
    const applied = applyOutcomes(record(), refusal('message'), retry, 5_000);
    assert.equal(applied.record.recipients[0]!.status, 'deferred');
    assert.equal(applied.newlyFailed.length, 0);
  });

  it('a refusal of the upstream as a whole (credentials) never expires: the operator fixes it', () => {
    const applied = applyOutcomes(record(), refusal('upstream'), retry, 20_000);
    assert.equal(applied.record.recipients[0]!.status, 'deferred');
    assert.equal(applied.newlyFailed.length, 0);
  });
});
