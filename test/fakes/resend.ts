/**
 * Fake Resend POST /emails, from resend's OpenAPI spec and docs (errors, idempotency keys):
 * Bearer key (missing → 401 missing_api_key, wrong → 403 invalid_api_key), from/to/subject
 * required, to/cc/bcc at most 50 each, base64 attachments, Idempotency-Key (1-256 chars): the same
 * key and body answer the first response again without sending; a different body is 409
 * invalid_idempotent_request. 200 {"id"}. Errors: {"statusCode","name","message"}.
 * GET /domains (same auth) lists {object: "list", data: [{id, name, status (verified, pending, failed,
 * not_started, …), ...}]} (`domains`); a "Sending
 * access" key (`sendOnlyKey`) may POST /emails but gets 401 restricted_api_key there.
 */
import { createHash } from 'node:crypto';
import { addressOf, header, isBase64, isObject, parseJsonBody, startFake, unknownKey, type Fake, type Json, type Reply } from './server.js';

export type ResendFake = Fake<Json>;

const err = (status: number, name: string, message: string): Reply => ({ status, body: { statusCode: status, name, message } });

const FIELDS = ['from', 'to', 'subject', 'bcc', 'cc', 'reply_to', 'html', 'text', 'headers', 'attachments', 'tags', 'scheduled_at', 'topic_id', 'template'];

function list(value: unknown): string[] | undefined {
  const items = typeof value === 'string' ? [value] : Array.isArray(value) ? value : undefined;
  if (!items || items.some((i) => typeof i !== 'string' || addressOf(i) === undefined)) return undefined;
  return items as string[];
}

export function startResendFake(apiKey: string, options: { sendOnlyKey?: string; domains?: Array<{ name: string; status: string }> } = {}): Promise<ResendFake> {
  const idempotent = new Map<string, { digest: string; reply: Reply }>();
  return startFake<Json>((request, fake) => {
    const route = `${request.method} ${request.path}`;
    if (route !== 'POST /emails' && route !== 'GET /domains') return err(404, 'not_found', 'The requested endpoint does not exist.');
    const auth = header(request, 'authorization');
    if (auth === undefined) return err(401, 'missing_api_key', 'Missing API key in the authorization header.');
    const sendOnly = options.sendOnlyKey !== undefined && auth === `Bearer ${options.sendOnlyKey}`;
    if (auth !== `Bearer ${apiKey}` && !sendOnly) return err(403, 'invalid_api_key', 'API key is invalid.');
    if (route === 'GET /domains') {
      if (sendOnly) return err(401, 'restricted_api_key', 'This API key is restricted to only send emails.');
      const domains = options.domains ?? [{ name: 'example.org', status: 'verified' }];
      return {
        status: 200,
        body: {
          object: 'list',
          has_more: false,
          data: domains.map((d, i) => ({ id: `d91cd9bd-1176-453e-8fc1-35364d38020${i}`, name: d.name, status: d.status, region: 'us-east-1', created_at: '2026-01-01T00:00:00.000Z' })),
        },
      };
    }
    const key = header(request, 'idempotency-key');
    if (key !== undefined && (key.length < 1 || key.length > 256)) return err(400, 'invalid_idempotency_key', 'The key must be between 1-256 chars.');
    const digest = createHash('sha256').update(request.body).digest('hex');
    const previous = key ? idempotent.get(key) : undefined;
    if (previous) return previous.digest === digest ? previous.reply : err(409, 'invalid_idempotent_request', 'Same idempotency key used with a different request payload.');
    const body = parseJsonBody(request);
    if (!isObject(body)) return err(422, 'validation_error', 'Invalid JSON body.');
    const unknown = unknownKey(body, FIELDS);
    if (unknown) return err(422, 'invalid_parameter', `Unknown field: ${unknown}`);
    for (const required of ['from', 'to', 'subject']) {
      if (body[required] === undefined || body[required] === '') return err(422, 'missing_required_field', `Missing \`${required}\` field.`);
    }
    if (typeof body.from !== 'string' || addressOf(body.from) === undefined)
      return err(422, 'invalid_from_address', 'Invalid `from` field. The email address needs to follow the `email@example.com` or `Name <email@example.com>` format.');
    for (const field of ['to', 'cc', 'bcc', 'reply_to']) {
      if (body[field] === undefined) continue;
      const addresses = list(body[field]);
      if (!addresses) return err(422, 'validation_error', `Invalid \`${field}\` field.`);
      if (addresses.length > 50) return err(422, 'validation_error', `Too many recipients in \`${field}\`: the maximum is 50.`);
    }
    if (body.html === undefined && body.text === undefined) return err(422, 'validation_error', 'Missing `html` or `text` field.');
    if (body.headers !== undefined && (!isObject(body.headers) || Object.values(body.headers).some((v) => typeof v !== 'string'))) return err(422, 'validation_error', 'Invalid `headers` field.');
    if (body.attachments !== undefined) {
      if (!Array.isArray(body.attachments)) return err(422, 'invalid_attachment', 'Invalid `attachments` field.');
      for (const a of body.attachments as unknown[]) {
        if (!isObject(a) || unknownKey(a, ['content', 'filename', 'path', 'content_type', 'content_id']) || typeof a.filename !== 'string')
          return err(422, 'invalid_attachment', 'Attachment must have a filename and content or path.');
        if (a.path === undefined && !isBase64(a.content)) return err(422, 'invalid_attachment', 'Attachment content must be base64.');
      }
    }
    const reply = fake.accept(request, body, (id) => ({ status: 200, body: { id } }));
    if (key && reply.status === 200) idempotent.set(key, { digest, reply });
    return reply;
  });
}
