/**
 * Mailgun raw MIME (POST /v3/{domain}/messages.mime, HTTP Basic api:<key>): the spooled bytes
 * (made wire-legal by delivery, see `wire`) go up as the `message` file part, and `to` lists exactly the envelope recipients (Mailgun
 * delivers to those, whatever the headers say). Up to 1000 recipients per request. No idempotency
 * key: a retry after a timeout whose request did reach Mailgun sends twice. Tracking is turned off
 * per message (o:tracking, o:tracking-clicks, o:tracking-opens = "no"): a domain with tracking on
 * would otherwise rewrite links and add a pixel to the bytes we accepted, breaking signatures.
 */
import type { MailgunUpstreamConfig } from '../config/types.js';
import { jsonError, outboundRaw, RestUpstream, type Prepared, type ProviderError } from './rest/base.js';
import type { CheckVerdict, CredentialCheck } from './rest/check.js';
import { apiUrl, basicAuth, field, parseJson, str, type HttpResponse } from './rest/http.js';
import type { OutboundMessage } from './types.js';

const MAX_RECIPIENTS = 1000;

export class MailgunUpstream extends RestUpstream<MailgunUpstreamConfig> {
  /** The message goes up as a file (bytes): correctly declared 8-bit parts may stay. */
  readonly wire = { eightBit: true };

  protected async prepare(message: OutboundMessage): Promise<Prepared> {
    const calls = [];
    for (let i = 0; i < message.recipients.length; i += MAX_RECIPIENTS) {
      const recipients = message.recipients.slice(i, i + MAX_RECIPIENTS);
      const form = new FormData();
      for (const recipient of recipients) form.append('to', recipient);
      for (const option of ['o:tracking', 'o:tracking-clicks', 'o:tracking-opens']) form.append(option, 'no');
      form.append('message', new Blob([new Uint8Array(await outboundRaw(message))], { type: 'message/rfc822' }), 'message.mime');
      calls.push({
        recipients,
        request: {
          method: 'POST' as const,
          url: apiUrl(this.config.endpoint, `/v3/${encodeURIComponent(this.config.domain)}/messages.mime`),
          headers: this.auth(),
          body: form,
        },
      });
    }
    return { calls };
  }

  private auth(): Record<string, string> {
    return { authorization: basicAuth('api', this.config.apiKey) };
  }

  /** GET /v3/domains/{domain}: proves the key and says whether the sending domain exists here and is verified. */
  protected credentialCheck(): CredentialCheck {
    return {
      request: { method: 'GET', url: apiUrl(this.config.endpoint, `/v3/domains/${encodeURIComponent(this.config.domain)}`), headers: this.auth() },
      credentials:
        'Mailgun refused api_key (or api_key_file): use the account\'s private API key; an EU-region account needs endpoint = "https://api.eu.mailgun.net". ' +
        '(A domain sending key may send but cannot read the domain: prove it with --send-to.)',
    };
  }

  protected override interpretCheck(response: HttpResponse): CheckVerdict {
    const verdict = super.interpretCheck(response);
    if (response.status === 404) {
      return {
        ...verdict,
        advice: `Mailgun does not know domain = "${this.config.domain}" at ${this.config.endpoint}: check the name under Sending → Domains; a domain created in the EU region needs endpoint = "https://api.eu.mailgun.net"`,
      };
    }
    if (verdict.problem) return verdict;
    const state = str(field(field(parseJson(response.text), 'domain'), 'state'));
    if (state !== undefined && state !== 'active') {
      return {
        detail: `domain ${this.config.domain} is ${state}`,
        problem: { errorCode: state, text: `domain ${this.config.domain} is ${state}, not active` },
        advice: `finish verifying ${this.config.domain} in Mailgun (publish its DNS records, then Verify) before sending`,
      };
    }
    if (/^sandbox[0-9a-f]*\.mailgun\.org$/i.test(this.config.domain)) {
      return {
        detail: `domain ${this.config.domain} is ${state ?? 'known'}`,
        warning: `${this.config.domain} is a Mailgun sandbox domain: it delivers only to the authorized recipients listed for it — add and verify your own sending domain, then set domain = to it`,
      };
    }
    return { detail: `domain ${this.config.domain} is ${state ?? 'known'}` };
  }

  protected messageIdOf(response: HttpResponse): string | undefined {
    return str(field(parseJson(response.text), 'id'))?.replace(/^<|>$/g, '');
  }

  protected errorOf(response: HttpResponse): ProviderError {
    return jsonError(response, undefined, 'message');
  }
}
