/**
 * Fake SendGrid v3 Mail Send, from the public reference (mail_send OpenAPI spec, limitations and
 * errors pages): POST /v3/mail/send, Bearer key, JSON only, personalizations with to required,
 * <= 1000 recipients, each address once, text/plain before text/html, base64 attachments with
 * filename, inline attachments need content_id, reserved headers refused, 202 + X-Message-Id.
 * Errors: {"errors":[{"message","field","help"}]}.
 * GET /v3/scopes (the key's own permissions; same Bearer auth) answers {"scopes": [...]}: `scopes`
 * lets a test take mail.send away.
 * A to/cc/bcc name containing "," or ";" (which the limitations page forbids) is NOT refused: SendGrid
 * answers 202 and then drops that mail (sendgrid-nodejs #448, sendgrid-python #291): `dropped`.
 * 429 carries X-RateLimit-Limit/Remaining/Reset (Unix time), per the rate-limits page.
 */
import { EMAIL, header, isBase64, isObject, missingKey, parseJsonBody, startFake, unknownKey, type Fake, type Json, type Reply } from './server.js';

export interface SendgridFake extends Fake<Json> {
  /** Recipients accepted with 202 and then silently dropped (name with "," or ";"). */
  dropped: string[];
}

const err = (status: number, message: string, field: string | null = null): Reply => ({ status, body: { errors: [{ message, field, help: null }] } });

const TOP = [
  'personalizations',
  'from',
  'reply_to',
  'reply_to_list',
  'subject',
  'content',
  'attachments',
  'template_id',
  'headers',
  'categories',
  'custom_args',
  'send_at',
  'batch_id',
  'asm',
  'ip_pool_name',
  'mail_settings',
  'tracking_settings',
];
const PERSONALIZATION = ['to', 'cc', 'bcc', 'subject', 'headers', 'substitutions', 'dynamic_template_data', 'custom_args', 'send_at', 'from'];
const RESERVED_HEADERS = ['x-sg-id', 'x-sg-eid', 'received', 'dkim-signature', 'content-type', 'content-transfer-encoding', 'to', 'from', 'subject', 'reply-to', 'cc', 'bcc'];

function checkAddress(value: unknown, field: string): Reply | undefined {
  if (!isObject(value) || typeof value.email !== 'string') return err(400, 'The email address is required.', `${field}.email`);
  if (unknownKey(value, ['email', 'name'])) return err(400, `Unknown field ${unknownKey(value, ['email', 'name'])}`, field);
  if (!EMAIL.test(value.email)) return err(400, 'Does not contain a valid address.', `${field}.email`);
  if (value.name !== undefined && typeof value.name !== 'string') return err(400, 'Invalid type. Expected: string', `${field}.name`);
  return undefined;
}

