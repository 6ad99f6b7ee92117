/** The queue as `mailq` shows it: plain data built from spool records (no LMDB here). */
import { isFinal, type MessageRecord } from './types.js';

export interface QueueEntry {
  id: string;
  size: number;
  /** ISO 8601 arrival time. */
  arrival: string;
  sender: string;
  held: boolean;
  nextAttempt: string | null;
  recipients: Array<{ address: string; status: string; attempts: number; lastError?: string }>;
}

export function queueEntries(records: Iterable<MessageRecord>): QueueEntry[] {
  const out: QueueEntry[] = [];
  for (const r of records) {
    out.push({
      id: r.id,
      size: r.size,
      arrival: new Date(r.receivedAt).toISOString(),
      sender: r.sender,
      held: r.held,
      nextAttempt: r.nextAttemptAt === null ? null : new Date(r.nextAttemptAt).toISOString(),
      recipients: r.recipients
        .filter((rcpt) => !isFinal(rcpt))
        .map((rcpt) => ({ address: rcpt.address, status: rcpt.status, attempts: rcpt.attempts, ...(rcpt.lastReply ? { lastError: rcpt.lastReply } : {}) })),
    });
  }
  return out.sort((a, b) => a.arrival.localeCompare(b.arrival) || a.id.localeCompare(b.id));
}
