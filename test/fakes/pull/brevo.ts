/**
 * Fake Brevo transactional event report, from https://developers.brevo.com/reference/get-email-event-report:
 * GET /v3/smtp/statistics/events with `api-key` (else 401 {code: "unauthorized", message: "Key not found"});
 * `startDate`/`endDate` YYYY-MM-DD, both or neither, start ≤ end, at most 90 days; one `event`
 * of the documented enum; `limit` (default 2,500), `offset`, `sort` (desc default). Answer
 * {events: [...]} — and {} when nothing matches.
 */
import { header, startFake, type Fake, type Reply } from '../server.js';
import { queryOf, visible, type JsonItem, type Stored } from './store.js';

export interface BrevoPullFake extends Fake {
  events: Stored<JsonItem>[];
}

const EVENTS = ['bounces', 'hardBounces', 'softBounces', 'delivered', 'spam', 'requests', 'opened', 'clicks', 'invalid', 'deferred', 'blocked', 'unsubscribed', 'error', 'loadedByProxy'];
const bad = (message: string): Reply => ({ status: 400, body: { code: 'invalid_parameter', message } });

export function brevoHardBounce(messageId: string, email: string, at: number): JsonItem {
  return { email, date: new Date(at).toISOString(), subject: 'Report', messageId, event: 'hardBounces', reason: '550 5.1.1 user unknown', tag: '', from: 'cron@example.com' };
}

export async function startBrevoPullFake(apiKey: string): Promise<BrevoPullFake> {
  const events: Stored<JsonItem>[] = [];
  const fake = await startFake((request, control) => {
    const { pathname, query } = queryOf(request.path);
    if (request.method !== 'GET' || pathname !== '/v3/smtp/statistics/events') return { status: 404, body: { code: 'document_not_found', message: 'not found' } };
    if (header(request, 'api-key') !== apiKey) return { status: 401, body: { code: 'unauthorized', message: 'Key not found' } };
    const start = query.get('startDate');
    const end = query.get('endDate');
    if ((start === null) !== (end === null)) return bad('startDate and endDate must be used together');
    for (const d of [start, end]) if (d !== null && !/^\d{4}-\d\d-\d\d$/.test(d)) return bad('dates must be YYYY-MM-DD');
    const from = start ? Date.parse(`${start}T00:00:00Z`) : Date.now() - 30 * 86_400_000;
    const to = end ? Date.parse(`${end}T00:00:00Z`) + 86_400_000 : Date.now();
    if (from >= to) return bad('startDate must be lower than or equal to endDate');
    if (to - from > 90 * 86_400_000) return bad('the date range can not exceed 90 days');
    const event = query.get('event');
    if (event !== null && !EVENTS.includes(event)) return bad(`event must be one of ${EVENTS.join(', ')}`);
    const limit = query.has('limit') ? Number(query.get('limit')) : 2500;
    const offset = query.has('offset') ? Number(query.get('offset')) : 0;
    if (!Number.isInteger(limit) || limit < 0 || limit > 5000 || !Number.isInteger(offset) || offset < 0) return bad('invalid limit or offset');
    const matched = visible(events)
      .filter((e) => e.at >= from && e.at < to && (event === null || e.item.event === event))
      .sort((a, b) => (query.get('sort') === 'asc' ? a.at - b.at : b.at - a.at))
      .slice(offset, offset + limit);
    return control.accept(request, {}, () => ({ status: 200, body: matched.length ? { events: matched.map((e) => e.item) } : {} }));
  });
  return Object.assign(fake, { events });
}
