/**
 * Retention of sent mail (events.retention): the plain-data side. When an upstream accepts a
 * recipient with a provider message id, the spool keeps a SentRecord for the message (see
 * types.ts) in the same transaction as the outcome, so a provider event that arrives later can be
 * matched to the sender and recipient. These helpers build and merge those records; the spool
 * writes them.
 */
import { DEFAULT_MAX_RETAINED, DEFAULT_RETENTION_MS, type Config } from '../config/types.js';
import { headerEnd } from '../message/headers.js';
import { isFinal, SENT_HEADERS_LIMIT, type MessageRecord, type SentRecipient, type SentRecord } from './types.js';

/** How long and how many sent records are kept; absent = nothing is retained. */
export interface Retention {
  ms: number;
  max: number;
}

/**
 * Sent mail is retained (to match provider events to it) only when something can report events:
 * the [events] listener, or an upstream with poll = true (then with [events]' defaults when that
 * table is absent).
 */
export function retentionOf(config: Pick<Config, 'events' | 'upstreams'>): Retention | undefined {
  const polling = config.upstreams.some((u) => (u as { poll?: unknown }).poll !== undefined);
  if (!config.events && !polling) return undefined;
  return { ms: config.events?.retention ?? DEFAULT_RETENTION_MS, max: config.events?.maxRetained ?? DEFAULT_MAX_RETAINED };
}

/** The index key of a provider message id: per upstream, the id without angle brackets. */
export function sentKey(upstream: string, providerMessageId: string): string {
  return `${upstream}\u0000${providerMessageId.trim().replace(/^<|>$/g, '').trim()}`;
}

/** The header section of `raw`, at most `limit` bytes, cut after the last whole line that fits. */
export function cappedHeaders(raw: Buffer | undefined, limit = SENT_HEADERS_LIMIT): string {
  if (!raw) return '';
  const end = headerEnd(raw.subarray(0, limit + 4));
  let header = raw.subarray(0, Math.min(end, limit));
  if (end > limit) header = header.subarray(0, header.lastIndexOf(0x0a) + 1);
  return header.toString('latin1');
}

/** Recipients of `next` that an upstream accepted with a provider id in this transaction (not yet so in `before`). */
export function newlyAccepted(before: MessageRecord, next: MessageRecord): MessageRecord['recipients'] {
  return next.recipients.filter((r) => {
    if (r.status !== 'delivered' || !r.providerMessageId || !r.upstream) return false;
    const was = before.recipients.find((b) => b.address === r.address);
    return !was || !isFinal(was);
  });
}

/**
 * The sent record after `accepted` recipients of `record` were accepted at `now`: a new one
 * (headers from `raw`) or `existing` with them added (a recipient accepted again replaces its entry).
 */
export function retained(existing: SentRecord | undefined, record: MessageRecord, accepted: MessageRecord['recipients'], raw: () => Buffer | undefined, now: number): SentRecord {
  const sent: SentRecord = existing ?? {
    id: record.id,
    sender: record.sender,
    ...(record.messageId ? { messageId: record.messageId } : {}),
    isBounce: record.isBounce,
    ...(record.dsnRet ? { dsnRet: record.dsnRet } : {}),
    ...(record.envid ? { envid: record.envid } : {}),
    receivedAt: record.receivedAt,
    size: record.size,
    retainedAt: now,
    headers: cappedHeaders(raw()),
    recipients: [],
  };
  sent.retainedAt = now;
  for (const r of accepted) {
    const entry: SentRecipient = {
      address: r.address,
      upstream: r.upstream!,
      providerMessageId: r.providerMessageId!,
      ...(r.notify ? { notify: r.notify } : {}),
      ...(r.orcpt ? { orcpt: r.orcpt } : {}),
      acceptedAt: r.lastAttemptAt ?? now,
      ...(r.lastReply ? { reply: r.lastReply } : {}),
      history: r.history,
      events: [],
    };
    const at = sent.recipients.findIndex((s) => s.address === r.address);
    if (at === -1) sent.recipients.push(entry);
    else sent.recipients[at] = entry;
  }
  return sent;
}
