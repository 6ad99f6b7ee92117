/**
 * Applies one delivery attempt's outcomes to a message record: recipient states, history, the
 * next attempt time, and which recipients newly failed (to be bounced). Pure, so the spool can
 * run it inside its read-modify-write transaction on the freshest copy of the record.
 */
import type { RetryConfig } from '../config/types.js';
import { HISTORY_LIMIT, isFinal, type MessageRecord, type RecipientState } from '../spool/types.js';
import { backoffDelay } from './backoff.js';
import type { RoutedOutcome } from './router.js';

export interface Applied {
  record: MessageRecord;
  newlyFailed: RecipientState[];
  newlyDelivered: RecipientState[];
}

export function applyOutcomes(record: MessageRecord, outcomes: Map<string, RoutedOutcome>, retry: RetryConfig, now: number, random: () => number = Math.random): Applied {
  const newlyFailed: RecipientState[] = [];
  const newlyDelivered: RecipientState[] = [];
  const expired = now - record.receivedAt >= retry.maxAge;
  let retryAfter = 0;
  record.attempts++;
  for (const state of record.recipients) {
    const outcome = outcomes.get(state.address);
    if (!outcome || isFinal(state)) continue;
    state.attempts++;
    state.lastAttemptAt = now;
    state.lastReply = outcome.reply;
    state.lastClass = outcome.outcome;
    state.upstream = outcome.upstream;
    state.history.push({ at: now, upstream: outcome.upstream, outcome: outcome.outcome, reply: outcome.reply });
    if (state.history.length > HISTORY_LIMIT) state.history.splice(0, state.history.length - HISTORY_LIMIT);
    retryAfter = Math.max(retryAfter, outcome.retryAfterMs ?? 0);
    switch (outcome.outcome) {
      case 'delivered':
        state.status = 'delivered';
        state.dsnStatus = outcome.status;
        state.providerMessageId = outcome.providerMessageId;
        newlyDelivered.push(state);
        break;
      case 'permanent':
        state.status = 'failed';
        state.dsnStatus = outcome.status;
        newlyFailed.push(state);
        break;
      case 'transient':
        if (expired) {
          // Delivery time expired (RFC 3463 4.4.7): the last transient reply explains why.
          state.status = 'failed';
          state.dsnStatus = '4.4.7';
          newlyFailed.push(state);
        } else {
          state.status = 'deferred';
        }
        break;
      case 'config':
        if (outcome.scope === 'message' && expired) {
          // This upstream will not take this message (unverified sender, ...): like any deferral,
          // it ends at max_age with a bounce, or it would wait forever.
          state.status = 'failed';
          state.dsnStatus = '4.4.7';
          newlyFailed.push(state);
        } else {
          // The upstream refuses our setup: keep the message, whatever its age, until the operator fixes it.
          state.status = 'deferred';
        }
        break;
    }
  }
  const open = record.recipients.some((r) => !isFinal(r));
  record.nextAttemptAt = open ? now + Math.max(backoffDelay(record.attempts, retry, random), retryAfter) : null;
  return { record, newlyFailed, newlyDelivered };
}
