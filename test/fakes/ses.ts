/**
 * Fake Amazon SES v2 SendEmail (POST /v2/email/outbound-emails), from the AWS API reference
 * (SendEmail, RawMessage, Destination, quotas) and the sesv2 Smithy model. Every request's SigV4
 * signature is verified server-side, computed independently here with node:crypto per the AWS
 * Signature Version 4 specification (canonical request → string to sign → HMAC chain), for
 * service "ses" and the fake's region; x-amz-date must be within 15 minutes.
 * Success 200 {"MessageId"}; errors carry x-amzn-ErrorType and {"message"} (restJson1).
 * GetAccount (GET /v2/email/account, same signature check) answers the account's sending status
 * (`account`: sending enabled, production access or sandbox).
 * From AWS CommonErrors and the SES developer guide: a request signed more than 15 minutes off the
 * server clock is HTTP 400 RequestExpired (not 403); raw lines over 998 octets and non-ASCII
 * addresses (use punycode domains) are refused with HTTP 400.
 */
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import { EMAIL, header, isBase64, isObject, parseJsonBody, startFake, unknownKey, type Fake, type Json, type Received, type Reply } from './server.js';

export interface SesPayload {
  body: Json;
  raw: Buffer;
  destinations: string[];
}

export type SesFake = Fake<SesPayload>;

export const sesError = (status: number, type: string, message: string): Reply => ({
  status,
  headers: { 'x-amzn-errortype': `${type}:http://internal.amazon.com/coral/com.amazonaws.sesv2/` },
  body: { message },
});

const FIELDS = [
  'FromEmailAddress',
  'FromEmailAddressIdentityArn',
  'Destination',
  'ReplyToAddresses',
  'FeedbackForwardingEmailAddress',
  'FeedbackForwardingEmailAddressIdentityArn',
  'Content',
  'EmailTags',
  'ConfigurationSetName',
  'ListManagementOptions',
  'EndpointId',
  'TenantName',
];

const sha256 = (data: string | Buffer) => createHash('sha256').update(data).digest('hex');
const hmac = (key: string | Buffer, data: string) => createHmac('sha256', key).update(data).digest();

/** Returns an error reply when the request's SigV4 signature is missing or wrong. */
export function verifySigV4(request: Received, credentials: { accessKeyId: string; secretAccessKey: string; region: string; service: string }, now = Date.now()): Reply | undefined {
  const auth = header(request, 'authorization');
  if (!auth) return sesError(403, 'MissingAuthenticationTokenException', 'Missing Authentication Token');
  const match = /^AWS4-HMAC-SHA256 Credential=([^/]+)\/(\d{8})\/([^/]+)\/([^/]+)\/aws4_request, ?SignedHeaders=([a-z0-9;-]+), ?Signature=([0-9a-f]{64})$/.exec(auth);
  if (!match) return sesError(400, 'IncompleteSignatureException', 'Authorization header requires Credential, SignedHeaders and Signature.');
  const [, keyId, date, region, service, signedHeaders, signature] = match as unknown as [string, string, string, string, string, string, string];
  if (keyId !== credentials.accessKeyId) return sesError(403, 'UnrecognizedClientException', 'The security token included in the request is invalid.');
  if (region !== credentials.region || service !== credentials.service)
    return sesError(403, 'SignatureDoesNotMatch', `Credential should be scoped to a valid region and service (${credentials.region}/${credentials.service}).`);
  const amzDate = header(request, 'x-amz-date') ?? '';
  const at = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(amzDate);
  if (!at || !amzDate.startsWith(date)) return sesError(403, 'IncompleteSignatureException', 'X-Amz-Date is missing or does not match the credential scope.');
  const signedAt = Date.UTC(+at[1]!, +at[2]! - 1, +at[3]!, +at[4]!, +at[5]!, +at[6]!);
  if (Math.abs(now - signedAt) > 15 * 60_000) return sesError(400, 'RequestExpired', `Request has expired: the request was signed at ${amzDate}, more than 15 minutes from the server time.`);
  const names = signedHeaders.split(';');
  if (!names.includes('host') || !names.includes('x-amz-date')) return sesError(403, 'SignatureDoesNotMatch', 'host and x-amz-date must be signed.');
  const [path, query = ''] = request.path.split('?') as [string, string?];
  const canonicalHeaders = names.map((name) => `${name}:${(header(request, name) ?? '').trim().replace(/\s+/g, ' ')}\n`).join('');
  const canonicalRequest = [request.method, path, query, canonicalHeaders, signedHeaders, sha256(request.body)].join('\n');
  const scope = `${date}/${region}/${service}/aws4_request`;
  const stringToSign = ['AWS4-HMAC-SHA256', amzDate, scope, sha256(canonicalRequest)].join('\n');
  const key = hmac(hmac(hmac(hmac(`AWS4${credentials.secretAccessKey}`, date), region), service), 'aws4_request');
  const expected = createHmac('sha256', key).update(stringToSign).digest();
  if (!timingSafeEqual(expected, Buffer.from(signature, 'hex'))) {
    return sesError(403, 'SignatureDoesNotMatch', 'The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method.');
  }
  return undefined;
}

