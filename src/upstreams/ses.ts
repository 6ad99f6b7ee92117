/**
 * Amazon SES v2 SendEmail with raw content (POST /v2/email/outbound-emails, SigV4 service "ses").
 * Content.Raw.Data carries the spooled bytes untouched (base64); Destination.ToAddresses lists the
 * envelope recipients, which SES uses as the envelope (header To/Cc stay as written; Bcc works).
 * Up to 50 recipients per request. Signing uses the `aws4` library. No idempotency key: a retry
 * after a timeout whose request did reach SES sends twice.
 */
import aws4 from 'aws4';
import type { SesUpstreamConfig } from '../config/types.js';
import { RestUpstream, type Prepared, type ProviderError } from './rest/base.js';
import { apiUrl, field, parseJson, str, type HttpResponse } from './rest/http.js';
import type { OutboundMessage } from './types.js';

const MAX_RECIPIENTS = 50;
const PATH = '/v2/email/outbound-emails';

export class SesUpstream extends RestUpstream<SesUpstreamConfig> {
  protected async prepare(message: OutboundMessage): Promise<Prepared> {
    const calls = [];
    const url = new URL(apiUrl(this.config.endpoint, PATH));
    for (let i = 0; i < message.recipients.length; i += MAX_RECIPIENTS) {
      const recipients = message.recipients.slice(i, i + MAX_RECIPIENTS);
      const body = JSON.stringify({ Destination: { ToAddresses: recipients }, Content: { Raw: { Data: message.raw.toString('base64') } } });
      const signed = aws4.sign(
        { host: url.host, path: url.pathname, method: 'POST', service: 'ses', region: this.config.region, body, headers: { 'content-type': 'application/json' } },
        { accessKeyId: this.config.accessKeyId, secretAccessKey: this.config.secretAccessKey, sessionToken: this.config.sessionToken },
      );
      const headers: Record<string, string> = {};
      for (const [name, value] of Object.entries(signed.headers ?? {})) {
        // fetch sets Host and Content-Length itself (to the same values that were signed).
        if (!/^(host|content-length)$/i.test(name) && value !== undefined) headers[name.toLowerCase()] = String(value);
      }
      calls.push({ recipients, request: { method: 'POST' as const, url: url.toString(), headers, body } });
    }
    return { calls };
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
