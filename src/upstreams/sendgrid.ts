/**
 * SendGrid v3 Mail Send (POST /v3/mail/send, Bearer API key). No raw MIME: the message is
 * converted. Success is 202 with the id in the X-Message-Id header. Limits: 1000 recipients per
 * request. Reserved headers (x-sg-id, x-sg-eid) make a message unsupported. No idempotency key:
 * a retry after a timeout whose request did reach SendGrid sends twice. SendGrid accepts (202) a
 * recipient whose display name contains "," or ";" and then drops that mail (its limitations page:
 * names "cannot include ; or ,"), so those characters are taken out of every name.
 */
import type { ApiKeyUpstreamConfig } from '../config/types.js';
import { bodies, convertedCalls, headerObject, RestUpstream, type Prepared, type ProviderCall, type ProviderError } from './rest/base.js';
import type { CheckVerdict, CredentialCheck } from './rest/check.js';
import type { MailAddress, ProviderRules } from './rest/convert.js';
import { apiUrl, field, parseJson, str, type HttpResponse } from './rest/http.js';
import type { OutboundMessage } from './types.js';

const RULES: ProviderRules = {
  provider: 'SendGrid',
  reserved: new Set(['x-sg-id', 'x-sg-eid']),
  regenerated: new Set(),
  inlineImages: true,
  requiresSubject: true,
};

/** SendGrid silently drops mail to a name containing "," or ";". */
export function sendgridName(name: string): string {
  return name.replace(/[,;]+/g, ' ').replace(/\s+/g, ' ').trim();
}

const person = (a: MailAddress) => {
  const name = a.name ? sendgridName(a.name) : '';
  return name ? { email: a.address, name } : { email: a.address };
};

export class SendgridUpstream extends RestUpstream<ApiKeyUpstreamConfig> {
  protected prepare(message: OutboundMessage): Promise<Prepared> {
    return convertedCalls(message, RULES, 1000, (m, split) => {
      const custom = headerObject(m.headers, RULES.provider);
      if ('unsupported' in custom) return custom;
      const headers = custom.headers;
      const { text, html } = bodies(m);
      const personalization: Record<string, unknown> = { to: split.to.map(person) };
      if (split.cc.length) personalization.cc = split.cc.map(person);
      if (split.bcc.length) personalization.bcc = split.bcc.map(person);
      const body: Record<string, unknown> = {
        personalizations: [personalization],
        from: person(m.from),
        subject: m.subject,
        // text/plain must precede text/html
        content: [...(text !== undefined ? [{ type: 'text/plain', value: text }] : []), ...(html !== undefined ? [{ type: 'text/html', value: html }] : [])],
      };
      if (m.replyTo.length === 1) body.reply_to = person(m.replyTo[0]!);
      if (m.replyTo.length > 1) body.reply_to_list = m.replyTo.map(person);
      if (m.attachments.length) {
        body.attachments = m.attachments.map((a) => ({
          content: a.content.toString('base64'),
          filename: a.filename,
          type: a.contentType,
          disposition: a.inline ? 'inline' : 'attachment',
          ...(a.contentId ? { content_id: a.contentId } : {}),
        }));
      }
      if (Object.keys(headers).length) body.headers = headers;
      return {
        method: 'POST',
        url: apiUrl(this.config.endpoint, '/v3/mail/send'),
        headers: { ...this.auth(), 'content-type': 'application/json' },
        body: JSON.stringify(body),
      };
    });
  }

  private auth(): Record<string, string> {
    return { authorization: `Bearer ${this.config.apiKey}` };
  }

  /** GET /v3/scopes lists the key's own permissions: any key may call it, and it shows whether mail.send is granted. */
  protected credentialCheck(): CredentialCheck {
    return {
      request: { method: 'GET', url: apiUrl(this.config.endpoint, '/v3/scopes'), headers: this.auth() },
      credentials:
        'SendGrid refused api_key (or api_key_file): create a key with "Mail Send" access under Settings → API Keys; a key of an EU-regional subuser needs endpoint = "https://api.eu.sendgrid.com"',
    };
  }

  protected override interpretCheck(response: HttpResponse): CheckVerdict {
    const verdict = super.interpretCheck(response);
    if (verdict.problem) return verdict;
    const scopes = field(parseJson(response.text), 'scopes');
    if (!Array.isArray(scopes)) return { detail: 'credentials accepted' };
    if (!scopes.includes('mail.send')) {
      return {
        detail: `${scopes.length} scopes`,
        problem: { errorCode: 'mail.send', text: 'the API key lacks the mail.send permission' },
        advice: 'give the key "Mail Send" access (Settings → API Keys), or use a key that has it',
      };
    }
    return { detail: `key has mail.send (${scopes.length} scopes)` };
  }

  protected messageIdOf(response: HttpResponse): string | undefined {
    return response.headers.get('x-message-id') ?? undefined;
  }

  protected errorOf(response: HttpResponse): ProviderError {
    const errors = field(parseJson(response.text), 'errors');
    if (!Array.isArray(errors) || errors.length === 0) return { text: response.text.slice(0, 500) };
    const first = errors[0] as unknown;
    return {
      errorCode: str(field(first, 'field')) ?? undefined,
      text: errors
        .map((e: unknown) => str(field(e, 'message')) ?? '')
        .filter(Boolean)
        .join('; '),
    };
  }

  protected override readonly resetHeader = { name: 'x-ratelimit-reset', form: 'epoch' as const };

  /** SendGrid names the address by its position: personalizations.<i>.<to|cc|bcc>.<j>(.email). */
  protected override recipientsRejectedBy(error: ProviderError, status: number, call: ProviderCall): string[] | undefined {
    const at = /^personalizations\.(\d+)\.(to|cc|bcc)\.(\d+)/.exec(error.errorCode ?? '');
    if (at && (status === 400 || status === 422)) {
      const sent = parseJson(typeof call.request.body === 'string' ? call.request.body : '');
      const personalizations = field(sent, 'personalizations');
      const list = Array.isArray(personalizations) ? field(personalizations[Number(at[1])] as unknown, at[2]!) : undefined;
      const email = Array.isArray(list) ? str(field(list[Number(at[3])] as unknown, 'email')) : undefined;
      const named = email ? call.recipients.filter((r) => r.toLowerCase() === email.toLowerCase()) : [];
      if (named.length) return named;
    }
    return super.recipientsRejectedBy(error, status, call);
  }
}
