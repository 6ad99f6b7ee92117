/**
 * Mailjet Send API v3.1 (POST /v3.1/send, HTTP Basic api_key:secret_key). No raw MIME over REST:
 * the message is converted, one message per call, up to 50 recipients. Mailjet returns a message
 * id per recipient, recorded per recipient. Mailjet forbids many headers; a message carrying one is
 * unsupported, except Message-ID, User-Agent and X-Mailer, which Mailjet always sets itself
 * (documented in docs/providers.md). No idempotency key (CustomID carries the queue id for
 * correlation only): a retry after a timeout whose request did reach Mailjet sends twice.
 */
import type { MailjetUpstreamConfig } from '../config/types.js';
import { bodies, convertedCalls, headerObject, RestUpstream, type Prepared, type ProviderError } from './rest/base.js';
import type { CheckVerdict, CredentialCheck } from './rest/check.js';
import type { MailAddress, ProviderRules } from './rest/convert.js';
import { apiUrl, basicAuth, field, parseJson, parseJsonLossless, str, type HttpResponse } from './rest/http.js';
import type { OutboundMessage } from './types.js';

const RULES: ProviderRules = {
  provider: 'Mailjet',
  reserved: new Set([
    'sender',
    'domainkey-status',
    'received-spf',
    'x-mailjet-prio',
    'x-mailjet-debug',
    'x-mj-customid',
    'x-mj-eventpayload',
    'x-mj-vars',
    'x-mj-templateerrordeliver',
    'x-mj-templateerrorreporting',
    'x-mj-templatelanguage',
    'x-mailjet-trackopen',
    'x-mailjet-trackclick',
    'x-mj-templateid',
    'x-mj-workflowid',
    'x-feedback-id',
    'x-mailjet-segmentation',
    'list-id',
    'x-mj-mid',
    'x-mj-errormessage',
    'x-csa-complaints',
    'x-mailjet-campaign',
    'x-mj-statisticscontactslistid',
  ]),
  regenerated: new Set(['message-id', 'user-agent', 'x-mailer']),
  inlineImages: true,
};

const contact = (a: MailAddress) => (a.name ? { Email: a.address, Name: a.name } : { Email: a.address });

export class MailjetUpstream extends RestUpstream<MailjetUpstreamConfig> {
  protected prepare(message: OutboundMessage): Promise<Prepared> {
    return convertedCalls(message, RULES, 50, (m, split) => {
      if (m.replyTo.length > 1) return { unsupported: 'Mailjet takes a single Reply-To address; the message has ' + m.replyTo.length };
      const custom = headerObject(m.headers, RULES.provider);
      if ('unsupported' in custom) return custom;
      const { text, html } = bodies(m);
      const out: Record<string, unknown> = { From: contact(m.from), To: split.to.map(contact), Subject: m.subject, CustomID: message.id };
      if (split.cc.length) out.Cc = split.cc.map(contact);
      if (split.bcc.length) out.Bcc = split.bcc.map(contact);
      if (m.replyTo.length === 1) out.ReplyTo = contact(m.replyTo[0]!);
      if (text !== undefined) out.TextPart = text;
      if (html !== undefined) out.HTMLPart = html;
      if (Object.keys(custom.headers).length) out.Headers = custom.headers;
      const files = m.attachments.filter((a) => !a.inline);
      const inline = m.attachments.filter((a) => a.inline);
      if (files.length) out.Attachments = files.map((a) => ({ ContentType: a.contentType, Filename: a.filename, Base64Content: a.content.toString('base64') }));
      if (inline.length) {
        out.InlinedAttachments = inline.map((a) => ({ ContentType: a.contentType, Filename: a.filename, ContentID: a.contentId, Base64Content: a.content.toString('base64') }));
      }
      return {
        method: 'POST',
        url: apiUrl(this.config.endpoint, '/v3.1/send'),
        headers: { ...this.auth(), 'content-type': 'application/json' },
        body: JSON.stringify({ Messages: [out] }),
      };
    });
  }

  private auth(): Record<string, string> {
    return { authorization: basicAuth(this.config.apiKey, this.config.secretKey) };
  }

