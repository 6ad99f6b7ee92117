/**
 * Google Workspace, with a service account and domain-wide delegation (the JWT-bearer grant).
 *
 * - Token: POST https://oauth2.googleapis.com/token, grant_type
 *   urn:ietf:params:oauth:grant-type:jwt-bearer, assertion = an RS256 JWT {iss: client_email,
 *   sub: the mailbox impersonated, scope, aud: the token URI, iat, exp ≤ iat + 3600}; one token
 *   per mailbox. Scope https://www.googleapis.com/auth/gmail.send (via = "api") or
 *   https://mail.google.com/ (via = "smtp").
 *   https://developers.google.com/identity/protocols/oauth2/service-account
 * - via = "api": POST /upload/gmail/v1/users/{mailbox}/messages/send?uploadType=media with
 *   Content-Type message/rfc822 and the raw message (up to 35 MB); 200 {"id", "threadId", ...}.
 *   Gmail takes the recipients from To/Cc/Bcc and removes Bcc.
 *   https://developers.google.com/gmail/api/reference/rest/v1/users.messages/send,
 *   https://developers.google.com/gmail/api/guides/uploads
 * - via = "smtp": smtp.gmail.com:587 STARTTLS, SASL XOAUTH2.
 *   https://developers.google.com/gmail/imap/xoauth2-protocol
 */
import type { GmailUpstreamConfig } from '../config/types.js';
import { apiUrl, field, parseJson, str, type HttpRequest, type HttpResponse } from './rest/http.js';
import { signJwt } from './oauth/jwt.js';
import { requestToken, tokenResult, type AccessToken, type TokenError } from './oauth/token.js';
import { OAuthUpstream, type ApiError } from './oauth/upstream.js';
import type { CheckStep } from './types.js';

export const GMAIL_SEND_SCOPE = 'https://www.googleapis.com/auth/gmail.send';
export const GMAIL_SMTP_SCOPE = 'https://mail.google.com/';
/** users.messages.send: "Maximum file size: 35MB". */
export const GMAIL_MAX_MESSAGE = 35 * 1024 * 1024;

export class GmailUpstream extends OAuthUpstream<GmailUpstreamConfig> {
  protected readonly apiName = 'the Gmail API';
  protected readonly scopes = { api: GMAIL_SEND_SCOPE, smtp: GMAIL_SMTP_SCOPE };

  protected tokenKey(mailbox: string): string {
    return mailbox.toLowerCase();
  }

  protected acquireToken(mailbox: string): Promise<AccessToken> {
    const c = this.config;
    const now = Math.floor(Date.now() / 1000);
    const assertion = signJwt(
      { alg: 'RS256', typ: 'JWT', ...(c.privateKeyId ? { kid: c.privateKeyId } : {}) },
      { iss: c.clientEmail, sub: mailbox, scope: this.scope, aud: c.tokenEndpoint, iat: now, exp: now + 3600 },
      c.privateKey,
    );
    return requestToken(c.tokenEndpoint, { grant_type: 'urn:ietf:params:oauth:grant-type:jwt-bearer', assertion }, Math.min(c.timeout, 30_000), (e) =>
      tokenResult('gmail', e, this.tokenFix(e, mailbox)),
    );
  }

  private delegationFix(): string {
    return `configure domain-wide delegation: admin.google.com → Security → Access and data control → API controls → Manage Domain Wide Delegation → Add new: client ID ${this.config.clientId ?? `(the "client_id" of ${this.config.clientEmail})`}, OAuth scopes ${this.scope}`;
  }

  /** The admin step for a token-endpoint error. */
  private tokenFix(e: TokenError, mailbox: string): string | undefined {
    if (e.error === 'unauthorized_client') return this.delegationFix();
    if (e.error === 'invalid_grant' && /invalid email|user id|not found/i.test(e.description)) {
      return `${mailbox} is not a user of the Workspace: set send_as (or mailbox_domains) to an existing user's address`;
    }
    if (e.error === 'invalid_grant' && /iat|exp|timeframe|clock/i.test(e.description)) return "this machine's clock is off by minutes: synchronise it (NTP)";
    if (e.error === 'invalid_grant' && /signature/i.test(e.description))
      return `the key in service_account_file was deleted or disabled: create a new key for ${this.config.clientEmail} (IAM → Service accounts → Keys) and replace the file`;
    if (e.error === 'invalid_client' || e.error === 'disabled_client')
      return `the service account ${this.config.clientEmail} is deleted or disabled: check it in the Google Cloud console (IAM → Service accounts)`;
    if (e.error === 'access_denied') return this.delegationFix();
    return undefined;
  }

  protected apiRequest(mailbox: string, raw: Buffer): HttpRequest | { unsupported: string } {
    if (raw.length > GMAIL_MAX_MESSAGE) return { unsupported: `the message is ${raw.length} bytes, over the Gmail API's 35 MB limit` };
    return {
      method: 'POST',
      url: apiUrl(this.config.endpoint, `/upload/gmail/v1/users/${encodeURIComponent(mailbox)}/messages/send?uploadType=media`),
      headers: { 'content-type': 'message/rfc822', accept: 'application/json' },
      body: raw,
    };
  }

  /** Google API errors: {"error": {"code": 400, "message": "...", "errors": [{"reason": "..."}], "status": "..."}}. */
  protected apiError(response: HttpResponse): ApiError {
    const error = field(parseJson(response.text), 'error');
    const errors = field(error, 'errors');
    const reason = Array.isArray(errors) ? str(field(errors[0], 'reason')) : undefined;
    return { code: reason ?? str(field(error, 'status')), text: str(field(error, 'message')) ?? response.text.slice(0, 300) };
  }

  protected messageIdOf(response: HttpResponse): string | undefined {
    return str(field(parseJson(response.text), 'id'));
  }

  protected fixFor(status: number, code: string | undefined, text: string, mailbox: string): string | undefined {
    if (/rate|quota/i.test(code ?? '')) return undefined;
    if (status === 403 || (status === 400 && code === 'failedPrecondition')) {
      return /delegation denied/i.test(text)
        ? `${mailbox} may not send as the message's From address: make the From header ${mailbox}, or add the address as a "Send mail as" alias of ${mailbox} in Gmail settings`
        : this.delegationFix();
    }
    if (status === 401) return `Google refused the token: ${this.delegationFix()}`;
    return undefined;
  }

  protected grantedOf(): string {
    return `scope: ${this.scope} (delegation for this mailbox works)`;
  }

  protected async checkAfterToken(mailbox: string, token: AccessToken): Promise<CheckStep[]> {
    return this.viaSmtp ? this.checkSmtpPath(mailbox, token, this.delegationFix()) : [];
  }
}
