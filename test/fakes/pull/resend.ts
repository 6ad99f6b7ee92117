/**
 * Fake Resend "Retrieve Email", from https://resend.com/docs/api-reference/emails/retrieve-email and
 * .../introduction (errors, rate limit): GET /emails/{id} with `Authorization: Bearer re_…`
 * (missing: 401 missing_api_key; wrong: 403 invalid_api_key), 404 not_found for an unknown id;
 * 200 {object: "email", id, to, from, created_at, subject, last_event}. At most 2 requests per
 * second per key (429 rate_limit_exceeded with retry-after), as the docs default.
 */
import { header, startFake, type Fake, type Reply } from '../server.js';
import { queryOf } from './store.js';

export interface ResendEmail {
  id: string;
  to: string[];
  last_event: string;
}

export interface ResendPullFake extends Fake {
  emails: Map<string, ResendEmail>;
}

const err = (statusCode: number, name: string, message: string, headers?: Record<string, string>): Reply => ({ status: statusCode, headers, body: { statusCode, name, message } });

export async function startResendPullFake(apiKey: string, perSecond = 2): Promise<ResendPullFake> {
  const emails = new Map<string, ResendEmail>();
  const recent: number[] = [];
  const fake = await startFake((request, control) => {
    const { pathname } = queryOf(request.path);
    const match = /^\/emails\/([^/]+)$/.exec(pathname);
    if (request.method !== 'GET' || !match) return err(404, 'not_found', 'The requested endpoint does not exist.');
    const auth = header(request, 'authorization');
    if (!auth) return err(401, 'missing_api_key', 'Missing API key in the authorization header.');
    if (auth !== `Bearer ${apiKey}`) return err(403, 'invalid_api_key', 'API key is invalid.');
    const now = Date.now();
    while (recent.length && recent[0]! <= now - 1000) recent.shift();
    if (recent.length >= perSecond)
      return err(429, 'rate_limit_exceeded', 'Too many requests. You can only make 2 requests per second.', {
        'retry-after': '1',
        'ratelimit-limit': String(perSecond),
        'ratelimit-remaining': '0',
        'ratelimit-reset': '1',
      });
    recent.push(now);
    const email = emails.get(decodeURIComponent(match[1]!));
    if (!email) return err(404, 'not_found', 'Email not found');
    return control.accept(request, {}, () => ({
      status: 200,
      body: {
        object: 'email',
        id: email.id,
        to: email.to,
        from: 'Cron <cron@example.com>',
        created_at: new Date().toISOString(),
        subject: 'Report',
        html: null,
        text: 'hi',
        bcc: null,
        cc: null,
        reply_to: null,
        last_event: email.last_event,
      },
    }));
  });
  return Object.assign(fake, { emails });
}
