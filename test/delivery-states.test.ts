/**
 * The delivery-state table (spool/states.ts): every event in every state, legal or not, and the
 * spool's operator actions going through it. The expected table is written out here by hand, not
 * read from TRANSITIONS, so a change to the table must change this test too.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DeliveryStateError } from '../src/errors.js';
import { Spool } from '../src/spool/spool.js';
import { allowed, assertAllowed, deliveryState, isDue, messageState, transition, type DeliveryEvent, type StateName } from '../src/spool/states.js';
import type { MessageRecord, RecipientStatus } from '../src/spool/types.js';
import { tempDir } from './helpers/tmp.js';

const NOW = 1_700_000_000_000;

/** A stored record in `state` ('in-flight' is the scheduler's knowledge: a pending record, flagged). */
function recordIn(state: StateName): MessageRecord {
  const status: RecipientStatus = state === 'deferred' ? 'deferred' : state === 'done' ? 'delivered' : 'pending';
  return {
    id: 'Q1',
    sender: 'cron@example.org',
    recipients: [
      { address: 'a@example.net', status, attempts: 0, history: [] },
      { address: 'b@example.net', status: state === 'done' ? 'failed' : 'delivered', attempts: 1, history: [] },
    ],
    receivedAt: NOW - 1000,
    size: 10,
    origin: { protocol: 'sendmail' },
    isBounce: false,
    held: state === 'held' || state === 'damaged',
    ...(state === 'damaged' ? { damaged: 'body checksum mismatch' } : {}),
    nextAttemptAt: state === 'pending' || state === 'deferred' || state === 'in-flight' ? NOW - 10 : null,
    attempts: state === 'deferred' ? 1 : 0,
  };
}

const STATES: StateName[] = ['pending', 'deferred', 'in-flight', 'held', 'damaged', 'done'];
/** event → the states it is legal in. */
const LEGAL: Record<DeliveryEvent, StateName[]> = {
  start: ['pending', 'deferred'],
  outcome: ['in-flight'],
  hold: ['pending', 'deferred'],
  release: ['held', 'damaged'],
  retry: ['pending', 'deferred'],
  quarantine: ['pending', 'deferred', 'in-flight', 'held', 'damaged'],
  bounce: ['pending', 'deferred', 'held', 'damaged'],
  delete: ['pending', 'deferred', 'held', 'damaged', 'done'],
};

describe('deriving the state from a record', () => {
  it('names each state, with the due time of a scheduled message', () => {
    for (const name of STATES) assert.equal(deliveryState(recordIn(name), name === 'in-flight').name, name);
    assert.deepEqual(deliveryState(recordIn('deferred')), { name: 'deferred', dueAt: NOW - 10 });
    assert.deepEqual(deliveryState(recordIn('damaged')), { name: 'damaged', problem: 'body checksum mismatch' });
  });

  it('a message is due once its time has come, and only when pending or deferred', () => {
    const later = { ...recordIn('pending'), nextAttemptAt: NOW + 5000 };
    assert.equal(isDue(deliveryState(later), NOW), false);
    assert.equal(isDue(deliveryState(later), NOW + 5000), true);
    for (const name of ['in-flight', 'held', 'damaged', 'done'] as const) assert.equal(isDue(deliveryState(recordIn(name), name === 'in-flight'), NOW), false, name);
  });

  it("the operator's three states: held and damaged count as held, in-flight as stored", () => {
    assert.deepEqual(
      ['pending', 'deferred', 'held', 'damaged'].map((n) => messageState(recordIn(n as StateName))),
      ['pending', 'deferred', 'held', 'held'],
    );
  });

  it('a record an older writer left without a next attempt is due at once, not stuck', () => {
    assert.equal(isDue(deliveryState({ ...recordIn('pending'), nextAttemptAt: null }), NOW), true);
  });
});

