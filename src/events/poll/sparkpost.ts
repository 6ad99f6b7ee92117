/**
 * SparkPost Events API (https://developers.sparkpost.com/api/events/#events-get-search-for-message-events):
 * GET /api/v1/events/message with `Authorization: <API key>` (the key needs "Events Search: Read-only");
 * `events` (comma list), `from`/`to` as "YYYY-MM-DDTHH:MM:SSZ" (without them only the last 24
 * hours), `per_page` (default 1,000, at most 10,000) and cursor paging: `cursor=initial` on the
 * first request, then `links.next` — a path relative to the API host — until an answer carries no
 * next link. Answer `{results: [...], total_count, links: {next?}}`; each result has the fields of
 * the webhook's `msys.message_event` (transmission_id, rcpt_to, type, bounce_class, raw_reason,
 * event_id, timestamp). Data is "generally available within 1 minute" and kept 10 days.
 */
import type { ApiKeyUpstreamConfig } from '../../config/types.js';
import { apiUrl, field, str } from '../../upstreams/rest/http.js';
import { sparkpostEvent } from '../providers/sparkpost.js';
import type { ProviderEvent } from '../types.js';
import { onEndpoint } from './fetch.js';
import type { PollSource } from './source.js';

const PER_PAGE = 1000;
export const SPARKPOST_MAX_PAGES = 10;
/** Failures and complaints; deliveries and delays would be every message, and are webhook-only. */
const EVENTS = 'bounce,out_of_band,policy_rejection,generation_failure,generation_rejection,spam_complaint';

/** "2026-11-27T18:05:00Z": whole seconds, as the Events API documents. */
function sparkpostTime(ms: number): string {
  return new Date(Math.floor(ms / 1000) * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

export const sparkpostPoll: PollSource<ApiKeyUpstreamConfig> = {
  overlapMs: 10 * 60_000,
  async fetch({ upstream, window, getJson }) {
    const headers = { authorization: upstream.apiKey, accept: 'application/json' };
    const params = new URLSearchParams({ events: EVENTS, from: sparkpostTime(window.from), to: sparkpostTime(window.until + 1000), per_page: String(PER_PAGE), cursor: 'initial' });
    let url = apiUrl(upstream.endpoint, `/api/v1/events/message?${params}`);
    const events: ProviderEvent[] = [];
    for (let page = 0; page < SPARKPOST_MAX_PAGES; page++) {
      const answer = await getJson(url, headers);
      const results = field(answer, 'results');
      for (const item of Array.isArray(results) ? results : []) {
        const event = sparkpostEvent(item);
        if (event) events.push(event);
      }
      const next = str(field(field(answer, 'links'), 'next'));
      if (!next) return { events };
      url = onEndpoint(upstream.endpoint, next);
    }
    // Newest first: the next round reads the window again (what was handed on is not handed on twice).
    return { events, truncated: {} };
  },
};
