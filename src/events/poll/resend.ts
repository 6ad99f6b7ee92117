/**
 * Resend has no events list: GET /emails/{id} (https://resend.com/docs/api-reference/emails/retrieve-email,
 * `Authorization: Bearer <API key>`) answers one sent email with its `last_event`
 * (https://resend.com/docs/dashboard/emails/introduction: queued, scheduled, sent, delivered,
 * delivery_delayed, bounced, complained, failed, suppressed, canceled, opened, clicked). So this
 * source asks about each message we delivered through the upstream recently (ListSent), oldest
 * unsettled first, until its status is final; at most LOOKUPS_PER_ROUND per round, spaced to half
 * the upstream's rate_limit (Resend allows 2 requests/s per team; sending keeps the other half).
 *
 * What it cannot tell: an email has one last_event for all its recipients, so a failure is reported
 * only for emails with exactly one recipient (mailshim sends one email per recipient group); no
 * bounce diagnostic is given; a complaint after "delivered" is not seen (the email is settled by
 * then) — Resend's webhooks report all of that.
 */
import type { ApiKeyUpstreamConfig } from '../../config/types.js';
import { apiUrl, field, str } from '../../upstreams/rest/http.js';
import { normalizeMessageId } from '../message-id.js';
import { lower } from '../providers/common.js';
import type { ProviderEvent } from '../types.js';
import { PollFailure } from './fetch.js';
import type { PollSource } from './source.js';

/** How long after sending a message is still asked about. */
export const RESEND_LOOKBACK_MS = 3 * 24 * 3_600_000;
export const LOOKUPS_PER_ROUND = 60;

const TYPES: Record<string, ProviderEvent['type']> = {
  bounced: 'hard_bounce',
  failed: 'rejected',
  suppressed: 'suppressed',
  complained: 'complaint',
  delivered: 'delivered',
  opened: 'delivered',
  clicked: 'delivered',
  delivery_delayed: 'deferred',
};
/** Statuses that may still change into a bounce. */
const PENDING = new Set(['queued', 'scheduled', 'sent', 'delivery_delayed']);

export function resendPoll(): PollSource<ApiKeyUpstreamConfig> {
  /** Provider ids whose status is final → when settled; never asked about again. */
  const settled = new Map<string, number>();
  /** Provider id → when last asked (least recently asked first). */
  const asked = new Map<string, number>();
  return {
    overlapMs: 0,
    async fetch({ upstream, window, getJson, pause, listSent }) {
      const headers = { authorization: `Bearer ${upstream.apiKey}`, accept: 'application/json' };
      const horizon = window.until - RESEND_LOOKBACK_MS;
      for (const map of [settled, asked]) for (const [id, at] of map) if (at < horizon) map.delete(id);
      const candidates = [...listSent(upstream.name, horizon)]
        .filter((m) => !settled.has(normalizeMessageId('resend', m.providerMessageId)))
        .sort((a, b) => (asked.get(a.providerMessageId) ?? 0) - (asked.get(b.providerMessageId) ?? 0))
        .slice(0, LOOKUPS_PER_ROUND);
      const rate = upstream.rateLimit;
      const spacing = rate ? Math.ceil((2 * rate.perMs) / rate.count) : 0;
      const events: ProviderEvent[] = [];
      for (const [i, message] of candidates.entries()) {
        if (i > 0 && spacing > 0) await pause(spacing);
        const id = normalizeMessageId('resend', message.providerMessageId);
        asked.set(message.providerMessageId, window.until);
        let answer: unknown;
        try {
          answer = await getJson(apiUrl(upstream.endpoint, `/emails/${encodeURIComponent(id)}`), headers);
        } catch (error) {
          // An email Resend does not know (any more): nothing to learn about it.
          if (error instanceof PollFailure && error.status === 404) {
            settled.set(id, window.until);
            continue;
          }
          throw error;
        }
        const last = lower(field(answer, 'last_event')) ?? '';
        if (!PENDING.has(last)) settled.set(id, window.until);
        const type = TYPES[last];
        const to = field(answer, 'to');
        const recipients = message.recipients.length ? message.recipients : Array.isArray(to) ? to.map((t) => str(t) ?? '') : [];
        if (!type || recipients.length !== 1) continue;
        events.push({ type, providerMessageId: id, recipient: recipients[0]!.toLowerCase(), reason: `Resend reports the email as ${last}`, eventId: `resend:${id}:${last}` });
      }
      return { events };
    },
  };
}
