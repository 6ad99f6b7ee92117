/**
 * Mailgun raw MIME (POST /v3/{domain}/messages.mime, HTTP Basic api:<key>): the spooled bytes go
 * up untouched as the `message` file part, and `to` lists exactly the envelope recipients (Mailgun
 * delivers to those, whatever the headers say). Up to 1000 recipients per request. No idempotency
 * key: a retry after a timeout whose request did reach Mailgun sends twice.
 */
import type { MailgunUpstreamConfig } from '../config/types.js';
import { jsonError, RestUpstream, type Prepared, type ProviderError } from './rest/base.js';
import { apiUrl, basicAuth, field, parseJson, str, type HttpResponse } from './rest/http.js';
import type { OutboundMessage } from './types.js';

const MAX_RECIPIENTS = 1000;

export class MailgunUpstream extends RestUpstream<MailgunUpstreamConfig> {
  protected async prepare(message: OutboundMessage): Promise<Prepared> {
    const calls = [];
    for (let i = 0; i < message.recipients.length; i += MAX_RECIPIENTS) {
      const recipients = message.recipients.slice(i, i + MAX_RECIPIENTS);
      const form = new FormData();
      for (const recipient of recipients) form.append('to', recipient);
      form.append('message', new Blob([new Uint8Array(message.raw)], { type: 'message/rfc822' }), 'message.mime');
      calls.push({
        recipients,
        request: {
          method: 'POST' as const,
          url: apiUrl(this.config.endpoint, `/v3/${encodeURIComponent(this.config.domain)}/messages.mime`),
          headers: { authorization: basicAuth('api', this.config.apiKey) },
          body: form,
        },
      });
    }
    return { calls };
  }

  protected messageIdOf(response: HttpResponse): string | undefined {
    return str(field(parseJson(response.text), 'id'))?.replace(/^<|>$/g, '');
  }

  protected errorOf(response: HttpResponse): ProviderError {
    return jsonError(response, undefined, 'message');
  }
}
