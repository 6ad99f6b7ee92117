/**
 * Brevo transactional email (POST /v3/smtp/email, header api-key). No raw MIME: the message is
 * converted. Brevo's API has no Content-ID for attachments (inline images must be hosted URLs), an
 * allow-list of attachment extensions, and no standard headers: a message needing any of those is
 * unsupported (so it can go to a raw-MIME upstream). Message-ID, User-Agent and X-Mailer are set by
 * Brevo itself. The Idempotency-Key header (passed in `headers`, as Brevo's reference shows) is
 * derived from the queue id; Brevo does not document its duplicate window.
 */
import type { ApiKeyUpstreamConfig } from '../config/types.js';
import { bodies, convertedCalls, headerObject, idempotencyKey, jsonError, RestUpstream, type Prepared, type ProviderError } from './rest/base.js';
import type { CheckVerdict, CredentialCheck } from './rest/check.js';
import { splitAddresses, type MailAddress, type ProviderRules } from './rest/convert.js';
import { apiUrl, field, parseJson, str, type HttpResponse } from './rest/http.js';
import type { OutboundMessage } from './types.js';

/** From Brevo's sendTransacEmail reference. */
export const BREVO_EXTENSIONS = new Set(
  ('xlsx xls ods docx docm doc csv pdf txt gif jpg jpeg png tif tiff rtf bmp cgm css shtml html htm zip xml ppt pptx tar ez ics mobi msg pub ' +
    'eps odt mp3 m4a m4v wma ogg flac wav aif aifc aiff mp4 mov avi mkv mpeg mpg wmv pkpass xlsm').split(' '),
);

const RULES: ProviderRules = {
  provider: 'Brevo',
  reserved: new Set(['in-reply-to', 'references', 'list-unsubscribe', 'list-unsubscribe-post', 'list-id', 'sender', 'idempotency-key']),
  regenerated: new Set(['message-id', 'user-agent', 'x-mailer']),
  inlineImages: false,
  attachmentExtensions: BREVO_EXTENSIONS,
  requiresSubject: true,
};

const person = (a: MailAddress) => (a.name ? { email: a.address, name: a.name } : { email: a.address });

export class BrevoUpstream extends RestUpstream<ApiKeyUpstreamConfig> {
  protected prepare(message: OutboundMessage): Promise<Prepared> {
    return convertedCalls(message, RULES, 99, (m, split) => {
      if (m.replyTo.length > 1) return { unsupported: 'Brevo takes a single Reply-To address; the message has ' + m.replyTo.length };
      const custom = headerObject(m.headers, RULES.provider);
      if ('unsupported' in custom) return custom;
      const { text, html } = bodies(m);
      const body: Record<string, unknown> = { sender: person(m.from), to: split.to.map(person), subject: m.subject };
      if (split.cc.length) body.cc = split.cc.map(person);
      if (split.bcc.length) body.bcc = split.bcc.map(person);
      if (m.replyTo.length === 1) body.replyTo = person(m.replyTo[0]!);
      if (html !== undefined) body.htmlContent = html;
      if (text !== undefined) body.textContent = text;
      if (m.attachments.length) body.attachment = m.attachments.map((a) => ({ content: a.content.toString('base64'), name: a.filename }));
      body.headers = { ...custom.headers, 'Idempotency-Key': idempotencyKey(message.id, splitAddresses(split)) };
      return {
        method: 'POST',
        url: apiUrl(this.config.endpoint, '/v3/smtp/email'),
        headers: { ...this.auth(), 'content-type': 'application/json' },
        body: JSON.stringify(body),
      };
    });
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
