/**
 * The queue's counters, kept in the spool itself and changed in the same transaction as the
 * records they count, so `/metrics` and `status` read one small record instead of scanning the
 * queue (a scan of 50,000 messages took most of a second; issue 18). Every write of a message
 * record goes through `count(stats, before, after)`: the old record's contribution is taken out
 * and the new one's put in. An aborted transaction rolls the counters back with the records.
 */
import { messageState, type MessageState } from './states.js';
import type { MessageRecord, RecipientStatus } from './types.js';

export interface SpoolStats {
  messages: number;
  /**
   * Bytes of the queued messages (the sum of their `size`): what spool.max_size caps, read at each
   * accept without asking LMDB for page counts. Absent in counters written before it existed (the
   * start-up check then rebuilds them).
   */
  bytes: number;
  byState: Record<MessageState, number>;
  recipientsByStatus: Record<RecipientStatus, number>;
}

export function emptyStats(): SpoolStats {
  return { messages: 0, bytes: 0, byState: { pending: 0, deferred: 0, held: 0 }, recipientsByStatus: { pending: 0, deferred: 0, delivered: 0, failed: 0 } };
}

function add(stats: SpoolStats, record: MessageRecord, sign: 1 | -1): void {
  stats.messages += sign;
  stats.bytes += sign * record.size;
  stats.byState[messageState(record)] += sign;
  for (const r of record.recipients) stats.recipientsByStatus[r.status] = (stats.recipientsByStatus[r.status] ?? 0) + sign;
}

/** `stats` after `before` (absent: a new message) became `after` (absent: the message is gone). */
export function count(stats: SpoolStats, before: MessageRecord | undefined, after: MessageRecord | undefined): SpoolStats {
  // A copy by hand: structuredClone was ~1 % of the daemon's CPU on small messages.
  const next: SpoolStats = { messages: stats.messages, bytes: stats.bytes, byState: { ...stats.byState }, recipientsByStatus: { ...stats.recipientsByStatus } };
  if (before) add(next, before, -1);
  if (after) add(next, after, 1);
  return next;
}

/** Adds one more message to counters being built by a scan. */
export function tally(stats: SpoolStats, record: MessageRecord): void {
  add(stats, record, 1);
}

/** The counters a full scan finds: for the start-up self-check, `queue verify`, and tests. */
export function statsOf(records: Iterable<MessageRecord>): SpoolStats {
  const stats = emptyStats();
  for (const record of records) tally(stats, record);
  return stats;
}

export function sameStats(a: SpoolStats, b: SpoolStats): boolean {
  const states = Object.keys(a.byState) as MessageState[];
  const statuses = new Set([...Object.keys(a.recipientsByStatus), ...Object.keys(b.recipientsByStatus)]) as Set<RecipientStatus>;
  return (
    a.messages === b.messages &&
    a.bytes === b.bytes &&
    states.every((s) => a.byState[s] === b.byState[s]) &&
    [...statuses].every((s) => (a.recipientsByStatus[s] ?? 0) === (b.recipientsByStatus[s] ?? 0))
  );
}
