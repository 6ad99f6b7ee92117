/**
 * Amazon SES v2 SendEmail with raw content (POST /v2/email/outbound-emails, SigV4 service "ses").
 * Content.Raw.Data carries the spooled bytes (base64; made 7-bit and wire-legal by delivery, see
 * `wire`); Destination.ToAddresses lists the
 * envelope recipients, which SES uses as the envelope (header To/Cc stay as written; Bcc works).
 * Up to 50 recipients per request. Signing uses the `aws4` library. No idempotency key: a retry
 * after a timeout whose request did reach SES sends twice. SES refuses raw lines over 998 octets
 * and non-ASCII addresses: domains are sent as punycode, and a message SES would refuse for either
 * reason is unsupported with that reason before anything is sent. Several credential and clock
 * problems arrive as HTTP 400 (RequestExpired, NotAuthorized, IncompleteSignature, …): they are
 * configuration errors (src/delivery/classify-http.ts), never bounces.
 */
import { domainToASCII } from 'node:url';
import aws4 from 'aws4';
import type { SesUpstreamConfig } from '../config/types.js';
import { headerEnd } from '../message/headers.js';
import { outboundRaw, RestUpstream, type Prepared, type ProviderError } from './rest/base.js';
import type { CheckVerdict, CredentialCheck } from './rest/check.js';
import { apiUrl, field, parseJson, str, type HttpRequest, type HttpResponse } from './rest/http.js';
import type { OutboundMessage } from './types.js';

const MAX_RECIPIENTS = 50;
const PATH = '/v2/email/outbound-emails';

/** The first line longer than 998 octets (without its CRLF), if any. */
export function longLine(raw: Buffer): { line: number; octets: number } | undefined {
  let start = 0;
  for (let line = 1; start <= raw.length; line++) {
    let end = raw.indexOf(0x0a, start);
    if (end < 0) end = raw.length;
    const octets = end - start - (end > start && raw[end - 1] === 0x0d ? 1 : 0);
    if (octets > 998) return { line, octets };
    start = end + 1;
  }
  return undefined;
}

