/**
 * Brevo transactional events (https://developers.brevo.com/reference/get-email-event-report):
 * GET /v3/smtp/statistics/events with the `api-key` header; `startDate`/`endDate` are whole days
 * (YYYY-MM-DD, both required together, range at most 90 days), `limit` (default 2,500) and
 * `offset` page, `event` filters ONE event type per request (hardBounces, invalid, blocked, spam,
 * error, …: names unlike the webhook's hard_bounce, invalid_email, …), `sort` desc by default.
 * The answer is `{events: [{email, date, messageId, event, reason, …}]}` — and `{}` when there
 * are none. Day granularity means every round reads its days again; the poller hands each event
 * on once. Only failures and complaints are pulled: deliveries and opens would be every message.
 */
import type { ApiKeyUpstreamConfig } from '../../config/types.js';
import { apiUrl, field, str } from '../../upstreams/rest/http.js';
import { brevoEvent } from '../providers/brevo.js';
import { dateOf, lower } from '../providers/common.js';
import type { ProviderEvent } from '../types.js';
import type { PollSource } from './source.js';

const LIMIT = 2500;
export const BREVO_MAX_PAGES = 4;
const DAY_MS = 86_400_000;

/** The events API's filter name → the webhook's event name (providers/brevo.ts maps those). */
export const BREVO_POLLED: Record<string, string> = {
  hardBounces: 'hard_bounce',
  invalid: 'invalid_email',
  blocked: 'blocked',
  error: 'error',
  spam: 'spam',
};

function day(ms: number): string {
  return new Date(ms).toISOString().slice(0, 10);
}

export const brevoPoll: PollSource<ApiKeyUpstreamConfig> = {
  overlapMs: 10 * 60_000,
  async fetch({ upstream, window, getJson }) {
    const headers = { 'api-key': upstream.apiKey, accept: 'application/json' };
    // Brevo does not say in which zone its days are: one day earlier covers any.
    const range = { startDate: day(window.from - DAY_MS), endDate: day(window.until) };
    const events: ProviderEvent[] = [];
    let truncated = false;
    for (const [filter, name] of Object.entries(BREVO_POLLED)) {
      for (let page = 0; ; page++) {
        if (page === BREVO_MAX_PAGES) {
          truncated = true;
          break;
        }
        const params = new URLSearchParams({ ...range, event: filter, limit: String(LIMIT), offset: String(page * LIMIT) });
        const list = field(await getJson(apiUrl(upstream.endpoint, `/v3/smtp/statistics/events?${params}`), headers), 'events');
        const items = Array.isArray(list) ? list : [];
        for (const e of items) {
          const at = dateOf(field(e, 'date'));
          if (at && at.getTime() < window.from) continue;
          const event = brevoEvent(name, str(field(e, 'messageId')), lower(field(e, 'email')), field(e, 'reason'), at);
          if (event) events.push(event);
        }
        if (items.length < LIMIT) break;
      }
    }
    return truncated ? { events, truncated: {} } : { events };
  },
};
