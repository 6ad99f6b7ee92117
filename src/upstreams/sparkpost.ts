/**
 * SparkPost Transmissions with raw RFC 822 content (POST /api/v1/transmissions,
 * Authorization: <API key>): `content.email_rfc822` carries the spooled message (made 7-bit by
 * delivery, see `wire`) and `recipients` are exactly the envelope recipients. JSON strings are
 * Unicode, so a signed message (never re-encoded) that is not valid UTF-8 is unsupported.
 * No idempotency key: a retry after a timeout whose request did reach SparkPost sends twice.
 */
import type { ApiKeyUpstreamConfig } from '../config/types.js';
import { RestUpstream, type Prepared, type ProviderError } from './rest/base.js';
import type { CheckVerdict, CredentialCheck } from './rest/check.js';
import { apiUrl, field, parseJson, str, type HttpResponse } from './rest/http.js';
import type { OutboundMessage } from './types.js';

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

export class SparkpostUpstream extends RestUpstream<ApiKeyUpstreamConfig> {
  /** email_rfc822 is a JSON string: 8-bit parts are made 7-bit before (signed mail excepted). */
  readonly wire = { eightBit: false };

  protected async prepare(message: OutboundMessage): Promise<Prepared> {
    let rfc822: string;
    try {
      rfc822 = utf8.decode(message.raw);
    } catch {
      return { unsupported: 'the message contains 8-bit bytes that are not UTF-8, which SparkPost\'s JSON email_rfc822 cannot carry unchanged' };
    }
    const body = {
      recipients: message.recipients.map((email) => ({ address: { email } })),
      content: { email_rfc822: rfc822 },
    };
    return {
      calls: [
        {
          recipients: message.recipients,
          request: {
            method: 'POST',
            url: apiUrl(this.config.endpoint, '/api/v1/transmissions'),
            headers: { ...this.auth(), 'content-type': 'application/json' },
            body: JSON.stringify(body),
          },
        },
      ],
    };
  }

  private auth(): Record<string, string> {
    return { authorization: this.config.apiKey, accept: 'application/json' };
  }

  /** GET /api/v1/account: the account's status (active, suspended, ...). */
  protected credentialCheck(): CredentialCheck {
    return {
      request: { method: 'GET', url: apiUrl(this.config.endpoint, '/api/v1/account'), headers: this.auth() },
      credentials:
        'SparkPost refused api_key (or api_key_file): check the key; an EU account needs endpoint = "https://api.eu.sparkpost.com"; ' +
        'a key without the Account read permission is refused here even if it may send: add it, or prove sending with --send-to',
    };
  }

  protected override interpretCheck(response: HttpResponse): CheckVerdict {
    const verdict = super.interpretCheck(response);
    if (verdict.problem) return verdict;
    const status = str(field(field(parseJson(response.text), 'results'), 'status'));
    if (status !== undefined && status !== 'active') {
      return { detail: `account ${status}`, problem: { errorCode: status, text: `the SparkPost account is ${status}` }, advice: 'the account cannot send until SparkPost re-activates it: see the account page or contact their support' };
    }
    return { detail: `account ${status ?? 'found'}` };
  }

  protected messageIdOf(response: HttpResponse): string | undefined {
    return str(field(field(parseJson(response.text), 'results'), 'id'));
  }

  protected override bodyError(response: HttpResponse): ProviderError | undefined {
    const results = field(parseJson(response.text), 'results');
    const accepted = field(results, 'total_accepted_recipients');
    return accepted === 0 ? { errorCode: 'rejected', text: `SparkPost accepted none of the recipients (${str(field(results, 'total_rejected_recipients')) ?? '?'} rejected)` } : undefined;
  }

  protected errorOf(response: HttpResponse): ProviderError {
    const errors = field(parseJson(response.text), 'errors');
    const first = Array.isArray(errors) ? (errors[0] as unknown) : undefined;
    if (!first) return { text: response.text.slice(0, 500) };
    const description = str(field(first, 'description'));
    return { errorCode: str(field(first, 'code')), text: [str(field(first, 'message')), description].filter(Boolean).join(': ') };
  }
}
