/**
 * Fake Mailgun POST /v3/{domain}/messages.mime, from Mailgun's API reference (sending, intro,
 * response codes): HTTP Basic "api":<key>, multipart/form-data with `to` (required; the envelope
 * recipients, up to 1000) and `message` (required, a file part with the MIME), optional o:/h:/v:/t:
 * options; unknown domain → 404, message over 25MB → 413. 200 {"id":"<...>","message":"Queued. Thank you."}.
 * Errors: {"message": "..."} (401 is the bare text "Forbidden").
 * GET /v3/domains/{domain} (same auth) answers {"domain": {name, state}, receiving_dns_records,
 * sending_dns_records}; another domain is 404 {"message": "Domain not found"}.
 * Tracking (api-sending.rst: o:tracking, o:tracking-clicks, o:tracking-opens = yes|no|true|false|
 * htmlonly): the fake's domain has open and click tracking on (`domainTracking`, default true), so
 * unless the request turns them off, the message as delivered (`delivered`) gets rewritten links and
 * an open pixel — also on messages.mime.
 */
import { EMAIL, header, startFake, type Fake, type Reply } from './server.js';

export interface MailgunPayload {
  to: string[];
  message: Buffer;
  filename: string | undefined;
  options: Record<string, string>;
}

export interface MailgunFake extends Fake<MailgunPayload> {
  /** Per accepted message, the MIME as its recipients receive it (tracking applied when on). */
  delivered: Buffer[];
}

const off = (value: string | undefined) => value !== undefined && /^(no|false)$/i.test(value);

function track(message: Buffer, options: Record<string, string>, domainTracking: boolean): Buffer {
  const all = off(options['o:tracking']);
  const clicks = domainTracking && !all && !off(options['o:tracking-clicks']);
  const opens = domainTracking && !all && !off(options['o:tracking-opens']);
  let text = message.toString('latin1');
  if (clicks) text = text.replace(/https?:\/\/[^\s"'<>]+/g, (url) => `https://email.mg.example/c/${Buffer.from(url).toString('base64url')}`);
  if (opens) text = text.replace(/(<\/body>)/i, '<img src="https://email.mg.example/o/pixel" width="1" height="1">$1');
  return Buffer.from(text, 'latin1');
}

const err = (status: number, message: string): Reply => ({ status, body: { message } });

export async function startMailgunFake(apiKey: string, domain: string, account: { state?: 'active' | 'unverified' | 'disabled'; domainTracking?: boolean } = {}): Promise<MailgunFake> {
  const delivered: Buffer[] = [];
  const fake = await startFake<MailgunPayload>(async (request, control) => {
    const lookup = /^\/v3\/domains\/([^/?]+)$/.exec(request.path);
    if (request.method === 'GET' && lookup) {
      if (header(request, 'authorization') !== 'Basic ' + Buffer.from(`api:${apiKey}`).toString('base64')) return { status: 401, body: 'Forbidden' };
      if (decodeURIComponent(lookup[1]!) !== domain) return err(404, 'Domain not found');
      return {
        status: 200,
        body: { domain: { name: domain, state: account.state ?? 'active', type: 'custom', spam_action: 'disabled', wildcard: false }, receiving_dns_records: [], sending_dns_records: [] },
      };
    }
    const match = /^\/v3\/([^/]+)\/messages\.mime$/.exec(request.path);
    if (request.method !== 'POST' || !match) return { status: 404, body: '404 page not found' };
    if (header(request, 'authorization') !== 'Basic ' + Buffer.from(`api:${apiKey}`).toString('base64')) return { status: 401, body: 'Forbidden' };
    if (decodeURIComponent(match[1]!) !== domain) return err(404, `Domain not found: ${decodeURIComponent(match[1]!)}`);
    const contentType = header(request, 'content-type') ?? '';
    if (!contentType.startsWith('multipart/form-data')) return err(400, "'to' parameter is missing");
    let form: FormData;
    try {
      form = await new Response(new Uint8Array(request.body), { headers: { 'content-type': contentType } }).formData();
    } catch {
      return err(400, 'Invalid multipart form data');
    }
    const to: string[] = [];
    let message: Buffer | undefined;
    let filename: string | undefined;
    const options: Record<string, string> = {};
    for (const [name, value] of form.entries()) {
      if (name === 'to' && typeof value === 'string') to.push(...value.split(',').map((s) => s.trim()));
      else if (name === 'message' && typeof value !== 'string') {
        message = Buffer.from(await value.arrayBuffer());
        filename = value.name;
      } else if (/^(o|h|v|t):/.test(name) && typeof value === 'string') options[name] = value;
      else return err(400, `Unknown or malformed parameter: ${name}`);
    }
    if (to.length === 0) return err(400, "'to' parameter is missing");
    const bad = to.find((a) => !EMAIL.test(a));
    if (bad) return err(400, `to parameter is not a valid address. please check documentation: ${bad}`);
    if (to.length > 1000) return err(400, 'Too many recipients: the maximum is 1000');
    if (!message) return err(400, "'message' parameter is missing or is not a file");
    if (message.length > 25 * 1024 * 1024) return { status: 413, body: 'Request Entity Too Large' };
    const badOption = Object.entries(options).find(([name, value]) => /^o:tracking(-clicks|-opens)?$/.test(name) && !/^(yes|no|true|false|htmlonly)$/i.test(value));
    if (badOption) return err(400, `${badOption[0]} must be yes, no, true, false or htmlonly`);
    const reply = control.accept(request, { to, message, filename, options }, (id) => ({ status: 200, body: { id: `<${id}@${domain}>`, message: 'Queued. Thank you.' } }));
    if (reply.status === 200) delivered.push(track(message, options, account.domainTracking ?? true));
    return reply;
  });
  return Object.assign(fake, { delivered });
}
