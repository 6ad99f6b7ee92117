/**
 * A message's delivery state, in one place. The record does not store a state field (existing
 * spools load unchanged): the state is derived from `held`, `damaged`, `nextAttemptAt` and the
 * recipients' statuses, plus — for "in-flight" — the scheduler's set of attempts running now.
 * Every change of state goes through `transition()`, which checks it against TRANSITIONS and
 * throws DeliveryStateError (EILLEGALSTATE) for anything else: a bug, never a user error.
 *
 *   pending | deferred ──start──▶ in-flight ──outcome──▶ pending | deferred | done
 *   (an attempt that ends without an outcome — it threw — leaves the message as it was stored)
 *   pending | deferred ──hold──▶ held ──release──▶ pending | deferred (due now)
 *   pending | deferred | held | in-flight ──quarantine──▶ damaged ──release──▶ pending | deferred
 *   pending | deferred ──retry──▶ the same, due now
 *   pending | deferred | held | damaged ──bounce──▶ done;  ──delete──▶ gone
 *
 * Lives in the spool (the spool cannot import delivery): the spool applies the stored
 * transitions, the scheduler start and outcome (it alone knows what is in flight).
 */
import { DeliveryStateError } from '../errors.js';
import { isFinal, type MessageRecord } from './types.js';

/**
 * pending: no recipient deferred yet (new mail, or recipients not tried); deferred: some recipient
 * failed transiently and waits for a retry. Both are scheduled at `dueAt` (due once it has passed).
 * in-flight: an attempt is running. held: an operator hold. damaged: held by the integrity check.
 * done: every recipient delivered or failed (the record is retired in the same transaction).
 */
export type StateName = 'pending' | 'deferred' | 'in-flight' | 'held' | 'damaged' | 'done';

export type DeliveryState = { name: 'pending' | 'deferred'; dueAt: number } | { name: 'in-flight' } | { name: 'held' } | { name: 'damaged'; problem: string } | { name: 'done' };

export type DeliveryEvent = 'start' | 'outcome' | 'hold' | 'release' | 'retry' | 'quarantine' | 'bounce' | 'delete';

/** The legal transitions: the states each event may start from, and those it may end in ('gone': the record is removed). */
export const TRANSITIONS: Readonly<Record<DeliveryEvent, { from: readonly StateName[]; to: readonly (StateName | 'gone')[] }>> = {
  start: { from: ['pending', 'deferred'], to: ['in-flight'] },
  outcome: { from: ['in-flight'], to: ['pending', 'deferred', 'done'] },
  hold: { from: ['pending', 'deferred'], to: ['held'] },
  release: { from: ['held', 'damaged'], to: ['pending', 'deferred'] },
  retry: { from: ['pending', 'deferred'], to: ['pending', 'deferred'] },
  quarantine: { from: ['pending', 'deferred', 'in-flight', 'held', 'damaged'], to: ['damaged'] },
  bounce: { from: ['pending', 'deferred', 'held', 'damaged'], to: ['done'] },
  delete: { from: ['pending', 'deferred', 'held', 'damaged', 'done'], to: ['gone'] },
};

/**
 * The state of `record`; `inFlight` is whether an attempt on it is running (the scheduler knows).
 * A record that is neither held nor done but has no next attempt (no writer here leaves one so;
 * `queue verify` reports it as unscheduled) is taken as due at once, so it is never stuck.
 */
export function deliveryState(record: MessageRecord, inFlight = false): DeliveryState {
  if (inFlight) return { name: 'in-flight' };
  // Before held: a record whose recipients are all final has nothing left to deliver, even when an
  // operator hold or a quarantine came in while its last attempt ran (it is retired, not kept as
  // held mail that was in fact sent).
  if (record.recipients.every(isFinal)) return { name: 'done' };
  if (record.held) return record.damaged !== undefined ? { name: 'damaged', problem: record.damaged } : { name: 'held' };
  const name = record.recipients.some((r) => r.status === 'deferred') ? 'deferred' : 'pending';
  return { name, dueAt: record.nextAttemptAt ?? 0 };
}

/** Whether `event` may happen to a message in `state`. */
export function allowed(state: DeliveryState | StateName, event: DeliveryEvent): boolean {
  return TRANSITIONS[event].from.includes(typeof state === 'string' ? state : state.name);
}

/** Throws unless `event` may happen in `state`. */
export function assertAllowed(id: string, state: DeliveryState, event: DeliveryEvent): void {
  if (!allowed(state, event)) throw new DeliveryStateError(id, state.name, event);
}

/** Whether the scheduler should pick the message at `now`. */
export function isDue(state: DeliveryState, now: number): boolean {
  return (state.name === 'pending' || state.name === 'deferred') && state.dueAt <= now;
}

/**
 * Applies a stored transition to `record` (a copy the caller is about to write): checks that the
 * event may happen in the record's state, edits the record, and checks the state it ends in.
 */
export function transition(record: MessageRecord, event: Exclude<DeliveryEvent, 'start' | 'outcome' | 'delete'>, at: { now: number; problem?: string }): MessageRecord {
  assertAllowed(record.id, deliveryState(record), event);
  switch (event) {
    case 'hold':
      record.held = true;
      record.nextAttemptAt = null;
      break;
    case 'release':
      record.held = false;
      delete record.damaged;
      record.nextAttemptAt = at.now;
      break;
    case 'retry':
      record.nextAttemptAt = at.now;
      break;
    case 'quarantine':
      record.held = true;
      record.damaged = at.problem ?? 'damaged';
      record.nextAttemptAt = null;
      break;
    case 'bounce':
      for (const r of record.recipients) if (!isFinal(r)) r.status = 'failed';
      record.nextAttemptAt = null;
      break;
  }
  assertEnded(record.id, deliveryState(record), event);
  return record;
}

/** Throws unless `state` is one `event` may end in (for the outcome the scheduler records). */
export function assertEnded(id: string, state: DeliveryState, event: DeliveryEvent): void {
  if (!TRANSITIONS[event].to.includes(state.name)) throw new DeliveryStateError(id, state.name, event, 'to');
}

/** The three states an operator sees and the spool counts (`mailq`, `status`, /metrics); stored in the counters. */
export type MessageState = 'pending' | 'deferred' | 'held';

/** What an operator sees for a message: held (or damaged), deferred, or pending (in-flight is not stored). */
export function messageState(record: MessageRecord): MessageState {
  const state = deliveryState(record);
  return state.name === 'held' || state.name === 'damaged' ? 'held' : state.name === 'deferred' ? 'deferred' : 'pending';
}
