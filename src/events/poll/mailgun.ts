/**
 * Mailgun Events API (https://documentation.mailgun.com/docs/mailgun/user-manual/events/ and the
 * API reference GET /v3/{domain}/events): HTTP Basic "api" + API key; a time range `begin`/`end`
 * (Unix seconds here) with `ascending=yes`, `limit` at most 300, and a filter `event`
 * ("failed OR rejected OR complained": deliveries would be every message, and are webhook-only). The answer is `{items: [...], paging: {next,
 * previous, first, last}}`; to read the whole range, follow `paging.next` (a full URL, always
 * present) until a page comes back empty. Items have the webhook's `event-data` structure.
 *
 * "Event polling" in the same page: events are not available at once — Mailgun asks pollers to
 * treat the most recent half hour as incomplete — hence the 30-minute overlap: every round reads
 * the last half hour again, and the poller hands each event on only once.
 */
import type { MailgunUpstreamConfig } from '../../config/types.js';
import { apiUrl, basicAuth, field, str } from '../../upstreams/rest/http.js';
import { mailgunEvent } from '../providers/mailgun.js';
import type { ProviderEvent } from '../types.js';
import { onEndpoint } from './fetch.js';
import type { PollSource } from './source.js';

const LIMIT = 300;
export const MAILGUN_MAX_PAGES = 20;

export const mailgunPoll: PollSource<MailgunUpstreamConfig> = {
  overlapMs: 30 * 60_000,
  async fetch({ upstream, window, getJson }) {
    const headers = { authorization: basicAuth('api', upstream.apiKey), accept: 'application/json' };
    const params = new URLSearchParams({
      begin: String(Math.floor(window.from / 1000)),
      end: String(Math.ceil(window.until / 1000)),
      ascending: 'yes',
      limit: String(LIMIT),
      event: 'failed OR rejected OR complained',
    });
    let url = apiUrl(upstream.endpoint, `/v3/${encodeURIComponent(upstream.domain)}/events?${params}`);
    const events: ProviderEvent[] = [];
    let through: number | undefined;
    for (let page = 0; page < MAILGUN_MAX_PAGES; page++) {
      const answer = await getJson(url, headers);
      const items = field(answer, 'items');
      if (!Array.isArray(items) || items.length === 0) return { events };
      for (const item of items) {
        const event = mailgunEvent(item);
        if (event) events.push(event);
        const at = Number(field(item, 'timestamp'));
        if (Number.isFinite(at)) through = at * 1000;
      }
      const next = str(field(field(answer, 'paging'), 'next'));
      if (!next) return { events };
      url = onEndpoint(upstream.endpoint, next);
    }
    // Ascending order: everything up to the last item read is complete; resume there.
    return { events, truncated: { through } };
  },
};
