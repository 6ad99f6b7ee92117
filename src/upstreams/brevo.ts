/**
 * Brevo transactional email (POST /v3/smtp/email, header api-key). No raw MIME: the message is
 * converted. Brevo's API has no Content-ID for attachments (inline images must be hosted URLs:
 * `unsupported = "degrade"` sends them as regular attachments), an allow-list of attachment
 * extensions, and no standard headers: a message needing any of those is unsupported (so it can go
 * to a raw-MIME upstream). Message-ID, User-Agent and X-Mailer are set by Brevo itself.
 *
 * What Brevo's API does not do for us (developers.brevo.com sendTransacEmail; anymail's notes):
 * htmlContent is required without a template, so text-only mail also goes as escaped <pre> HTML;
 * display names over 70 characters are refused and non-ASCII names with specials are dropped, so
 * names are cleaned; non-ASCII attachment names arrive garbled, so they are transliterated.
 * Idempotency: `headers.idempotencyKey`, a UUID derived from the queue id and recipient group; a
 * repeat within Brevo's window is refused with duplicate_parameter and not sent — that answer means
 * an earlier attempt was accepted, recorded as delivered (inferred), never bounced.
 */
import type { ApiKeyUpstreamConfig } from '../config/types.js';
import { convertedCalls, headerObject, jsonError, RestUpstream, uuidKey, type Prepared, type ProviderError } from './rest/base.js';
import type { CheckVerdict, CredentialCheck } from './rest/check.js';
import { splitAddresses, type MailAddress, type ProviderRules } from './rest/convert.js';
import { apiUrl, field, parseJson, str, type HttpResponse } from './rest/http.js';
import type { OutboundMessage } from './types.js';

/** From Brevo's sendTransacEmail reference. */
export const BREVO_EXTENSIONS = new Set(
  (
    'xlsx xls ods docx docm doc csv pdf txt gif jpg jpeg png tif tiff rtf bmp cgm css shtml html htm zip xml ppt pptx tar ez ics mobi msg pub ' +
    'eps odt mp3 m4a m4v wma ogg flac wav aif aifc aiff mp4 mov avi mkv mpeg mpg wmv pkpass xlsm'
  ).split(' '),
);

const RULES: ProviderRules = {
  provider: 'Brevo',
  reserved: new Set(['in-reply-to', 'references', 'list-unsubscribe', 'list-unsubscribe-post', 'list-id', 'sender', 'idempotency-key', 'idempotencykey']),
  regenerated: new Set(['message-id', 'user-agent', 'x-mailer']),
  inlineImages: false,
  attachmentExtensions: BREVO_EXTENSIONS,
  requiresSubject: true,
};

/** Brevo refuses names over 70 characters and drops non-ASCII names that contain specials. */
export function brevoName(name: string): string {
  let out = name;
  if (/[^\x20-\x7e]/.test(out))
    out = out
      .replace(/[,;:"<>()[\]@\\]+/g, ' ')
      .replace(/\s+/g, ' ')
      .trim();
  const chars = [...out];
  return chars.length > 70 ? chars.slice(0, 69).join('').trimEnd() + '…' : out;
}

const person = (a: MailAddress) => {
  const name = a.name ? brevoName(a.name) : '';
  return name ? { email: a.address, name } : { email: a.address };
};

/** Brevo garbles non-ASCII attachment names: keep them readable as ASCII (accents dropped). */
export function asciiFilename(name: string): string {
  return name
    .normalize('NFKD')
    .replace(/[\u0300-\u036f]/g, '')
    .replace(/[^\x20-\x7e]/g, '_');
}

const escapeHtml = (text: string) => text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

export class BrevoUpstream extends RestUpstream<ApiKeyUpstreamConfig> {
  protected prepare(message: OutboundMessage): Promise<Prepared> {
    return convertedCalls(
      message,
      RULES,
      99,
      (m, split) => {
        if (m.replyTo.length > 1) return { unsupported: 'Brevo takes a single Reply-To address; the message has ' + m.replyTo.length };
        const custom = headerObject(m.headers, RULES.provider);
        if ('unsupported' in custom) return custom;
        const body: Record<string, unknown> = { sender: person(m.from), to: split.to.map(person), subject: m.subject };
        if (split.cc.length) body.cc = split.cc.map(person);
        if (split.bcc.length) body.bcc = split.bcc.map(person);
        if (m.replyTo.length === 1) body.replyTo = person(m.replyTo[0]!);
        // htmlContent is mandatory: plain text goes as preformatted, escaped HTML next to textContent.
        body.htmlContent = m.html ?? `<pre>${escapeHtml(m.text ?? '')}</pre>`;
        if (m.text !== undefined) body.textContent = m.text;
        if (m.attachments.length) body.attachment = m.attachments.map((a) => ({ content: a.content.toString('base64'), name: asciiFilename(a.filename) }));
        body.headers = { ...custom.headers, idempotencyKey: uuidKey(message.id, splitAddresses(split)) };
        return {
          method: 'POST',
          url: apiUrl(this.config.endpoint, '/v3/smtp/email'),
          headers: { ...this.auth(), 'content-type': 'application/json' },
          body: JSON.stringify(body),
        };
      },
      this.config.unsupported,
    );
  }

  protected override readonly resetHeader = { name: 'x-sib-ratelimit-reset', form: 'delta' as const };

  /** A repeated idempotency key is refused and not sent: the earlier attempt was accepted. */
  protected override acceptedEarlier(response: HttpResponse, error: ProviderError): string | undefined {
    if (response.status !== 400 || error.errorCode !== 'duplicate_parameter') return undefined;
    return `HTTP 400 duplicate_parameter (${error.text}): delivered by an earlier attempt — inferred from Brevo refusing the repeated idempotency key, nothing sent twice`;
  }

  private auth(): Record<string, string> {
    return { 'api-key': this.config.apiKey, accept: 'application/json' };
  }

  /** GET /v3/account: the account the key belongs to and its plan. */
  protected credentialCheck(): CredentialCheck {
    return {
      request: { method: 'GET', url: apiUrl(this.config.endpoint, '/v3/account'), headers: this.auth() },
      credentials:
        'Brevo refused api_key (or api_key_file): use an API v3 key (xkeysib-…), not the SMTP key (xsmtpsib-…); ' +
        'if the account restricts API access by IP, authorise this host under Security → Authorised IPs',
    };
  }

  protected override interpretCheck(response: HttpResponse): CheckVerdict {
    const verdict = super.interpretCheck(response);
    if (verdict.problem) return verdict;
    const json = parseJson(response.text);
    const plan = field(json, 'plan');
    const type = Array.isArray(plan) ? str(field(plan[0] as unknown, 'type')) : undefined;
    return { detail: `account ${str(field(json, 'email')) ?? '?'}${type ? `, plan ${type}` : ''}` };
  }

  protected messageIdOf(response: HttpResponse): string | undefined {
    return str(field(parseJson(response.text), 'messageId'))?.replace(/^<|>$/g, '');
  }

  protected errorOf(response: HttpResponse): ProviderError {
    return jsonError(response, 'code', 'message');
  }
}