/** The first address header (From, To, Cc, Reply-To, Sender) whose address has non-ASCII after the "@". */
export function nonAsciiAddressHeader(raw: Buffer): string | undefined {
  const head = raw
    .subarray(0, headerEnd(raw))
    .toString('utf8')
    .replace(/\r?\n(?=[ \t])/g, '');
  for (const line of head.split(/\r?\n/)) {
    const name = /^(from|to|cc|bcc|reply-to|sender):/i.exec(line)?.[1];
    if (name && /@[^\s<>,;"]*[^\x00-\x7f]/.test(line)) return name;
  }
  return undefined;
}

/** user@bücher.example → user@xn--bcher-kva.example; undefined when the local part is not ASCII. */
export function asciiAddress(address: string): string | undefined {
  const at = address.lastIndexOf('@');
  const local = address.slice(0, at);
  if (/[^\x00-\x7f]/.test(local)) return undefined;
  const domain = address.slice(at + 1);
  if (!/[^\x00-\x7f]/.test(domain)) return address;
  const converted = domainToASCII(domain);
  return converted ? `${local}@${converted}` : undefined;
}

export class SesUpstream extends RestUpstream<SesUpstreamConfig> {
  /** Raw.Data: lines ≤ 998; SES advises encoding non-ASCII content, so 8-bit parts are made 7-bit. */
  readonly wire = { eightBit: false };

  protected async prepare(message: OutboundMessage): Promise<Prepared> {
    const raw = await outboundRaw(message);
    const long = longLine(raw);
    if (long) return { unsupported: `line ${long.line} is ${long.octets} octets long; SES refuses lines over 998 octets (RFC 5322 §2.1.1)` };
    const header = nonAsciiAddressHeader(raw);
    if (header) return { unsupported: `the ${header} header has an address with a non-ASCII domain, which SES refuses; write it in punycode (xn--…)` };
    const ascii = new Map<string, string>();
    for (const recipient of message.recipients) {
      const converted = asciiAddress(recipient);
      if (!converted) return { unsupported: `SES accepts only ASCII addresses, and the local part of <${recipient}> is not (SMTPUTF8 is not supported)` };
      ascii.set(recipient, converted);
    }
    const calls = [];
    for (let i = 0; i < message.recipients.length; i += MAX_RECIPIENTS) {
      const recipients = message.recipients.slice(i, i + MAX_RECIPIENTS);
      const body = JSON.stringify({ Destination: { ToAddresses: recipients.map((r) => ascii.get(r)!) }, Content: { Raw: { Data: raw.toString('base64') } } });
      calls.push({ recipients, request: this.signed('POST', PATH, body) });
    }
    return { calls };
  }

  /** A SigV4-signed request (service "ses") for an API path. */
  private signed(method: 'GET' | 'POST', path: string, body?: string): HttpRequest {
    const url = new URL(apiUrl(this.config.endpoint, path));
    const signed = aws4.sign(
      { host: url.host, path: url.pathname, method, service: 'ses', region: this.config.region, ...(body !== undefined ? { body, headers: { 'content-type': 'application/json' } } : {}) },
      { accessKeyId: this.config.accessKeyId, secretAccessKey: this.config.secretAccessKey, sessionToken: this.config.sessionToken },
    );
    const headers: Record<string, string> = {};
    for (const [name, value] of Object.entries(signed.headers ?? {})) {
      // fetch sets Host and Content-Length itself (to the same values that were signed).
      if (!/^(host|content-length)$/i.test(name) && value !== undefined) headers[name.toLowerCase()] = String(value);
    }
    return { method, url: url.toString(), headers, ...(body !== undefined ? { body } : {}) };
  }

  /** GetAccount (GET /v2/email/account): sending enabled, sandbox or production, quota, in this region. */
  protected credentialCheck(): CredentialCheck {
    return {
      request: this.signed('GET', '/v2/email/account'),
      credentials:
        `AWS refused the credentials: check access_key_id and secret_access_key (or secret_access_key_file), session_token for temporary credentials, ` +
        `and that region = "${this.config.region}" matches endpoint; the IAM identity needs ses:GetAccount for this check and ses:SendEmail to send`,
    };
  }

  protected override interpretCheck(response: HttpResponse, _sender?: string): CheckVerdict {
    const verdict = super.interpretCheck(response);
    if (verdict.problem) return verdict;
    const json = parseJson(response.text);
    const quota = field(json, 'SendQuota');
    const limits = quota === undefined ? '' : `, quota ${str(field(quota, 'Max24HourSend')) ?? '?'}/24h at ${str(field(quota, 'MaxSendRate')) ?? '?'}/s`;
    const mode = field(json, 'ProductionAccessEnabled') === true ? 'production access' : 'sandbox (only verified recipients)';
    if (field(json, 'SendingEnabled') === false) {
      return {
        detail: 'sending disabled',
        problem: { errorCode: 'SendingPaused', text: `sending is disabled for this account in ${this.config.region} (enforcement status ${str(field(json, 'EnforcementStatus')) ?? '?'})` },
        advice: 'SES has paused sending for the account in this region: see the SES console (Account dashboard) and resolve the review, or use another region',
      };
    }
    const detail = `sending enabled in ${this.config.region}, ${mode}${limits}`;
    const rate = Number(field(quota, 'MaxSendRate'));
    const configured = this.config.rateLimit ? (this.config.rateLimit.count * 1000) / this.config.rateLimit.perMs : undefined;
    if (field(json, 'ProductionAccessEnabled') !== true) {
      return {
        detail,
        warning: `the account is in the SES sandbox in ${this.config.region}: it delivers only to verified addresses and domains — request production access (SES console → Account dashboard), or verify each recipient`,
      };
    }
    if (Number.isFinite(rate) && rate > 0 && configured !== undefined && Math.abs(configured - rate) > 1e-9) {
      return { detail, warning: `the account may send ${rate} messages/s and rate_limit allows ${configured}/s: set rate_limit = "${Math.floor(rate)}/s" to use it (SES counts each recipient)` };
    }
    return { detail };
  }

  protected messageIdOf(response: HttpResponse): string | undefined {
    return str(field(parseJson(response.text), 'MessageId'));
  }

  /** restJson1: the type is in x-amzn-ErrorType ("Name:namespace-uri"), or __type/code in the body. */
  protected errorOf(response: HttpResponse): ProviderError {
    const json = parseJson(response.text);
    const type = response.headers.get('x-amzn-errortype') ?? str(field(json, '__type')) ?? str(field(json, 'code')) ?? str(field(json, 'Code'));
    const errorCode = type?.split(':')[0]?.split('#').pop();
    return { errorCode, text: str(field(json, 'message')) ?? str(field(json, 'Message')) ?? response.text.slice(0, 500) };
  }
}