describe('the transition table', () => {
  for (const event of Object.keys(LEGAL) as DeliveryEvent[]) {
    for (const state of STATES) {
      const legal = LEGAL[event].includes(state);
      it(`${event} while ${state}: ${legal ? 'legal' : 'throws EILLEGALSTATE'}`, () => {
        const derived = deliveryState(recordIn(state), state === 'in-flight');
        assert.equal(allowed(derived, event), legal);
        if (legal) assertAllowed('Q1', derived, event);
        else
          assert.throws(
            () => assertAllowed('Q1', derived, event),
            (e: unknown) => e instanceof DeliveryStateError && e.code === 'EILLEGALSTATE' && e.state === state && e.event === event,
          );
      });
    }
  }
});

describe('stored transitions edit the record', () => {
  const at = { now: NOW, problem: 'body missing' };
  it('hold: held, not scheduled', () => {
    const r = transition(recordIn('deferred'), 'hold', at);
    assert.equal(deliveryState(r).name, 'held');
    assert.equal(r.nextAttemptAt, null);
  });
  it('release: back to pending or deferred, due now, the quarantine reason gone', () => {
    assert.deepEqual(deliveryState(transition(recordIn('held'), 'release', at)), { name: 'pending', dueAt: NOW });
    const damaged = transition(recordIn('damaged'), 'release', at);
    assert.equal(damaged.damaged, undefined);
    assert.equal(isDue(deliveryState(damaged), NOW), true);
  });
  it('retry: due now, the state otherwise unchanged', () => {
    const r = transition({ ...recordIn('deferred'), nextAttemptAt: NOW + 60_000 }, 'retry', at);
    assert.deepEqual(deliveryState(r), { name: 'deferred', dueAt: NOW });
  });
  it('quarantine: damaged, with the problem', () => {
    assert.deepEqual(deliveryState(transition(recordIn('held'), 'quarantine', at)), { name: 'damaged', problem: 'body missing' });
  });
  it('bounce: every open recipient failed, the message done; final ones untouched', () => {
    const r = transition(recordIn('deferred'), 'bounce', at);
    assert.deepEqual(
      r.recipients.map((x) => x.status),
      ['failed', 'delivered'],
    );
    assert.equal(deliveryState(r).name, 'done');
  });
  it('an illegal stored transition throws and leaves the record alone', () => {
    const r = recordIn('pending');
    const before = structuredClone(r);
    assert.throws(() => transition(r, 'release', at), DeliveryStateError);
    assert.throws(() => transition(recordIn('done'), 'hold', at), DeliveryStateError);
    assert.deepEqual(r, before);
  });
});

describe('the spool applies operator actions through the table', () => {
  it('a request the state does not allow is "unchanged" and writes nothing; a legal one is done', async () => {
    const dir = tempDir();
    const spool = Spool.open(`${dir.path}/spool`);
    try {
      const id = await spool.accept({ sender: 'a@example.org', recipients: ['b@example.net'] }, Buffer.from('Subject: x\r\n\r\nhi\r\n'), { origin: { protocol: 'smtp' } }, NOW);
      assert.equal(await spool.release(id, NOW), 'unchanged', 'release of a message that is not held');
      assert.equal(await spool.hold(id), 'done');
      assert.equal(await spool.hold(id), 'unchanged', 'hold of a held message');
      assert.equal(await spool.retryNow(id, NOW), 'unchanged', 'retry of a held message');
      assert.deepEqual(spool.dueIds(NOW + 1, 10), [], 'a held message is never due');
      assert.equal(await spool.quarantine(id, 'body missing'), 'done');
      assert.equal(await spool.quarantine(id, 'body missing'), 'unchanged');
      assert.equal(messageState(spool.get(id)!), 'held');
      assert.equal(await spool.release(id, NOW + 5), 'done');
      assert.deepEqual(deliveryState(spool.get(id)!), { name: 'pending', dueAt: NOW + 5 });
      assert.deepEqual(spool.dueIds(NOW + 5, 10), [id]);
      assert.equal(await spool.retryAll(NOW + 10), 0, 'already due: nothing to advance');
      await spool.hold(id);
      assert.equal(await spool.retryAll(NOW + 10), 0, 'a held message is not made due');
      assert.equal(spool.counts().byState.held, 1);
    } finally {
      await spool.close();
      dir.cleanup();
    }
  });
});
