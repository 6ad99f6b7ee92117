/**
 * Fake Brevo POST /v3/smtp/email, from developers.brevo.com (reference `send-transac-email`, docs
 * `heterogenous-versions-batch-emails` for idempotency, `api-limits` / `limit-headers`) and the
 * behaviour anymail documents from live tests (docs/esps/brevo.rst): header api-key (wrong or
 * missing → 401 {"code":"unauthorized","message":"Key not found"}), sender.email, to and subject
 * required, htmlContent REQUIRED without templateId (textContent alone is refused), display names
 * at most 70 characters (400 invalid_parameter), a non-ASCII name containing specials (",", ";", …)
 * silently drops that recipient (201, nothing sent to it: `dropped`), non-ASCII attachment names
 * arrive garbled (`deliveredFilenames`), attachment [{content (base64), name}] with an
 * allow-listed extension, headers {name: string}; headers.idempotencyKey (or Idempotency-Key)
 * must be a UUID, and a key seen in the last 30 minutes → 400 duplicate_parameter, NOT sent.
 * 201 {"messageId": "<...>"}. Errors: {"code": "...", "message": "..."}.
 * GET /v3/account (same api-key) answers the account: email, company, plan [{type, credits}], relay.
 */
import { EMAIL, header, isBase64, isObject, parseJsonBody, startFake, unknownKey, type Fake, type Json, type Reply } from './server.js';

export interface BrevoFake extends Fake<Json> {
  /** Recipients Brevo accepted with 201 and then silently dropped (non-ASCII name with specials). */
  dropped: string[];
  /** Attachment names as the recipient sees them (non-ASCII garbled, as Brevo does). */
  deliveredFilenames: string[];
}

export const brevoError = (status: number, code: string, message: string): Reply => ({ status, body: { code, message } });

// Brevo's documented allow-list, copied from its reference independently of src/upstreams/brevo.ts.
const EXTENSIONS = new Set(
  'xlsx,xls,ods,docx,docm,doc,csv,pdf,txt,gif,jpg,jpeg,png,tif,tiff,rtf,bmp,cgm,css,shtml,html,htm,zip,xml,ppt,pptx,tar,ez,ics,mobi,msg,pub,eps,odt,mp3,m4a,m4v,wma,ogg,flac,wav,aif,aifc,aiff,mp4,mov,avi,mkv,mpeg,mpg,wmv,pkpass,xlsm'.split(
    ',',
  ),
);

const FIELDS = ['sender', 'to', 'cc', 'bcc', 'replyTo', 'subject', 'htmlContent', 'textContent', 'attachment', 'headers', 'templateId', 'params', 'messageVersions', 'tags', 'scheduledAt', 'batchId'];

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const IDEMPOTENCY_TTL_MS = 30 * 60_000;

function checkName(value: unknown, field: string): Reply | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'string') return brevoError(400, 'invalid_parameter', `${field} name is not valid`);
  if ([...value].length > 70) return brevoError(400, 'invalid_parameter', `You can have max 70 character in ${field} name`);
  return undefined;
}