export function startSesFake(credentials: { accessKeyId: string; secretAccessKey: string; region: string }, account: { sendingEnabled?: boolean; productionAccess?: boolean } = {}): Promise<SesFake> {
  return startFake<SesPayload>((request, fake) => {
    if (request.method === 'GET' && request.path === '/v2/email/account') {
      const problem = verifySigV4(request, { ...credentials, service: 'ses' });
      if (problem) return problem;
      if (request.body.length > 0) return sesError(400, 'SerializationException', 'GetAccount takes no request body.');
      return {
        status: 200,
        body: {
          SendingEnabled: account.sendingEnabled ?? true,
          ProductionAccessEnabled: account.productionAccess ?? false,
          EnforcementStatus: account.sendingEnabled === false ? 'SHUTDOWN' : 'HEALTHY',
          DedicatedIpAutoWarmupEnabled: false,
          SendQuota: { Max24HourSend: 200, MaxSendRate: 1, SentLast24Hours: 0 },
        },
      };
    }
    if (request.method !== 'POST' || request.path !== '/v2/email/outbound-emails') return sesError(404, 'UnknownOperationException', 'Unknown operation');
    const signatureProblem = verifySigV4(request, { ...credentials, service: 'ses' });
    if (signatureProblem) return signatureProblem;
    const body = parseJsonBody(request);
    if (!isObject(body)) return sesError(400, 'SerializationException', 'Could not parse the request body as JSON.');
    const unknown = unknownKey(body, FIELDS);
    if (unknown) return sesError(400, 'BadRequestException', `Unknown field: ${unknown}`);
    const content = body.Content;
    if (!isObject(content) || Object.keys(content).length !== 1 || unknownKey(content, ['Simple', 'Raw', 'Template']))
      return sesError(400, 'BadRequestException', 'Content must have exactly one of Simple, Raw or Template.');
    if (!isObject(content.Raw)) return sesError(400, 'BadRequestException', 'This fake expects Content.Raw.');
    if (unknownKey(content.Raw, ['Data']) || !isBase64(content.Raw.Data)) return sesError(400, 'BadRequestException', 'Content.Raw.Data must be base64-encoded.');
    const raw = Buffer.from(content.Raw.Data, 'base64');
    if (!/\r?\n\r?\n/.test(raw.toString('latin1'))) return sesError(400, 'MessageRejected', 'Illegal header: the raw message has no header/body separator.');
    const head = raw.toString('utf8').split(/\r?\n\r?\n/)[0]!;
    if (/^(from|to|cc|reply-to|sender):.*@[^\s<>,;"]*[^\x00-\x7f]/im.test(head)) return sesError(400, 'BadRequestException', 'Domain contains illegal character in an address header.');
    if (
      raw
        .toString('latin1')
        .split(/\r?\n/)
        .some((line) => line.length > 998)
    )
      return sesError(400, 'MessageRejected', 'Message length exceeds limit: lines must be at most 998 octets.');
    const destinations: string[] = [];
    if (body.Destination !== undefined) {
      if (!isObject(body.Destination) || unknownKey(body.Destination, ['ToAddresses', 'CcAddresses', 'BccAddresses'])) return sesError(400, 'BadRequestException', 'Invalid Destination.');
      for (const list of ['ToAddresses', 'CcAddresses', 'BccAddresses']) {
        const value = body.Destination[list];
        if (value === undefined) continue;
        if (!Array.isArray(value) || value.some((a) => typeof a !== 'string' || !EMAIL.test(a))) return sesError(400, 'BadRequestException', `Invalid ${list}.`);
        const nonAscii = (value as string[]).find((a) => /[^\x00-\x7f]/.test(a));
        if (nonAscii) return sesError(400, 'BadRequestException', `Domain contains illegal character: ${nonAscii}`);
        destinations.push(...(value as string[]));
      }
    }
    if (destinations.length > 50) return sesError(400, 'MessageRejected', 'Recipient count exceeds 50.');
    return fake.accept(request, { body, raw, destinations }, (id) => ({ status: 200, body: { MessageId: id } }));
  });
}
