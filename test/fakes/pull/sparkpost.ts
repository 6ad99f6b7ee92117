/**
 * Fake SparkPost Events API, from https://developers.sparkpost.com/api/events/#events-get-search-for-message-events:
 * GET /api/v1/events/message, `Authorization: <API key>` (else 401 {errors: [{message: "Unauthorized."}]});
 * `from`/`to` "YYYY-MM-DDTHH:MM:SSZ" (default: the last 24 hours), `events` comma list,
 * `per_page` 1–10,000 (default 1,000), cursor paging (`cursor=initial`, then the opaque cursor
 * in `links.next`, a path relative to the host, absent on the last page); results newest first;
 * answer {results, total_count, links}.
 */
import { header, startFake, type Fake, type Reply } from '../server.js';
import { queryOf, token, untoken, visible, type JsonItem, type Stored } from './store.js';

export interface SparkpostPullFake extends Fake {
  results: Stored<JsonItem>[];
}

interface Cursor {
  from: number;
  to: number;
  events: string[] | null;
  perPage: number;
  offset: number;
}

const bad = (description: string): Reply => ({ status: 400, body: { errors: [{ message: 'invalid params', description, code: '1200' }] } });
const TIME = /^\d{4}-\d\d-\d\dT\d\d:\d\d(:\d\d)?Z$/;

export function sparkpostBounce(transmissionId: string, recipient: string, at: number): JsonItem {
  return {
    type: 'bounce',
    bounce_class: '10',
    error_code: '550',
    event_id: `${Math.floor(Math.random() * 1e17)}`,
    raw_reason: '550 5.1.1 <' + recipient + '>: Recipient address rejected: User unknown',
    reason: '550 5.1.1 ...',
    rcpt_to: recipient,
    transmission_id: transmissionId,
    timestamp: new Date(at).toISOString(),
  };
}

export async function startSparkpostPullFake(apiKey: string): Promise<SparkpostPullFake> {
  const results: Stored<JsonItem>[] = [];
  const fake = await startFake((request, control) => {
    const { pathname, query } = queryOf(request.path);
    if (request.method !== 'GET' || pathname !== '/api/v1/events/message') return { status: 404, body: { errors: [{ message: 'resource not found' }] } };
    if (header(request, 'authorization') !== apiKey) return { status: 401, body: { errors: [{ message: 'Unauthorized.' }] } };
    const given = query.get('cursor');
    let cursor: Cursor | undefined;
    if (given === null || given === 'initial') {
      for (const key of ['from', 'to']) if (query.has(key) && !TIME.test(query.get(key)!)) return bad(`${key} must be in the format YYYY-MM-DDTHH:MM:SSZ`);
      const perPage = query.has('per_page') ? Number(query.get('per_page')) : 1000;
      if (!Number.isInteger(perPage) || perPage < 1 || perPage > 10_000) return bad('per_page must be between 1 and 10000');
      const to = query.has('to') ? Date.parse(query.get('to')!) : Date.now();
      const from = query.has('from') ? Date.parse(query.get('from')!) : to - 86_400_000;
      if (from > to) return bad('from must be before to');
      cursor = { from, to, events: query.get('events')?.split(',') ?? null, perPage, offset: 0 };
    } else {
      cursor = untoken<Cursor>(given);
      if (!cursor) return bad('invalid cursor');
    }
    const c = cursor;
    const matched = visible(results)
      .filter((e) => e.at >= c.from && e.at <= c.to && (c.events === null || c.events.includes(String(e.item.type))))
      .sort((a, b) => b.at - a.at);
    const slice = matched.slice(c.offset, c.offset + c.perPage);
    const more = c.offset + slice.length < matched.length;
    return control.accept(request, c, () => ({
      status: 200,
      body: {
        results: slice.map((e) => e.item),
        total_count: matched.length,
        links: more ? { next: `/api/v1/events/message?cursor=${token({ ...c, offset: c.offset + slice.length })}&per_page=${c.perPage}` } : {},
      },
    }));
  });
  return Object.assign(fake, { results });
}