/** anymail (live-tested): a non-ASCII display name with specials makes Brevo drop the address. */
const dropsRecipient = (name: unknown) => typeof name === 'string' && /[^\x00-\x7f]/.test(name) && /[,;:"<>()[\]@\\]/.test(name);

function checkPeople(value: unknown, field: string, required: boolean): Reply | undefined {
  if (value === undefined && !required) return undefined;
  if (!Array.isArray(value) || value.length === 0) return brevoError(400, 'missing_parameter', `${field} is missing`);
  for (const p of value as unknown[]) {
    if (!isObject(p) || unknownKey(p, ['email', 'name']) || typeof p.email !== 'string') return brevoError(400, 'invalid_parameter', `${field} is not valid`);
    if (!EMAIL.test(p.email)) return brevoError(400, 'invalid_parameter', `email is not valid in ${field}`);
    const name = checkName(p.name, field);
    if (name) return name;
  }
  return undefined;
}

export async function startBrevoFake(apiKey: string, now: () => number = Date.now): Promise<BrevoFake> {
  const keys = new Map<string, number>();
  const dropped: string[] = [];
  const deliveredFilenames: string[] = [];
  const fake = await startFake<Json>((request, control) => {
    const route = `${request.method} ${request.path}`;
    if (route !== 'POST /v3/smtp/email' && route !== 'GET /v3/account') return brevoError(404, 'not_found', 'Invalid route');
    if (header(request, 'api-key') !== apiKey) return brevoError(401, 'unauthorized', 'Key not found');
    if (route === 'GET /v3/account') {
      return {
        status: 200,
        body: {
          email: 'ops@example.org',
          firstName: 'Ops',
          lastName: 'Team',
          companyName: 'Example',
          address: {},
          plan: [{ type: 'free', credits: 300, creditsType: 'sendLimit' }],
          relay: { enabled: true, data: { userName: 'ops@example.org', relay: 'smtp-relay.brevo.com', port: 587 } },
        },
      };
    }
    if (!/^application\/json/.test(header(request, 'content-type') ?? '')) return brevoError(415, 'invalid_parameter', 'Content-Type must be application/json');
    const body = parseJsonBody(request);
    if (!isObject(body)) return brevoError(400, 'bad_request', 'Input must be a valid JSON object');
    const unknown = unknownKey(body, FIELDS);
    if (unknown) return brevoError(400, 'invalid_parameter', `${unknown} is not a valid parameter`);
    if (!isObject(body.sender) || unknownKey(body.sender, ['email', 'name', 'id']) || typeof body.sender.email !== 'string' || !EMAIL.test(body.sender.email)) {
      return brevoError(400, 'invalid_parameter', 'valid sender email required');
    }
    for (const [field, required] of [
      ['to', true],
      ['cc', false],
      ['bcc', false],
    ] as const) {
      const problem = checkPeople(body[field], field, required);
      if (problem) return problem;
    }
    const total = ['to', 'cc', 'bcc'].reduce((n, f) => n + (Array.isArray(body[f]) ? (body[f] as unknown[]).length : 0), 0);
    if (total > 99) return brevoError(400, 'invalid_parameter', 'Maximum 99 recipients are allowed per message');
    if (body.replyTo !== undefined && (!isObject(body.replyTo) || typeof body.replyTo.email !== 'string' || !EMAIL.test(body.replyTo.email)))
      return brevoError(400, 'invalid_parameter', 'replyTo email is not valid');
    if (typeof body.subject !== 'string' || body.subject === '') return brevoError(400, 'missing_parameter', 'subject is missing');
    if (typeof body.htmlContent !== 'string' || body.htmlContent === '') return brevoError(400, 'missing_parameter', 'htmlContent is missing');
    if (body.textContent !== undefined && typeof body.textContent !== 'string') return brevoError(400, 'invalid_parameter', 'textContent is not valid');
    const sender = checkName(body.sender.name, 'sender');
    if (sender) return sender;
    if (body.attachment !== undefined) {
      if (!Array.isArray(body.attachment)) return brevoError(400, 'invalid_parameter', 'attachment must be an array');
      for (const a of body.attachment as unknown[]) {
        if (!isObject(a) || unknownKey(a, ['content', 'name', 'url']) || typeof a.name !== 'string') return brevoError(400, 'invalid_parameter', 'attachment name is required with content');
        if (!isBase64(a.content)) return brevoError(400, 'invalid_parameter', 'attachment content must be base64 encoded');
        const ext = /\.([^.]+)$/.exec(a.name)?.[1]?.toLowerCase() ?? '';
        if (!EXTENSIONS.has(ext)) return brevoError(400, 'invalid_parameter', `Unsupported file extension: ${ext}`);
      }
    }
    if (body.headers !== undefined && (!isObject(body.headers) || Object.values(body.headers).some((v) => typeof v !== 'string')))
      return brevoError(400, 'invalid_parameter', 'headers must be an object of strings');
    const headers = (body.headers ?? {}) as Record<string, string>;
    const key = headers.idempotencyKey ?? headers['Idempotency-Key'];
    if (key !== undefined && !UUID.test(key)) return brevoError(400, 'invalid_parameter', 'idempotencyKey must be a valid UUID');
    if (key !== undefined && (keys.get(key) ?? -Infinity) > now() - IDEMPOTENCY_TTL_MS) {
      return brevoError(400, 'duplicate_parameter', 'Request with the same idempotencyKey has already been processed');
    }
    const reply = control.accept(request, body, (id) => ({ status: 201, body: { messageId: `<${id}@smtp-relay.mailin.fr>` } }));
    if (reply.status === 201) {
      if (key !== undefined) keys.set(key, now());
      for (const list of ['to', 'cc', 'bcc']) {
        for (const p of (body[list] as Json[] | undefined) ?? []) if (dropsRecipient(p.name)) dropped.push(String(p.email));
      }
      for (const a of (body.attachment as Json[] | undefined) ?? []) deliveredFilenames.push(Buffer.from(String(a.name), 'utf8').toString('latin1'));
    }
    return reply;
  });
  return Object.assign(fake, { dropped, deliveredFilenames });
}
