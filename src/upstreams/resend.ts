/**
 * Resend (POST /emails, Bearer API key). No raw MIME: the message is converted. Up to 50
 * recipients per request; one when webhooks or polling are configured (webhook_signing_key, poll), since Resend's
 * events do not say which recipient of a several-recipient email bounced. Every request carries an Idempotency-Key derived from the queue id and
 * the recipient set, so a retry after a crash or timeout within Resend's 24-hour window cannot send
 * twice (the request body is rebuilt byte-identically from the spooled message).
 */
import type { ApiKeyUpstreamConfig } from '../config/types.js';
import { bodies, convertedCalls, headerObject, idempotencyKey, jsonError, RestUpstream, type Prepared, type ProviderError } from './rest/base.js';
import type { CheckVerdict, CredentialCheck } from './rest/check.js';
import { formatAddress, splitAddresses, type ProviderRules } from './rest/convert.js';
import { apiUrl, field, parseJson, str, type HttpResponse } from './rest/http.js';
import type { OutboundMessage } from './types.js';

const RULES: ProviderRules = { provider: 'Resend', reserved: new Set(), regenerated: new Set(), inlineImages: true, requiresSubject: true };

export class ResendUpstream extends RestUpstream<ApiKeyUpstreamConfig> {
  protected prepare(message: OutboundMessage): Promise<Prepared> {
    // Resend's events name the email, not the recipient: with webhooks or polling configured each
    // envelope recipient gets its own request (its own email id), so a bounce can be attributed to it.
    return convertedCalls(message, RULES, this.config.webhookSigningKey || this.config.poll ? 1 : 50, (m, split) => {
      const custom = headerObject(m.headers, RULES.provider);
      if ('unsupported' in custom) return custom;
      const headers = custom.headers;
      const { text, html } = bodies(m);
      const body: Record<string, unknown> = { from: formatAddress(m.from), to: split.to.map(formatAddress), subject: m.subject };
      if (split.cc.length) body.cc = split.cc.map(formatAddress);
      if (split.bcc.length) body.bcc = split.bcc.map(formatAddress);
      if (m.replyTo.length) body.reply_to = m.replyTo.map(formatAddress);
      if (text !== undefined) body.text = text;
      if (html !== undefined) body.html = html;
      if (Object.keys(headers).length) body.headers = headers;
      if (m.attachments.length) {
        body.attachments = m.attachments.map((a) => ({
          filename: a.filename,
          content: a.content.toString('base64'),
          content_type: a.contentType,
          ...(a.contentId ? { content_id: a.contentId } : {}),
        }));
      }
      return {
        method: 'POST',
        url: apiUrl(this.config.endpoint, '/emails'),
        headers: {
          ...this.auth(),
          'content-type': 'application/json',
          'idempotency-key': idempotencyKey(message.id, splitAddresses(split)),
        },
        body: JSON.stringify(body),
      };
    });
  }

  private auth(): Record<string, string> {
    return { authorization: `Bearer ${this.config.apiKey}` };
  }

  /** GET /domains lists the sending domains and their verification status. */
  protected credentialCheck(): CredentialCheck {
    return {
      request: { method: 'GET', url: apiUrl(this.config.endpoint, '/domains'), headers: this.auth() },
      credentials: 'Resend refused api_key (or api_key_file): create a key under API Keys (a "Sending access" key is enough to send)',
    };
  }

  protected override interpretCheck(response: HttpResponse, sender?: string): CheckVerdict {
    const verdict = super.interpretCheck(response);
    // A "Sending access" key is valid but may only send: Resend answers 401 restricted_api_key here.
    if (verdict.problem?.errorCode === 'restricted_api_key') return { detail: 'a send-only API key (it cannot list domains)' };
    if (verdict.problem) return verdict;
    const domains = field(parseJson(response.text), 'data');
    if (!Array.isArray(domains)) return verdict;
    const all = (domains as unknown[]).map((d) => ({ name: (str(field(d, 'name')) ?? '?').toLowerCase(), status: str(field(d, 'status')) ?? '?' }));
    const detail = all.length ? `domains: ${all.map((d) => `${d.name} (${d.status})`).join(', ')}` : 'no sending domain yet: only onboarding@resend.dev to your own address will work';
    const senderDomain = sender?.split('@').pop()?.toLowerCase();
    const own = senderDomain ? all.find((d) => d.name === senderDomain) : undefined;
    if (senderDomain && own?.status !== 'verified') {
      return {
        detail,
        problem: { errorCode: 'domain_not_verified', text: `${senderDomain} is ${own ? own.status : 'not a sending domain'} on this account, so mail from <${sender}> is refused` },
        advice: `add ${senderDomain} under Domains in Resend and publish its DNS records until it shows "verified" (or send from a verified domain)`,
      };
    }
    const pending = all.filter((d) => d.status !== 'verified');
    if (pending.length)
      return { detail, warning: `not verified yet: ${pending.map((d) => d.name).join(', ')} — mail from these domains is refused until their DNS records are published and verified in Resend` };
    return { detail };
  }

  protected messageIdOf(response: HttpResponse): string | undefined {
    return str(field(parseJson(response.text), 'id'));
  }

  protected errorOf(response: HttpResponse): ProviderError {
    return jsonError(response, 'name', 'message');
  }

  /** Resend's documented limit is 2 requests/s per team (the default rate_limit); 429 carries retry-after and ratelimit-reset (seconds). */
  protected override readonly resetHeader = { name: 'ratelimit-reset', form: 'delta' as const };
}