  /** GET /v3/REST/sender: the registered sender addresses and whether each is active (validated). */
  protected credentialCheck(): CredentialCheck {
    return {
      request: { method: 'GET', url: apiUrl(this.config.endpoint, '/v3/REST/sender'), headers: this.auth() },
      credentials:
        'Mailjet refused api_key + secret_key (or their _file keys): both come from Account settings → API Key Management and must belong together; ' +
        'an account on the US architecture needs endpoint = "https://api.us.mailjet.com"',
    };
  }

  protected override interpretCheck(response: HttpResponse, sender?: string): CheckVerdict {
    const verdict = super.interpretCheck(response);
    if (verdict.problem) return verdict;
    const senders = field(parseJson(response.text), 'Data');
    if (!Array.isArray(senders)) return verdict;
    const active = (senders as unknown[]).filter((s) => str(field(s, 'Status')) === 'Active').map((s) => str(field(s, 'Email')) ?? '?');
    // A sender entry is an address or a whole domain ("*@example.org").
    const covers = (entry: string) => entry.toLowerCase() === sender?.toLowerCase() || (entry.startsWith('*@') && sender?.toLowerCase().endsWith(entry.slice(1).toLowerCase()));
    if (sender && active.length > 0 && !active.some(covers)) {
      const listed = (senders as unknown[]).find((s) => covers(str(field(s, 'Email')) ?? ''));
      return {
        detail: `active senders: ${active.join(', ')}`,
        problem: { errorCode: 'sender-not-active', text: `<${sender}> is ${listed ? `a sender with status ${str(field(listed, 'Status')) ?? '?'}` : 'not a validated sender'} on this account` },
        advice: `validate <${sender}> or its domain in Mailjet (Account settings → Senders & domains), or send from an active sender`,
      };
    }
    if (active.length === 0) {
      return {
        detail: 'no active sender',
        problem: { errorCode: 'no-active-sender', text: 'no sender address or domain is validated (Active) on this account' },
        advice: 'validate the sender address or domain in Mailjet (Account settings → Senders & domains) before sending',
      };
    }
    return { detail: `active senders: ${active.join(', ')}` };
  }

  /** MessageID is a 64-bit integer: parsed losslessly (as its digits), never rounded. */
  private firstMessage(response: HttpResponse): unknown {
    const messages = field(parseJsonLossless(response.text), 'Messages');
    return Array.isArray(messages) ? (messages[0] as unknown) : undefined;
  }

  protected messageIdOf(response: HttpResponse): string | undefined {
    return this.recipientIdsOf(response).values().next().value;
  }

  protected override recipientIdsOf(response: HttpResponse): Map<string, string> {
    const ids = new Map<string, string>();
    const first = this.firstMessage(response);
    for (const list of ['To', 'Cc', 'Bcc']) {
      const entries = field(first, list);
      if (!Array.isArray(entries)) continue;
      for (const entry of entries as unknown[]) {
        const email = str(field(entry, 'Email'));
        const id = str(field(entry, 'MessageID')) ?? str(field(entry, 'MessageUUID'));
        if (email && id) ids.set(email.toLowerCase(), id);
      }
    }
    return ids;
  }

  protected override bodyError(response: HttpResponse): ProviderError | undefined {
    const first = this.firstMessage(response);
    return str(field(first, 'Status')) === 'error' ? this.messageError(first) : undefined;
  }

  private messageError(message: unknown): ProviderError {
    const errors = field(message, 'Errors');
    const first = Array.isArray(errors) ? (errors[0] as unknown) : undefined;
    const related = field(first, 'ErrorRelatedTo');
    return {
      errorCode: str(field(first, 'ErrorCode')),
      text: `${str(field(first, 'ErrorMessage')) ?? 'error'}${Array.isArray(related) && related.length ? ` (${related.join(', ')})` : ''}`,
    };
  }

  protected errorOf(response: HttpResponse): ProviderError {
    const json = parseJson(response.text);
    const first = this.firstMessage(response);
    if (first !== undefined) return this.messageError(first);
    if (json !== undefined) return { errorCode: str(field(json, 'ErrorCode')), text: str(field(json, 'ErrorMessage')) ?? response.text.slice(0, 500) };
    return { text: response.text.slice(0, 500) };
  }
}
