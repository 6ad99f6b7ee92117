/**
 * Fake SparkPost POST /api/v1/transmissions, from developers.sparkpost.com/api (transmissions.apib:
 * body, email_rfc822 rules, options, responses; index.apib: authentication, errors) and the support
 * docs (extended error codes, engagement tracking): Authorization is the bare API key (or Basic
 * key:); recipients [{address: {email, name?, header_to?}}] required; content.email_rfc822 must not
 * be combined with inline content fields (1301) and must not be dot-stuffed.
 * What SparkPost does to a raw message, modelled in `delivered` (the message as recipients get it):
 * options.open_tracking and options.click_tracking default to TRUE (a pixel is added, links are
 * rewritten), and {{…}} substitution applies to the top-level headers and the body.
 * Partial acceptance: recipients in `rejects` (suppressed, invalid) are refused inside a 200:
 * {"errors":[{"code":"2000","message":"transmission created, but with validation errors"}],
 *  "results":{"rcpt_to_errors":[…],"total_rejected_recipients":n,"total_accepted_recipients":m,"id"}}
 * — the rcpt_to_errors do not say which address failed.
 * Success 200 {"results": {"total_rejected_recipients", "total_accepted_recipients", "id"}}.
 * Errors: {"errors": [{"message", "description", "code"}]}.
 * GET /api/v1/account (same auth) answers {"results": {customer_id, status, subscription, ...}}.
 */
import { EMAIL, header, isObject, parseJsonBody, startFake, unknownKey, type Fake, type Json, type Reply } from './server.js';

export interface SparkpostFake extends Fake<Json> {
  /** Per accepted transmission, the message as its recipients receive it (tracking, substitution applied). */
  delivered: string[];
  /** Addresses SparkPost refuses inside a 200 (rcpt_to_errors). */
  rejects: Set<string>;
}