export async function startSendgridFake(apiKey: string, options: { scopes?: string[] } = {}): Promise<SendgridFake> {
  const dropped: string[] = [];
  const fake = await startFake<Json>((request, control) => {
    const route = `${request.method} ${request.path}`;
    if (route !== 'POST /v3/mail/send' && route !== 'GET /v3/scopes') return err(404, 'resource not found');
    const auth = header(request, 'authorization');
    if (auth === undefined) return err(401, 'Permission denied, wrong credentials');
    if (auth !== `Bearer ${apiKey}`) return err(401, 'The provided authorization grant is invalid, expired, or revoked');
    if (route === 'GET /v3/scopes') return { status: 200, body: { scopes: options.scopes ?? ['mail.send', 'user.profile.read'] } };
    if (!/^application\/json/.test(header(request, 'content-type') ?? '')) return err(415, 'Content-Type should be application/json.');
    const body = parseJsonBody(request);
    if (!isObject(body)) return err(400, 'Bad Request');
    const unknown = unknownKey(body, TOP);
    if (unknown) return err(400, `Unknown field "${unknown}".`, unknown);
    if (!Array.isArray(body.personalizations) || body.personalizations.length === 0 || body.personalizations.length > 1000) {
      return err(400, 'The personalizations field is required and must have at least one personalization.', 'personalizations');
    }
    const seen = new Set<string>();
    let total = 0;
    for (const [i, p] of (body.personalizations as unknown[]).entries()) {
      if (!isObject(p)) return err(400, 'Invalid type.', `personalizations.${i}`);
      const bad = unknownKey(p, PERSONALIZATION);
      if (bad) return err(400, `Unknown field "${bad}".`, `personalizations.${i}.${bad}`);
      if (!Array.isArray(p.to) || p.to.length === 0)
        return err(400, 'The to array is required for all personalization objects, and must have at least one email object with a valid email address.', `personalizations.${i}.to`);
      for (const list of ['to', 'cc', 'bcc']) {
        if (p[list] === undefined) continue;
        if (!Array.isArray(p[list]) || (p[list] as unknown[]).length === 0) return err(400, `The ${list} array must have at least one email object.`, `personalizations.${i}.${list}`);
        for (const [j, a] of (p[list] as unknown[]).entries()) {
          const problem = checkAddress(a, `personalizations.${i}.${list}.${j}`);
          if (problem) return problem;
          const key = ((a as Json).email as string).toLowerCase();
          if (seen.has(key))
            return err(
              400,
              'Each email address in the personalization block should be unique between to, cc, and bcc. We found the first duplicate instance of [' + key + '] in the personalizations.0.to field.',
              `personalizations.${i}.${list}`,
            );
          seen.add(key);
          total++;
        }
      }
    }
    if (total > 1000) return err(400, 'The total number of recipients must be no more than 1000.', 'personalizations');
    const from = checkAddress(body.from, 'from');
    if (from) return from;
    if (body.reply_to !== undefined && body.reply_to_list !== undefined) return err(400, 'reply_to and reply_to_list cannot be used together', 'reply_to');
    if (body.reply_to !== undefined) {
      const problem = checkAddress(body.reply_to, 'reply_to');
      if (problem) return problem;
    }
    if (typeof body.subject !== 'string' || body.subject === '')
      return err(400, 'The subject is required. You can get around this requirement if you use a template with a subject defined or if every personalization has a subject defined.', 'subject');
    if (!Array.isArray(body.content) || body.content.length === 0) return err(400, 'Unless a valid template_id is provided, the content parameter is required.', 'content');
    const types = (body.content as unknown[]).map((c) => (isObject(c) ? c.type : undefined));
    for (const [i, c] of (body.content as unknown[]).entries()) {
      if (!isObject(c) || typeof c.type !== 'string' || typeof c.value !== 'string' || c.value.length === 0 || unknownKey(c, ['type', 'value'])) {
        return err(400, 'The content value must be a string at least one character in length.', `content.${i}.value`);
      }
    }
    if (types.includes('text/html') && types.includes('text/plain') && types.indexOf('text/plain') > types.indexOf('text/html')) {
      return err(400, 'If present, text/plain content must be first, followed by text/html.', 'content');
    }
    if (body.attachments !== undefined) {
      if (!Array.isArray(body.attachments)) return err(400, 'Invalid type.', 'attachments');
      for (const [i, a] of (body.attachments as unknown[]).entries()) {
        if (!isObject(a)) return err(400, 'Invalid type.', `attachments.${i}`);
        const bad = unknownKey(a, ['content', 'filename', 'type', 'disposition', 'content_id']);
        if (bad) return err(400, `Unknown field "${bad}".`, `attachments.${i}.${bad}`);
        if (missingKey(a, ['content', 'filename'])) return err(400, 'The attachment content and filename are required.', `attachments.${i}`);
        if (!isBase64(a.content)) return err(400, 'The attachment content must be base64 encoded.', `attachments.${i}.content`);
        if (a.disposition !== undefined && a.disposition !== 'inline' && a.disposition !== 'attachment') return err(400, 'disposition must be inline or attachment', `attachments.${i}.disposition`);
        if (a.disposition === 'inline' && typeof a.content_id !== 'string') return err(400, 'The content_id is required when the disposition is inline.', `attachments.${i}.content_id`);
      }
    }
    if (body.headers !== undefined) {
      if (!isObject(body.headers)) return err(400, 'Invalid type.', 'headers');
      for (const [name, value] of Object.entries(body.headers)) {
        if (typeof value !== 'string') return err(400, 'Invalid type. Expected: string', `headers.${name}`);
        if (RESERVED_HEADERS.includes(name.toLowerCase())) return err(400, `The header ${name} is a reserved header and cannot be overridden.`, 'headers');
      }
    }
    const reply = control.accept(request, body, (id) => ({ status: 202, headers: { 'x-message-id': id } }));
    if (reply.status === 202) {
      for (const p of body.personalizations as Json[]) {
        for (const list of ['to', 'cc', 'bcc']) for (const a of (p[list] as Json[] | undefined) ?? []) if (typeof a.name === 'string' && /[;,]/.test(a.name)) dropped.push(String(a.email));
      }
    }
    return reply;
  });
  return Object.assign(fake, { dropped });
}
