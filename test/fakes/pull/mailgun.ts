/**
 * Fake Mailgun Events API, from https://documentation.mailgun.com/docs/mailgun/user-manual/events/
 * (time range, event polling, filter expressions) and the API reference GET /v3/{domain}/events:
 * HTTP Basic "api" + key (else 401, body "Forbidden"); `begin`/`end` (Unix seconds or RFC 2822),
 * `ascending`, `limit` (at most 300), `event` ("failed OR rejected"); answer {items, paging:
 * {next, previous, first, last}} where `next` is a full URL on Mailgun's own host
 * (https://api.mailgun.net/v3/<domain>/events/<opaque page token>) and is always present: the
 * last page's next answers an empty page. Events become visible late (`visibleAt`), as the
 * "Event Polling" section warns.
 */
import { header, startFake, type Fake, type Reply } from '../server.js';
import { queryOf, token, untoken, visible, type JsonItem, type Stored } from './store.js';

export interface MailgunPullFake extends Fake {
  items: Stored<JsonItem>[];
}

interface Page {
  begin: number;
  end: number;
  ascending: boolean;
  events: string[] | null;
  limit: number;
  offset: number;
}

const bad = (message: string): Reply => ({ status: 400, body: { message } });

function seconds(value: string | null): number | undefined {
  if (value === null) return undefined;
  if (/^\d+(\.\d+)?$/.test(value)) return Number(value);
  const ms = Date.parse(value);
  return Number.isNaN(ms) ? undefined : ms / 1000;
}

export function mailgunFailed(messageId: string, recipient: string, at: number, extra: Record<string, unknown> = {}): JsonItem {
  return {
    event: 'failed',
    id: `ev-${Math.random().toString(36).slice(2)}`,
    timestamp: at / 1000,
    severity: 'permanent',
    reason: 'bounce',
    recipient,
    message: { headers: { 'message-id': messageId } },
    'delivery-status': { code: 550, message: '5.1.1 The email account that you tried to reach does not exist', description: '' },
    ...extra,
  };
}

export async function startMailgunPullFake(domain: string, apiKey: string): Promise<MailgunPullFake> {
  const items: Stored<JsonItem>[] = [];
  const expected = 'Basic ' + Buffer.from(`api:${apiKey}`).toString('base64');
  const base = `/v3/${domain}/events`;
  const fake = await startFake((request, control) => {
    const { pathname, query } = queryOf(request.path);
    if (request.method !== 'GET' || (pathname !== base && !pathname.startsWith(`${base}/`))) return { status: 404, body: { message: 'not found' } };
    if (header(request, 'authorization') !== expected) return { status: 401, body: 'Forbidden' };
    let page: Page | undefined;
    if (pathname === base) {
      const begin = seconds(query.get('begin'));
      if (begin === undefined) return bad("'begin' is required and must be a timestamp");
      const end = seconds(query.get('end'));
      if (query.has('end') && end === undefined) return bad("'end' must be a timestamp");
      const ascendingParam = query.get('ascending');
      if (ascendingParam !== null && ascendingParam !== 'yes' && ascendingParam !== 'no') return bad("'ascending' must be yes or no");
      if (end === undefined && ascendingParam === null) return bad('either end or ascending is required');
      const limit = query.has('limit') ? Number(query.get('limit')) : 100;
      if (!Number.isInteger(limit) || limit < 1 || limit > 300) return bad("'limit' must be between 1 and 300");
      const filter = query.get('event');
      page = {
        begin,
        end: end ?? Infinity,
        ascending: end === undefined ? ascendingParam === 'yes' : end >= begin,
        events: filter ? filter.split(/\s+OR\s+/).map((e) => e.trim()) : null,
        limit,
        offset: 0,
      };
    } else {
      page = untoken<Page>(pathname.slice(base.length + 1));
      if (!page) return { status: 404, body: { message: 'page not found' } };
      if (page.end === null) page.end = Infinity;
    }
    const lo = Math.min(page.begin, page.end);
    const hi = Math.max(page.begin, page.end);
    const matched = visible(items)
      .filter((e) => e.at / 1000 >= lo && e.at / 1000 <= hi && (page.events === null || page.events.includes(String(e.item.event))))
      .sort((a, b) => (page.ascending ? a.at - b.at : b.at - a.at));
    const slice = matched.slice(page.offset, page.offset + page.limit);
    const link = (offset: number) => `https://api.mailgun.net${base}/${token({ ...page, offset: Math.max(0, offset) })}`;
    return control.accept(request, page, () => ({
      status: 200,
      body: {
        items: slice.map((e) => e.item),
        paging: { next: link(page.offset + slice.length), previous: link(page.offset - page.limit), first: link(0), last: link(Math.max(0, matched.length - page.limit)) },
      },
    }));
  });
  return Object.assign(fake, { items });
}
