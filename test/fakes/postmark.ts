/**
 * Fake Postmark /email, from postmarkapp.com/developer (email API, API overview, error codes):
 * X-Postmark-Server-Token, Accept and Content-Type application/json, From/To required, TextBody or
 * HtmlBody, at most 50 recipients, base64 attachments with Name and ContentType, Headers as
 * [{Name, Value}], 200 {To, SubmittedAt, MessageID, ErrorCode: 0, Message: "OK"}.
 * Errors: 401/422 {"ErrorCode": n, "Message": "..."}.
 * GET /server (same token and Accept rules) answers the server's configuration {ID, Name, ...}.
 * Inactive (suppressed) recipients, in `inactive` (postmark.js ErrorHandler tests, postmark gem
 * error_spec, anymail's Postmark backend): when only some are inactive, 200 with ErrorCode 0 and
 * "Message OK, but will not deliver to these inactive addresses: a, b." (nothing sent to them);
 * when all are, 422 ErrorCode 406 "You tried to send to recipient(s) that have been marked as
 * inactive. Found inactive addresses: …". MessageStream must name one of the server's streams
 * (`streams`, default ["outbound"]); another is 422 ErrorCode 1235.
 */
import { addressOf, header, isBase64, isObject, parseJsonBody, startFake, unknownKey, type Fake, type Json, type Reply } from './server.js';

export interface PostmarkFake extends Fake<Json> {
  /** Suppressed addresses (lower case). */
  inactive: Set<string>;
  /** Recipients actually sent to, per accepted message. */
  deliveredTo: string[][];
}

const err = (status: number, code: number, message: string): Reply => ({ status, body: { ErrorCode: code, Message: message } });

const FIELDS = ['From', 'To', 'Cc', 'Bcc', 'Subject', 'Tag', 'HtmlBody', 'TextBody', 'ReplyTo', 'Headers', 'TrackOpens', 'TrackLinks', 'Metadata', 'Attachments', 'MessageStream'];

function addressList(value: unknown): string[] | undefined {
  if (typeof value !== 'string') return undefined;
  const parts = value
    .split(/,(?=(?:[^"]*"[^"]*")*[^"]*$)/)
    .map((s) => s.trim())
    .filter(Boolean);
  const out = parts.map(addressOf);
  return out.every((a): a is string => a !== undefined) ? out : undefined;
}

export async function startPostmarkFake(token: string, options: { streams?: string[] } = {}): Promise<PostmarkFake> {
  const inactive = new Set<string>();
  const deliveredTo: string[][] = [];
  const streams = options.streams ?? ['outbound'];
  const fake = await startFake<Json>((request, control) => {
    const route = `${request.method} ${request.path}`;
    if (route !== 'POST /email' && route !== 'GET /server') return { status: 404, body: '' };
    const given = header(request, 'x-postmark-server-token');
    if (given === undefined)
      return err(401, 10, 'No Account or Server API tokens were supplied in the HTTP headers. Please add a header for either X-Postmark-Server-Token or X-Postmark-Account-Token.');
    if (given !== token) return err(401, 10, 'The Server Token you provided in the X-Postmark-Server-Token request header was invalid. Please verify that you are using a valid token.');
    if (!/application\/json/.test(header(request, 'accept') ?? '')) return err(422, 409, 'JSON request required: the Accept header must be application/json.');
    if (route === 'GET /server') return { status: 200, body: { ID: 1, Name: 'fake server', ApiTokens: [token], Color: 'blue', SmtpApiActivated: true, RawEmailEnabled: false, DeliveryType: 'Live' } };
    if (!/^application\/json/.test(header(request, 'content-type') ?? '')) return err(422, 409, 'JSON request required: the Content-Type header must be application/json.');
    const body = parseJsonBody(request);
    if (!isObject(body)) return err(422, 402, 'Received invalid JSON input.');
    const unknown = unknownKey(body, FIELDS);
    if (unknown) return err(422, 403, `Incompatible JSON input: unknown field '${unknown}'.`);
    if (addressList(body.From)?.length !== 1) return err(422, 300, "Invalid 'From' address.");
    const to = addressList(body.To);
    if (!to || to.length === 0) return err(422, 300, "Invalid 'To' address.");
    const cc = body.Cc === undefined ? [] : addressList(body.Cc);
    const bcc = body.Bcc === undefined ? [] : addressList(body.Bcc);
    if (!cc) return err(422, 300, "Invalid 'Cc' address.");
    if (!bcc) return err(422, 300, "Invalid 'Bcc' address.");
    if (body.ReplyTo !== undefined && !addressList(body.ReplyTo)) return err(422, 300, "Invalid 'ReplyTo' address.");
    if (to.length + cc.length + bcc.length > 50) return err(422, 300, 'Invalid email request: you may not have more than 50 recipients (To, Cc and Bcc combined).');
    if (typeof body.TextBody !== 'string' && typeof body.HtmlBody !== 'string') return err(422, 300, 'Provide either email TextBody or HtmlBody or both.');
    if (body.Headers !== undefined) {
      if (!Array.isArray(body.Headers) || body.Headers.some((h) => !isObject(h) || typeof h.Name !== 'string' || typeof h.Value !== 'string' || unknownKey(h, ['Name', 'Value']))) {
        return err(422, 403, 'Incompatible JSON input: Headers must be [{Name, Value}].');
      }
    }
    if (body.Attachments !== undefined) {
      if (!Array.isArray(body.Attachments)) return err(422, 403, 'Incompatible JSON input: Attachments must be an array.');
      for (const a of body.Attachments as unknown[]) {
        if (!isObject(a) || unknownKey(a, ['Name', 'Content', 'ContentType', 'ContentID']) || typeof a.Name !== 'string' || typeof a.ContentType !== 'string') {
          return err(422, 300, 'Invalid attachment: Name, Content and ContentType are required.');
        }
        if (!isBase64(a.Content)) return err(422, 300, 'Invalid attachment content: not base64.');
        if (a.ContentID !== undefined && (typeof a.ContentID !== 'string' || !a.ContentID.startsWith('cid:'))) return err(422, 300, 'Invalid attachment ContentID: expected "cid:..."');
        if (/\.(exe|bat|vbs|scr)$/i.test(a.Name)) return err(422, 411, `Forbidden attachment type: ${a.Name}`);
      }
    }
    const stream = body.MessageStream;
    if (stream !== undefined && !(typeof stream === 'string' && streams.includes(stream)))
      return err(422, 1235, `The message stream '${JSON.stringify(stream).replace(/^"|"$/g, '')}' was not found on this server.`);
    const everyone = [...to, ...cc, ...bcc].map((a) => a.toLowerCase());
    const suppressed = everyone.filter((a) => inactive.has(a));
    if (suppressed.length === everyone.length) {
      return err(
        422,
        406,
        `You tried to send to recipient(s) that have been marked as inactive. Found inactive addresses: ${suppressed.join(', ')}. Inactive recipients are ones that have generated a hard bounce, a spam complaint, or a manual suppression.`,
      );
    }
    const message = suppressed.length ? `Message OK, but will not deliver to these inactive addresses: ${suppressed.join(', ')}.` : 'OK';
    const reply = control.accept(request, body, (id) => ({ status: 200, body: { To: body.To, SubmittedAt: new Date().toISOString(), MessageID: id, ErrorCode: 0, Message: message } }));
    if (reply.status === 200) deliveredTo.push(everyone.filter((a) => !inactive.has(a)));
    return reply;
  });
  return Object.assign(fake, { inactive, deliveredTo });
}
