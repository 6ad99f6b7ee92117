/**
 * SparkPost Transmissions with raw RFC 822 content (POST /api/v1/transmissions,
 * Authorization: <API key>): `content.email_rfc822` carries the spooled message (made 7-bit by
 * delivery, see `wire`) and `recipients` are exactly the envelope recipients. JSON strings are
 * Unicode, so a signed message (never re-encoded) that is not valid UTF-8 is unsupported.
 *
 * SparkPost rewrites what it is given unless told not to (developers.sparkpost.com/api/transmissions,
 * "email_rfc822"): open and click tracking are on by default (turned off here, and the mail marked
 * transactional), and {{…}} substitution applies to the top-level headers and the first text and
 * html parts. `options.perform_substitutions = false` is documented only "when using an inline
 * template", not for email_rfc822, so it is not relied on: a message with "{{" is unsupported
 * (it goes to the next upstream, or bounces with the reason). A 200 may still reject recipients
 * (`rcpt_to_errors`, `total_rejected_recipients`) without saying which, so each recipient goes in a
 * transmission of its own when there is more than one. No idempotency key: a retry after a timeout
 * whose request did reach SparkPost sends twice.
 */
import { simpleParser } from 'mailparser';
import type { ApiKeyUpstreamConfig } from '../config/types.js';
import { outboundRaw, RestUpstream, type Prepared, type ProviderError } from './rest/base.js';
import type { CheckVerdict, CredentialCheck } from './rest/check.js';
import { apiUrl, field, parseJson, str, type HttpResponse } from './rest/http.js';
import type { OutboundMessage } from './types.js';

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** Where SparkPost would substitute "{{…}}": top-level headers and the (decoded) text and html bodies. */
export async function substitutionHazard(rfc822: string): Promise<string | undefined> {
  const headerEnd = rfc822.search(/\r?\n\r?\n/);
  if (rfc822.slice(0, headerEnd < 0 ? undefined : headerEnd).includes('{{')) return 'a header';
  if (rfc822.includes('{{')) return 'the body';
  // Quoted-printable or base64 can hide the braces from a look at the raw text.
  if (!/content-transfer-encoding:\s*(quoted-printable|base64)/i.test(rfc822)) return undefined;
  const parsed = await simpleParser(rfc822, { skipImageLinks: true, skipHtmlToText: true, skipTextToHtml: true, skipTextLinks: true });
  return `${parsed.text ?? ''}${parsed.html || ''}`.includes('{{') ? 'the body' : undefined;
}

export class SparkpostUpstream extends RestUpstream<ApiKeyUpstreamConfig> {
  /** email_rfc822 is a JSON string: 8-bit parts are made 7-bit before (signed mail excepted). */
  readonly wire = { eightBit: false };

  protected async prepare(message: OutboundMessage): Promise<Prepared> {
    let rfc822: string;
    try {
      rfc822 = utf8.decode(await outboundRaw(message));
    } catch {
      return { unsupported: "the message contains 8-bit bytes that are not UTF-8, which SparkPost's JSON email_rfc822 cannot carry unchanged" };
    }
    const hazard = await substitutionHazard(rfc822);
    if (hazard) return { unsupported: `"{{" in ${hazard}: SparkPost would treat it as template substitution and change the message` };
    // One recipient per transmission: SparkPost's partial rejections do not name the address.
    const calls = message.recipients.map((recipient) => ({
      recipients: [recipient],
      request: {
        method: 'POST' as const,
        url: apiUrl(this.config.endpoint, '/api/v1/transmissions'),
        headers: { ...this.auth(), 'content-type': 'application/json' },
        body: JSON.stringify({
          options: { open_tracking: false, click_tracking: false, transactional: true },
          recipients: [{ address: { email: recipient } }],
          content: { email_rfc822: rfc822 },
        }),
      },
    }));
    return { calls };
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
      return {
        detail: `account ${status}`,
        problem: { errorCode: status, text: `the SparkPost account is ${status}` },
        advice: 'the account cannot send until SparkPost re-activates it: see the account page or contact their support',
      };
    }
    return { detail: `account ${status ?? 'found'}` };
  }

  protected messageIdOf(response: HttpResponse): string | undefined {
    return str(field(field(parseJson(response.text), 'results'), 'id'));
  }

  protected override bodyError(response: HttpResponse): ProviderError | undefined {
    const results = field(parseJson(response.text), 'results');
    const accepted = field(results, 'total_accepted_recipients');
    if (accepted !== 0) return undefined;
    const errors = field(results, 'rcpt_to_errors');
    const why = Array.isArray(errors)
      ? (errors as unknown[])
          .map((e) => [str(field(e, 'message')), str(field(e, 'description'))].filter(Boolean).join(': '))
          .filter(Boolean)
          .join('; ')
      : '';
    return { errorCode: 'rejected', text: `SparkPost rejected the recipient${why ? `: ${why}` : ` (${str(field(results, 'total_rejected_recipients')) ?? '?'} rejected)`}` };
  }

  protected errorOf(response: HttpResponse): ProviderError {
    const errors = field(parseJson(response.text), 'errors');
    const first = Array.isArray(errors) ? (errors[0] as unknown) : undefined;
    if (!first) return { text: response.text.slice(0, 500) };
    const description = str(field(first, 'description'));
    return { errorCode: str(field(first, 'code')), text: [str(field(first, 'message')), description].filter(Boolean).join(': ') };
  }
}
