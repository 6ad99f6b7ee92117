/**
 * Fake Mailjet Send API v3.1 (POST /v3.1/send), from mailjet/api-documentation's send-api guide
 * and status codes: HTTP Basic api_key:secret_key, {Messages: [...]} (1-50), each message with
 * From, To (<= 50 recipients incl. Cc/Bcc), TextPart/HTMLPart, base64 Attachments and
 * InlinedAttachments (ContentID), forbidden Headers (send-0011). Success 200 with a MessageID per
 * recipient; errors per message {"Status":"error","Errors":[{ErrorIdentifier, ErrorCode, StatusCode,
 * ErrorMessage, ErrorRelatedTo}]} with HTTP 400, or global {ErrorIdentifier, ErrorCode, StatusCode, ErrorMessage}.
 * GET /v3/REST/sender (same auth) lists the senders {Count, Data: [{ID, Email, Status, ...}], Total}.
 * MessageID is a JSON number beyond 2^53 (the guide's sample: 576460753067090994), written as
 * raw JSON digits exactly as Mailjet does: a client that parses it as a double records a wrong id.
 */
import { randomUUID } from 'node:crypto';
import { EMAIL, header, isBase64, isObject, parseJsonBody, startFake, unknownKey, type Fake, type Json, type Reply } from './server.js';

export type MailjetFake = Fake<Json>;

export const mailjetGlobalError = (status: number, code: string, message: string): Reply => ({
  status,
  body: { ErrorIdentifier: randomUUID(), ErrorCode: code, StatusCode: status, ErrorMessage: message },
});

const messageError = (status: number, code: string, message: string, related: string[]): Reply => ({
  status,
  body: { Messages: [{ Status: 'error', Errors: [{ ErrorIdentifier: randomUUID(), ErrorCode: code, StatusCode: status, ErrorMessage: message, ErrorRelatedTo: related }] }] },
});

const MESSAGE = [
  'From',
  'Sender',
  'To',
  'Cc',
  'Bcc',
  'ReplyTo',
  'Subject',
  'TextPart',
  'HTMLPart',
  'TemplateID',
  'TemplateLanguage',
  'TemplateErrorReporting',
  'TemplateErrorDeliver',
  'Attachments',
  'InlinedAttachments',
  'Priority',
  'CustomCampaign',
  'DeduplicateCampaign',
  'TrackOpens',
  'TrackClicks',
  'CustomID',
  'EventPayload',
  'MonitoringCategory',
  'URLTags',
  'Headers',
  'Variables',
];
const FORBIDDEN_HEADERS = [
  'from',
  'sender',
  'subject',
  'to',
  'cc',
  'bcc',
  'return-path',
  'delivered-to',
  'dkim-signature',
  'domainkey-status',
  'received-spf',
  'authentication-results',
  'received',
  'x-mailjet-prio',
  'x-mailjet-debug',
  'user-agent',
  'x-mailer',
  'x-mj-customid',
  'x-mj-eventpayload',
  'x-mj-vars',
  'x-mj-templateerrordeliver',
  'x-mj-templateerrorreporting',
  'x-mj-templatelanguage',
  'x-mailjet-trackopen',
  'x-mailjet-trackclick',
  'x-mj-templateid',
  'x-mj-workflowid',
  'x-feedback-id',
  'x-mailjet-segmentation',
  'list-id',
  'x-mj-mid',
  'x-mj-errormessage',
  'date',
  'x-csa-complaints',
  'message-id',
  'x-mailjet-campaign',
  'x-mj-statisticscontactslistid',
];

const isContact = (c: unknown) => isObject(c) && !unknownKey(c, ['Email', 'Name']) && typeof c.Email === 'string' && EMAIL.test(c.Email);

/** The guide's sample MessageID: above Number.MAX_SAFE_INTEGER. */
export const FIRST_MESSAGE_ID = 576460753067090994n;
let nextMessageId = FIRST_MESSAGE_ID;

