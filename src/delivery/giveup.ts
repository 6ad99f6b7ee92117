/**
 * `queue bounce ID`: the operator gives up on a message now. Every recipient still open is marked
 * failed and the DSN is built and committed in the same spool transaction as the change, exactly
 * as a permanent failure in the scheduler would, so a bounce is never lost nor sent twice
 * (tested by test/spool-integrity.test.ts: a DSN builder that throws leaves the message as it was).
 */
import type { Spool } from '../spool/spool.js';
import { transition } from '../spool/states.js';
import { isFinal, type RecipientState } from '../spool/types.js';
import { dsnMessages, type DsnSettings } from './dsn.js';

export interface GiveUpResult {
  /** Recipients that were still open and are now failed. */
  failed: string[];
  /** Queue id of the DSN, when one was generated (not for bounces or the null sender). */
  dsnId?: string;
}

/** Returns undefined when the message does not exist (any more). */
export async function giveUp(spool: Spool, id: string, settings: DsnSettings, now = Date.now()): Promise<GiveUpResult | undefined> {
  const raw = spool.body(id);
  let failed: RecipientState[] = [];
  const updated = await spool.update(
    id,
    (record) => {
      failed = record.recipients.filter((r) => !isFinal(r));
      transition(record, 'bounce', { now });
      for (const state of failed) {
        const last = state.lastReply ? `; last attempt: ${state.lastReply}` : '';
        state.dsnStatus = '5.0.0';
        state.lastReply = `delivery cancelled by the mail administrator${last}`;
      }
      return record;
    },
    (next) => dsnMessages(next, failed, () => raw, settings, now),
  );
  if (!updated) return undefined;
  return { failed: failed.map((r) => r.address), dsnId: updated.inserted[0] };
}
