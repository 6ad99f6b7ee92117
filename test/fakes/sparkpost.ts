/**
 * Fake SparkPost POST /api/v1/transmissions, from developers.sparkpost.com/api (transmissions,
 * authentication, extended error codes): Authorization is the bare API key; recipients
 * [{address: {email, name?, header_to?}}] required; content.email_rfc822 must not be combined with
 * inline content fields (1301); 200 {"results": {"total_rejected_recipients", "total_accepted_recipients", "id"}}.
 * Errors: {"errors": [{"message", "description", "code"}]}.
 * GET /api/v1/account (same auth) answers {"results": {customer_id, status, subscription, ...}}.
 */
import { EMAIL, header, isObject, parseJsonBody, startFake, unknownKey, type Fake, type Json, type Reply } from './server.js';

export type SparkpostFake = Fake<Json>;

export const sparkpostError = (status: number, code: string, message: string, description?: string): Reply => ({
  status,
  body: { errors: [{ message, ...(description ? { description } : {}), code }] },
});

const TOP = ['options', 'recipients', 'campaign_id', 'description', 'metadata', 'substitution_data', 'return_path', 'content'];
const CONTENT = ['email_rfc822', 'html', 'text', 'subject', 'from', 'reply_to', 'headers', 'attachments', 'inline_images', 'template_id', 'use_draft_template'];

export function startSparkpostFake(apiKey: string): Promise<SparkpostFake> {
  return startFake<Json>((request, fake) => {
    const route = `${request.method} ${request.path}`;
    if (route !== 'POST /api/v1/transmissions' && route !== 'GET /api/v1/account') return sparkpostError(404, '1101', 'invalid URI');
    const auth = header(request, 'authorization');
    if (auth !== apiKey && auth !== 'Basic ' + Buffer.from(`${apiKey}:`).toString('base64')) return { status: 401, body: { errors: [{ message: 'Unauthorized.' }] } };
    if (route === 'GET /api/v1/account') {
      return { status: 200, body: { results: { customer_id: 123, company_name: 'Example', status: 'active', subscription: { code: 'free500', name: 'Test Account', plan_volume: 500 }, options: { smtp_tracking_default: false } } } };
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
      if (typeof address.email !== 'string' || !EMAIL.test(address.email)) return sparkpostError(422, '1300', 'invalid data format/type/length', `Invalid recipient address.email: ${String(address.email)}`);
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
    const count = (body.recipients as unknown[]).length;
    return fake.accept(request, body, (id) => ({ status: 200, body: { results: { total_rejected_recipients: 0, total_accepted_recipients: count, id } } }));
  });
}
