/**
 * Postmark (POST /email, X-Postmark-Server-Token). No raw MIME: the message is converted.
 * 50 recipients (To+Cc+Bcc) per message; errors are 422 with a numeric ErrorCode. No idempotency
 * key: a retry after a timeout whose request did reach Postmark sends twice. MessageStream is
 * `message_stream` (default "outbound"). A 200 with ErrorCode 0 can still refuse some recipients:
 * "Message OK, but will not deliver to these inactive addresses: …" (suppressed after a hard
 * bounce, complaint or manual suppression): those bounce with that reason, the rest are delivered.
 */
import type { ApiKeyUpstreamConfig } from '../config/types.js';
import { bodies, convertedCalls, jsonError, namedIn, RestUpstream, type Prepared, type ProviderCall, type ProviderError } from './rest/base.js';
import type { CheckVerdict, CredentialCheck } from './rest/check.js';
import { formatAddress, type ProviderRules } from './rest/convert.js';
import { apiUrl, field, parseJson, str, type HttpResponse } from './rest/http.js';
import type { OutboundMessage } from './types.js';

const RULES: ProviderRules = { provider: 'Postmark', reserved: new Set(), regenerated: new Set(), inlineImages: true };

export class PostmarkUpstream extends RestUpstream<ApiKeyUpstreamConfig> {
  protected prepare(message: OutboundMessage): Promise<Prepared> {
    return convertedCalls(message, RULES, 50, (m, split) => {
      const { text, html } = bodies(m);
      const body: Record<string, unknown> = {
        From: formatAddress(m.from),
        To: split.to.map(formatAddress).join(', '),
        Subject: m.subject,
        MessageStream: this.config.messageStream ?? 'outbound',
      };
      if (split.cc.length) body.Cc = split.cc.map(formatAddress).join(', ');
      if (split.bcc.length) body.Bcc = split.bcc.map(formatAddress).join(', ');
      if (m.replyTo.length) body.ReplyTo = m.replyTo.map(formatAddress).join(', ');
      if (text !== undefined) body.TextBody = text;
      if (html !== undefined) body.HtmlBody = html;
      if (m.headers.length) body.Headers = m.headers.map((h) => ({ Name: h.name, Value: h.value }));
      if (m.attachments.length) {
        body.Attachments = m.attachments.map((a) => ({
          Name: a.filename,
          Content: a.content.toString('base64'),
          ContentType: a.contentType,
          ...(a.contentId ? { ContentID: `cid:${a.contentId}` } : {}),
        }));
      }
      return {
        method: 'POST',
        url: apiUrl(this.config.endpoint, '/email'),
        headers: { ...this.auth(), 'content-type': 'application/json' },
        body: JSON.stringify(body),
      };
    });
  }

  private auth(): Record<string, string> {
    return { 'x-postmark-server-token': this.config.apiKey, accept: 'application/json' };
  }

  /** GET /server: the configuration of the server the token belongs to. */
  protected credentialCheck(): CredentialCheck {
    return {
      request: { method: 'GET', url: apiUrl(this.config.endpoint, '/server'), headers: this.auth() },
      credentials: "Postmark refused api_key (or api_key_file): it must be a Server API token (the server's API Tokens tab), not the Account token",
    };
  }

  protected override interpretCheck(response: HttpResponse): CheckVerdict {
    const verdict = super.interpretCheck(response);
    const name = str(field(parseJson(response.text), 'Name'));
    return verdict.problem || name === undefined ? verdict : { detail: `server "${name}"` };
  }

  protected messageIdOf(response: HttpResponse): string | undefined {
    return str(field(parseJson(response.text), 'MessageID'));
  }

  protected override refusedRecipientsOf(response: HttpResponse, call: ProviderCall): Map<string, ProviderError> | undefined {
    const message = str(field(parseJson(response.text), 'Message')) ?? '';
    const list = /inactive addresses:\s*([^]*?)(?:\.\s*Inactive recipients|\.?\s*$)/i.exec(message)?.[1];
    if (!list) return undefined;
    const refused = new Map<string, ProviderError>();
    for (const recipient of namedIn(list, call.recipients)) refused.set(recipient.toLowerCase(), { errorCode: '406', text: message });
    return refused;
  }

  protected override bodyError(response: HttpResponse): ProviderError | undefined {
    const json = parseJson(response.text);
    const code = field(json, 'ErrorCode');
    return typeof code === 'number' && code !== 0 ? { errorCode: String(code), text: str(field(json, 'Message')) ?? '' } : undefined;
  }

  protected errorOf(response: HttpResponse): ProviderError {
    return jsonError(response, 'ErrorCode', 'Message');
  }
}
