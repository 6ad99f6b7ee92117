/** applyOutcomes: each outcome class on a mix of recipients, how refusals age, the next attempt, the history cap, the provider id. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { applyOutcomes } from '../src/delivery/outcome.js';
import type { RoutedOutcome } from '../src/delivery/router.js';
import { HISTORY_LIMIT, type MessageRecord } from '../src/spool/types.js';

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

describe('applyOutcomes: each class on a mix of recipients', () => {
  const NOW = 5_000; // before max_age (10 s after receipt)
  const half = () => 0.5; // no jitter: backoff is exactly initial_delay · 2^(attempts-1)
  const mixed = (): MessageRecord => ({
    ...record(),
    attempts: 1,
    recipients: [
      { address: 'open@example.net', status: 'deferred', attempts: 1, history: [] },
      { address: 'new@example.net', status: 'pending', attempts: 0, history: [] },
      { address: 'done@example.net', status: 'delivered', attempts: 1, history: [], dsnStatus: '2.0.0', lastReply: '250 ok' },
      { address: 'untried@example.net', status: 'pending', attempts: 0, history: [] },
    ],
  });
  const outcome = (o: Partial<RoutedOutcome> & Pick<RoutedOutcome, 'outcome'>): RoutedOutcome => ({ status: '2.0.0', reply: '250 ok', upstream: 'up', ...o });
  /** open@ and new@ get `o`; done@ (already final) gets a contradicting one; untried@ none. */
  const apply = (o: RoutedOutcome, at = NOW) =>
    applyOutcomes(
      mixed(),
      new Map([
        ['open@example.net', o],
        ['new@example.net', o],
        ['done@example.net', outcome({ outcome: 'permanent', status: '5.1.1', reply: '550 gone' })],
      ]),
      retry,
      at,
      half,
    );

  it('delivered: final with the status and the provider id; others untouched; the message stays for the untried one', () => {
    const { record: r, newlyDelivered, newlyFailed } = apply(outcome({ outcome: 'delivered', providerMessageId: '<0100018c@email.amazonses.com>' }));
    const [open, fresh, done, untried] = r.recipients;
    assert.deepEqual([open!.status, fresh!.status, done!.status, untried!.status], ['delivered', 'delivered', 'delivered', 'pending']);
    assert.equal(open!.providerMessageId, '<0100018c@email.amazonses.com>');
    assert.equal(open!.dsnStatus, '2.0.0');
    assert.deepEqual(
      newlyDelivered.map((s) => s.address),
      ['open@example.net', 'new@example.net'],
    );
    assert.equal(newlyFailed.length, 0);
    assert.equal(done!.lastReply, '250 ok', 'a final recipient is never changed by a later outcome');
    assert.deepEqual([open!.attempts, fresh!.attempts, untried!.attempts, r.attempts], [2, 1, 0, 2]);
    assert.equal(r.nextAttemptAt, NOW + 2000, 'untried@ is still open: next attempt after the backoff (1 s · 2^1)');
  });

  it('permanent: failed with the reply status, to be bounced', () => {
    const { record: r, newlyFailed } = apply(outcome({ outcome: 'permanent', status: '5.1.1', reply: '550 5.1.1 no such user' }));
    assert.deepEqual(
      r.recipients.map((s) => s.status),
      ['failed', 'failed', 'delivered', 'pending'],
    );
    assert.deepEqual(
      newlyFailed.map((s) => [s.address, s.dsnStatus, s.lastReply, s.lastClass]),
      [
        ['open@example.net', '5.1.1', '550 5.1.1 no such user', 'permanent'],
        ['new@example.net', '5.1.1', '550 5.1.1 no such user', 'permanent'],
      ],
    );
  });

  it('transient: deferred before max_age, failed with 4.4.7 after it', () => {
    const before = apply(outcome({ outcome: 'transient', status: '4.2.1', reply: '450 busy' }));
    assert.deepEqual(
      before.record.recipients.map((s) => s.status),
      ['deferred', 'deferred', 'delivered', 'pending'],
    );
    assert.equal(before.newlyFailed.length, 0);
    const after = apply(outcome({ outcome: 'transient', status: '4.2.1', reply: '450 busy' }), retry.maxAge);
    assert.deepEqual(
      after.newlyFailed.map((s) => [s.status, s.dsnStatus, s.lastReply]),
      [
        ['failed', '4.4.7', '450 busy'],
        ['failed', '4.4.7', '450 busy'],
      ],
    );
  });

  it('config: deferred whatever the age when the upstream refuses our setup; a refusal of the message expires', () => {
    const setup = apply(outcome({ outcome: 'config', status: '5.7.8', reply: '535 bad credentials', scope: 'upstream' }), retry.maxAge * 10);
    assert.deepEqual(
      setup.record.recipients.map((s) => s.status),
      ['deferred', 'deferred', 'delivered', 'pending'],
    );
    const message = apply(outcome({ outcome: 'config', status: '5.7.1', reply: '554 sender not verified', scope: 'message' }), retry.maxAge);
    assert.deepEqual(
      message.newlyFailed.map((s) => s.dsnStatus),
      ['4.4.7', '4.4.7'],
    );
  });

  it('the next attempt honours the longer of the backoff and a Retry-After; none once every recipient is final', () => {
    const slow = apply(outcome({ outcome: 'transient', status: '4.7.0', reply: '429 slow down', retryAfterMs: 30_000 }));
    assert.equal(slow.record.nextAttemptAt, NOW + 30_000);
    const all = applyOutcomes(
      { ...record(), recipients: [{ address: 'ops@example.net', status: 'pending', attempts: 0, history: [] }] },
      new Map([['ops@example.net', outcome({ outcome: 'delivered' })]]),
      retry,
      NOW,
      half,
    );
    assert.equal(all.record.nextAttemptAt, null);
  });

  it(`keeps the last ${HISTORY_LIMIT} attempts per recipient, newest last`, () => {
    let r = mixed();
    for (let i = 0; i < HISTORY_LIMIT + 3; i++) {
      r = applyOutcomes(r, new Map([['open@example.net', outcome({ outcome: 'transient', status: '4.2.1', reply: `450 try ${i}` })]]), retry, NOW + i, half).record;
    }
    const history = r.recipients[0]!.history;
    assert.equal(history.length, HISTORY_LIMIT);
    assert.deepEqual([history[0]!.reply, history[HISTORY_LIMIT - 1]!.reply], ['450 try 3', `450 try ${HISTORY_LIMIT + 2}`]);
    assert.deepEqual(history[0], { at: NOW + 3, upstream: 'up', outcome: 'transient', reply: '450 try 3' });
  });
});
