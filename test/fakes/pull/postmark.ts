/**
 * Fake Postmark Bounces API, from https://postmarkapp.com/developer/api/bounce-api#bounces:
 * GET /bounces, X-Postmark-Server-Token (wrong or missing: 401 ErrorCode 10), Accept
 * application/json; `count` (1–500) and `offset` required, count + offset at most 10,000;
 * `fromdate`/`todate` zone-less date-times read as US Eastern time (the API's zone), inclusive;
 * `messagestream`; answer {TotalCount, Bounces: [...]} sorted by BouncedAt, newest first.
 */
import { header, startFake, type Fake, type Reply } from '../server.js';
import { queryOf, visible, type Stored } from './store.js';

export interface PostmarkBounce {
  RecordType: 'Bounce';
  ID: number;
  Type: string;
  TypeCode: number;
  MessageID: string;
  MessageStream: string;
  Description: string;
  Details: string;
  Email: string;
  BouncedAt: string;
  Inactive: boolean;
}

export interface PostmarkPullFake extends Fake {
  bounces: Stored<PostmarkBounce>[];
}

const err = (status: number, code: number, message: string): Reply => ({ status, body: { ErrorCode: code, Message: message } });

/** A zone-less "YYYY-MM-DDTHH:MM:SS" in America/New_York → Unix ms (DST-aware). */
export function fromEastern(text: string): number | undefined {
  if (!/^\d{4}-\d\d-\d\d(T\d\d:\d\d(:\d\d)?)?$/.test(text)) return undefined;
  const asUtc = Date.parse(text.length === 10 ? `${text}T00:00:00Z` : `${text}Z`);
  if (Number.isNaN(asUtc)) return undefined;
  let guess = asUtc;
  for (let i = 0; i < 2; i++) {
    const shown = new Intl.DateTimeFormat('en-US', {
      timeZone: 'America/New_York',
      hourCycle: 'h23',
      year: 'numeric',
      month: '2-digit',
      day: '2-digit',
      hour: '2-digit',
      minute: '2-digit',
      second: '2-digit',
    }).formatToParts(new Date(guess));
    const p = Object.fromEntries(shown.map((x) => [x.type, x.value]));
    const shownAsUtc = Date.parse(`${p.year}-${p.month}-${p.day}T${p.hour}:${p.minute}:${p.second}Z`);
    guess += asUtc - shownAsUtc;
  }
  return guess;
}

let nextId = 1000;

export function postmarkBounce(messageId: string, email: string, at: number, type = 'HardBounce'): PostmarkBounce {
  return {
    RecordType: 'Bounce',
    ID: ++nextId,
    Type: type,
    TypeCode: type === 'HardBounce' ? 1 : 4096,
    MessageID: messageId,
    MessageStream: 'outbound',
    Description: 'The server was unable to deliver your message (ex: unknown user, mailbox not found).',
    Details: 'smtp;550 5.1.1 The email account that you tried to reach does not exist.',
    Email: email,
    BouncedAt: new Date(at).toISOString(),
    Inactive: true,
  };
}

export async function startPostmarkPullFake(token: string): Promise<PostmarkPullFake> {
  const bounces: Stored<PostmarkBounce>[] = [];
  const fake = await startFake((request, control) => {
    const { pathname, query } = queryOf(request.path);
    if (request.method !== 'GET' || pathname !== '/bounces') return { status: 404, body: '' };
    const given = header(request, 'x-postmark-server-token');
    if (given !== token) return err(401, 10, 'The Server Token you provided in the X-Postmark-Server-Token request header was invalid. Please verify that you are using a valid token.');
    if (!/application\/json/.test(header(request, 'accept') ?? '')) return err(422, 409, 'JSON request required: the Accept header must be application/json.');
    const count = Number(query.get('count'));
    const offset = Number(query.get('offset'));
    if (!query.has('count') || !Number.isInteger(count) || count < 1 || count > 500) return err(422, 300, "The 'count' parameter is required and must be between 1 and 500.");
    if (!query.has('offset') || !Number.isInteger(offset) || offset < 0) return err(422, 300, "The 'offset' parameter is required.");
    if (count + offset > 10_000) return err(422, 300, 'Count + Offset cannot exceed 10,000 bounces; narrow the search with fromdate and todate.');
    const from = query.has('fromdate') ? fromEastern(query.get('fromdate')!) : -Infinity;
    const to = query.has('todate') ? fromEastern(query.get('todate')!) : Infinity;
    if (from === undefined || to === undefined) return err(422, 300, 'Invalid fromdate or todate.');
    const stream = query.get('messagestream');
    const matched = visible(bounces)
      .filter((b) => b.at >= from && b.at <= to && (stream === null || b.item.MessageStream === stream))
      .sort((a, b) => b.at - a.at);
    return control.accept(request, {}, () => ({ status: 200, body: { TotalCount: matched.length, Bounces: matched.slice(offset, offset + count).map((b) => b.item) } }));
  });
  return Object.assign(fake, { bounces });
}