export async function startMailjetFake(apiKey: string, secretKey: string, options: { senders?: Array<{ Email: string; Status: string }> } = {}): Promise<MailjetFake> {
  const self: MailjetFake = await startFake<Json>((request, fake) => {
    const route = `${request.method} ${request.path}`;
    if (route !== 'POST /v3.1/send' && route !== 'GET /v3/REST/sender') return mailjetGlobalError(404, 'mj-0000', 'Object not found');
    if (header(request, 'authorization') !== 'Basic ' + Buffer.from(`${apiKey}:${secretKey}`).toString('base64')) {
      return mailjetGlobalError(401, 'mj-0015', 'API key authentication/authorization failure. You may be unauthorized to access the API or your API key may be expired.');
    }
    if (route === 'GET /v3/REST/sender') {
      const senders = (options.senders ?? [{ Email: 'alice@example.org', Status: 'Active' }]).map((s, i) => ({
        ID: i + 1,
        Name: '',
        EmailType: 'transactional',
        IsDefaultSender: i === 0,
        CreatedAt: '2026-01-01T00:00:00Z',
        DNSID: 1,
        Filename: '',
        ...s,
      }));
      return { status: 200, body: { Count: senders.length, Data: senders, Total: senders.length } };
    }
    const body = parseJsonBody(request);
    if (!isObject(body)) return mailjetGlobalError(400, 'mj-0002', 'Malformed JSON, please review the syntax and properties types.');
    const top = unknownKey(body, ['Messages', 'SandboxMode', 'AdvanceErrorHandling', 'Globals']);
    if (top) return mailjetGlobalError(400, 'mj-0005', `Invalid value: unknown property ${top}`);
    if (!Array.isArray(body.Messages) || body.Messages.length === 0) return mailjetGlobalError(400, 'mj-0003', 'Missing mandatory property: Messages');
    if (body.Messages.length > 50) return mailjetGlobalError(400, 'mj-0008', 'Too many items: at most 50 Messages');
    if (body.Messages.length !== 1) return mailjetGlobalError(400, 'mj-0008', 'this fake takes one message per call');
    const m = body.Messages[0] as unknown;
    if (!isObject(m)) return mailjetGlobalError(400, 'mj-0004', 'Type mismatch: Messages[0]');
    const unknown = unknownKey(m, MESSAGE);
    if (unknown) return messageError(400, 'mj-0005', `Invalid value: unknown property ${unknown}`, [unknown]);
    if (!isContact(m.From)) return messageError(400, 'mj-0013', '"From" is an invalid email address.', ['From']);
    if (!Array.isArray(m.To) || m.To.length === 0) return messageError(400, 'mj-0003', 'Missing mandatory property.', ['To']);
    let count = 0;
    for (const list of ['To', 'Cc', 'Bcc']) {
      if (m[list] === undefined) continue;
      if (!Array.isArray(m[list])) return messageError(400, 'mj-0004', 'Type mismatch.', [list]);
      for (const [i, c] of (m[list] as unknown[]).entries()) {
        if (!isContact(c)) return messageError(400, 'mj-0013', `"${String(isObject(c) ? c.Email : c)}" is an invalid email address.`, [`${list}[${i}].Email`]);
        count++;
      }
    }
    if (count > 50) return messageError(400, 'send-0015', 'Too many recipients: at most 50 per message.', ['To']);
    if (m.ReplyTo !== undefined && !isContact(m.ReplyTo)) return messageError(400, 'mj-0013', 'ReplyTo is an invalid email address.', ['ReplyTo']);
    if (typeof m.Subject === 'string' && m.Subject.length > 255) return messageError(400, 'mj-0006', 'Value too long: Subject', ['Subject']);
    if (m.TextPart === undefined && m.HTMLPart === undefined && m.TemplateID === undefined)
      return messageError(400, 'send-0003', 'At least "HTMLPart", "TextPart" or "TemplateID" must be provided.', []);
    for (const list of ['Attachments', 'InlinedAttachments']) {
      if (m[list] === undefined) continue;
      if (!Array.isArray(m[list])) return messageError(400, 'mj-0004', 'Type mismatch.', [list]);
      for (const [i, a] of (m[list] as unknown[]).entries()) {
        const allowed = list === 'Attachments' ? ['ContentType', 'Filename', 'Base64Content'] : ['ContentType', 'Filename', 'Base64Content', 'ContentID'];
        if (!isObject(a) || unknownKey(a, allowed) || typeof a.ContentType !== 'string' || typeof a.Filename !== 'string')
          return messageError(400, 'mj-0003', 'Missing mandatory property.', [`${list}[${i}]`]);
        if (!isBase64(a.Base64Content)) return messageError(400, 'mj-0005', 'Invalid value: Base64Content is not base64.', [`${list}[${i}].Base64Content`]);
      }
    }
    if (m.Headers !== undefined) {
      if (!isObject(m.Headers)) return messageError(400, 'mj-0004', 'Type mismatch.', ['Headers']);
      const forbidden = Object.keys(m.Headers).find((h) => FORBIDDEN_HEADERS.includes(h.toLowerCase()));
      if (forbidden) return messageError(400, 'send-0011', `Header "${forbidden}" is not allowed.`, [`Headers.${forbidden}`]);
    }
    let first: string | undefined;
    const reply = fake.accept(request, m, () => {
      const list = (name: string) =>
        ((m[name] as Json[] | undefined) ?? []).map((c) => {
          const id = String(nextMessageId++);
          first ??= id;
          return { Email: c.Email, MessageUUID: randomUUID(), MessageID: `@@${id}@@`, MessageHref: `https://api.mailjet.com/v3/REST/message/${id}` };
        });
      const json = JSON.stringify({ Messages: [{ Status: 'success', CustomID: m.CustomID ?? '', To: list('To'), Cc: list('Cc'), Bcc: list('Bcc') }] });
      // Bare 64-bit integers in the JSON text, as Mailjet sends them.
      return { status: 200, headers: { 'content-type': 'application/json' }, body: json.replace(/"@@(\d+)@@"/g, '$1') };
    });
    // The accepted request is known by Mailjet's id for its first recipient (what the relay must log).
    const last = self.accepted[self.accepted.length - 1];
    if (first && last) last.id = first;
    return reply;
  });
  return self;
}
