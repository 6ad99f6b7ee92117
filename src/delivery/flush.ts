/** `sendmail -q` / `mailshim flush`: every deferred (not held) message becomes due now. */
import type { Spool } from '../spool/spool.js';

export async function makeAllDue(spool: Spool, now = Date.now()): Promise<number> {
  const ids: string[] = [];
  for (const record of spool.list()) {
    if (!record.held && record.nextAttemptAt !== null && record.nextAttemptAt > now) ids.push(record.id);
  }
  let count = 0;
  for (const id of ids) {
    const updated = await spool.update(id, (current) => (current.held || current.nextAttemptAt === null ? current : { ...current, nextAttemptAt: now }));
    if (updated) count++;
  }
  return count;
}