/** What SparkPost's generation does to email_rfc822 (substitution, then tracking unless turned off). */
function generate(rfc822: string, options: Json): string {
  let out = options.perform_substitutions === false ? rfc822 : rfc822.replace(/\{\{\{?[^}]*\}?\}\}/g, '');
  if (options.click_tracking !== false) out = out.replace(/https?:\/\/[^\s"'<>]+/g, (url) => `https://spgo.io/track?u=${encodeURIComponent(url)}`);
  if (options.open_tracking !== false && /text\/html/i.test(out)) out = out.replace(/(<\/body>)/i, '<img src="https://spgo.io/open.gif">$1');
  return out;
}

export const sparkpostError = (status: number, code: string, message: string, description?: string): Reply => ({
  status,
  body: { errors: [{ message, ...(description ? { description } : {}), code }] },
});

const TOP = ['options', 'recipients', 'campaign_id', 'description', 'metadata', 'substitution_data', 'return_path', 'content'];
const CONTENT = ['email_rfc822', 'html', 'text', 'subject', 'from', 'reply_to', 'headers', 'attachments', 'inline_images', 'template_id', 'use_draft_template'];

const OPTIONS = ['start_time', 'open_tracking', 'click_tracking', 'transactional', 'sandbox', 'skip_suppression', 'ip_pool', 'inline_css', 'perform_substitutions'];

export async function startSparkpostFake(apiKey: string): Promise<SparkpostFake> {
  const delivered: string[] = [];
  const rejects = new Set<string>();
  const fake = await startFake<Json>((request, control) => {
    const route = `${request.method} ${request.path}`;
    if (route !== 'POST /api/v1/transmissions' && route !== 'GET /api/v1/account') return sparkpostError(404, '1101', 'invalid URI');
    const auth = header(request, 'authorization');
    if (auth !== apiKey && auth !== 'Basic ' + Buffer.from(`${apiKey}:`).toString('base64')) return { status: 401, body: { errors: [{ message: 'Unauthorized.' }] } };
    if (route === 'GET /api/v1/account') {
      return {
        status: 200,
        body: {
          results: {
            customer_id: 123,
            company_name: 'Example',
            status: 'active',
            subscription: { code: 'free500', name: 'Test Account', plan_volume: 500 },
            options: { smtp_tracking_default: false },
          },
        },
      };
    }
    if (!/^application\/json/.test(header(request, 'content-type') ?? '')) return sparkpostError(415, '1300', 'invalid data format/type/length', 'Content-Type must be application/json');
    const body = parseJsonBody(request);
    if (!isObject(body)) return sparkpostError(400, '1300', 'invalid data format/type/length', 'Request body is not valid JSON');
    const unknown = unknownKey(body, TOP);
    if (unknown) return sparkpostError(422, '1300', 'invalid data format/type/length', `Unknown field '${unknown}'`);
    if (!Array.isArray(body.recipients) || body.recipients.length === 0) return sparkpostError(422, '1400', 'required field is missing', 'recipients is required');
    for (const r of body.recipients as unknown[]) {
      const address = isObject(r) ? r.address : undefined;
      if (!isObject(r) || unknownKey(r, ['address', 'tags', 'metadata', 'substitution_data', 'return_path']) || !isObject(address) || unknownKey(address, ['email', 'name', 'header_to'])) {
        return sparkpostError(422, '1300', 'invalid data format/type/length', 'recipients[].address must be {email, name?, header_to?}');
      }
      if (typeof address.email !== 'string' || !EMAIL.test(address.email))
        return sparkpostError(422, '1300', 'invalid data format/type/length', `Invalid recipient address.email: ${String(address.email)}`);
    }
    if (!isObject(body.content)) return sparkpostError(422, '1400', 'required field is missing', 'content is required');
    const badContent = unknownKey(body.content, CONTENT);
    if (badContent) return sparkpostError(422, '1300', 'invalid data format/type/length', `Unknown content field '${badContent}'`);
    if (body.content.email_rfc822 !== undefined && Object.keys(body.content).length > 1) {
      return sparkpostError(422, '1301', 'Invalid combination of fields', 'email_rfc822 cannot be combined with other content fields');
    }
    if (typeof body.content.email_rfc822 !== 'string' || !/\r?\n\r?\n/.test(body.content.email_rfc822)) {
      return sparkpostError(422, '1300', 'invalid data format/type/length', 'content.email_rfc822 must be an RFC 822 message');
    }
    if (/\r\n\.\r\n/.test(body.content.email_rfc822)) return sparkpostError(422, '1300', 'invalid data format/type/length', 'email_rfc822 must not be dot-stuffed');
    if (body.options !== undefined) {
      if (!isObject(body.options)) return sparkpostError(422, '1300', 'invalid data format/type/length', 'options must be an object');
      const badOption = unknownKey(body.options, OPTIONS);
      if (badOption) return sparkpostError(422, '1300', 'invalid data format/type/length', `Unknown option '${badOption}'`);
    }
    const emails = (body.recipients as Json[]).map((r) => String((r.address as Json).email));
    const refused = emails.filter((e) => rejects.has(e.toLowerCase()));
    const options = body.options ?? {};
    const rfc822 = body.content.email_rfc822;
    const reply = control.accept(request, body, (id) => {
      if (refused.length === 0) return { status: 200, body: { results: { total_rejected_recipients: 0, total_accepted_recipients: emails.length, id } } };
      return {
        status: 200,
        body: {
          errors: [{ code: '2000', message: 'transmission created, but with validation errors' }],
          results: {
            rcpt_to_errors: refused.map(() => ({ message: 'Message generation rejected', description: 'recipient address suppressed due to customer policy', code: '1902' })),
            total_rejected_recipients: refused.length,
            total_accepted_recipients: emails.length - refused.length,
            id,
          },
        },
      };
    });
    if (reply.status === 200 && refused.length < emails.length) delivered.push(generate(rfc822, options));
    return reply;
  });
  return Object.assign(fake, { delivered, rejects });
}
