/**
 * Postmark Bounces API (https://postmarkapp.com/developer/api/bounce-api#bounces): GET /bounces with
 * X-Postmark-Server-Token and Accept: application/json; `count` (at most 500) and `offset` are
 * required, and count + offset may not exceed 10,000 — beyond that the window has to be narrowed
 * by `fromdate`/`todate`, which Postmark reads as US Eastern time without a zone
 * ("2021-01-01T12:00:00"). Bounces come newest first (sorted by BouncedAt descending) as
 * `{TotalCount, Bounces: [...]}`, each with the bounce webhook's fields (MessageID, Email, Type,
 * Details, BouncedAt, ID). Spam complaints are bounces of type SpamComplaint. Only bounces and
 * complaints are pulled (deliveries and opens are webhook-only).
 */
import type { ApiKeyUpstreamConfig } from '../../config/types.js';
import { apiUrl, field } from '../../upstreams/rest/http.js';
import { postmarkEvent } from '../providers/postmark.js';
import type { ProviderEvent } from '../types.js';
import type { PollSource } from './source.js';

const PAGE = 500;
const MAX_OFFSET_PLUS_COUNT = 10_000;

/** Unix ms as Postmark's zone-less US Eastern date-time ("2026-11-27T19:05:00"). */
export function easternTime(ms: number): string {
  const parts = Object.fromEntries(
    new Intl.DateTimeFormat('en-US', { timeZone: 'America/New_York', hourCycle: 'h23', year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', second: '2-digit' })
      .formatToParts(new Date(ms))
      .map((p) => [p.type, p.value]),
  );
  return `${parts.year}-${parts.month}-${parts.day}T${parts.hour}:${parts.minute}:${parts.second}`;
}

export const postmarkPoll: PollSource<ApiKeyUpstreamConfig> = {
  // Postmark records a bounce when it has parsed the bounce message; a few minutes of slack.
  overlapMs: 10 * 60_000,
  async fetch({ upstream, window, getJson }) {
    const headers = { 'X-Postmark-Server-Token': upstream.apiKey, accept: 'application/json' };
    const events: ProviderEvent[] = [];
    // Whole seconds, and todate one second on: Postmark's bounds are inclusive and second-granular.
    const query = { fromdate: easternTime(window.from), todate: easternTime(window.until + 1000), messagestream: upstream.messageStream ?? 'outbound' };
    for (let offset = 0; offset + PAGE <= MAX_OFFSET_PLUS_COUNT; offset += PAGE) {
      const params = new URLSearchParams({ count: String(PAGE), offset: String(offset), ...query });
      const answer = await getJson(apiUrl(upstream.endpoint, `/bounces?${params}`), headers);
      const bounces = field(answer, 'Bounces');
      const list = Array.isArray(bounces) ? bounces : [];
      for (const item of list) {
        const event = postmarkEvent(item, 'bounce');
        if (event) events.push(event);
      }
      const total = Number(field(answer, 'TotalCount') ?? 0);
      if (list.length < PAGE || offset + PAGE >= total) return { events };
    }
    // More than 10,000 bounces in the window: the newest were read; the next round reads the window again.
    return { events, truncated: {} };
  },
};
