/**
 * Microsoft 365 / Exchange Online, with an app registration and the OAuth 2.0 client-credentials
 * grant (a client secret, or a certificate client assertion).
 *
 * - Token: POST {login}/{tenant}/oauth2/v2.0/token, scope https://graph.microsoft.com/.default
 *   (via = "graph") or https://outlook.office365.com/.default (via = "smtp").
 *   https://learn.microsoft.com/entra/identity-platform/v2-oauth2-client-creds-grant-flow
 *   Certificate assertion: JWT with alg PS256 and x5t#S256 (the certificate's SHA-256 thumbprint),
 *   aud = the token endpoint, iss = sub = client_id, jti, nbf, exp.
 *   https://learn.microsoft.com/entra/identity-platform/certificate-credentials
 * - via = "graph": POST /v1.0/users/{mailbox}/sendMail, Content-Type text/plain, body = the MIME
 *   message base64-encoded; 202 Accepted, empty body. Needs the application permission Mail.Send
 *   with admin consent. Graph caps a request at about 4 MB, so larger messages are refused here
 *   before sending and go to the next upstream (see README, Microsoft 365).
 *   https://learn.microsoft.com/graph/api/user-sendmail, https://learn.microsoft.com/graph/outlook-send-mime-message
 *   With MIME, saveToSentItems (a JSON-only parameter) cannot be given: Exchange keeps a copy in
 *   the mailbox's Sent Items.
 * - via = "smtp": smtp.office365.com:587 STARTTLS, SASL XOAUTH2; needs SMTP.SendAsApp and the app's
 *   service principal registered in Exchange Online with permission on the mailbox.
 *   https://learn.microsoft.com/exchange/client-developer/legacy-protocols/how-to-authenticate-an-imap-pop-smtp-application-by-using-oauth
 */
import { randomUUID, X509Certificate } from 'node:crypto';
import type { M365UpstreamConfig } from '../config/types.js';
import { apiUrl, field, httpRequest, HttpFailure, parseJson, str, type HttpRequest, type HttpResponse } from './rest/http.js';
import { peekClaims, signJwt, thumbprintS256 } from './oauth/jwt.js';
import { requestToken, TokenFailure, tokenResult, type AccessToken, type TokenError } from './oauth/token.js';
import { elapsed, OAuthUpstream, type ApiError } from './oauth/upstream.js';
import type { CheckStep } from './types.js';

export const GRAPH_SCOPE = 'https://graph.microsoft.com/.default';
export const EXCHANGE_SCOPE = 'https://outlook.office365.com/.default';
/** Graph's request size limit (about 4 MB), applied to the base64 body. */
export const GRAPH_MAX_REQUEST = 4 * 1024 * 1024;

export class M365Upstream extends OAuthUpstream<M365UpstreamConfig> {
  protected readonly apiName = 'Microsoft Graph';
  protected readonly scopes = { api: GRAPH_SCOPE, smtp: EXCHANGE_SCOPE };

  /** The Entra admin center page that holds this app's settings, for the fixes. */
  private get app(): string {
    return `Entra admin center → App registrations → the app with client ID ${this.config.clientId}`;
  }

  protected tokenKey(): string {
    return '';
  }

  protected async acquireToken(): Promise<AccessToken> {
    const c = this.config;
    const form: Record<string, string> = { client_id: c.clientId, scope: this.scope, grant_type: 'client_credentials' };
    if (c.clientSecret !== undefined) {
      form.client_secret = c.clientSecret;
    } else {
      const certificate = new X509Certificate(c.certificate!);
      if (Date.parse(certificate.validTo) < Date.now()) {
        throw new TokenFailure(
          tokenResult(
            'm365',
            {
              status: 401,
              error: 'invalid_client',
              code: 'CertificateExpired',
              description: `the certificate in certificate_file expired on ${certificate.validTo} (checked before asking Microsoft)`,
            },
            this.certificateFix(),
          ),
        );
      }
      const now = Math.floor(Date.now() / 1000);
      form.client_assertion_type = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';
      form.client_assertion = signJwt(
        { alg: 'PS256', typ: 'JWT', 'x5t#S256': thumbprintS256(c.certificate!) },
        { aud: c.tokenEndpoint, iss: c.clientId, sub: c.clientId, jti: randomUUID(), nbf: now, iat: now, exp: now + 600 },
        c.privateKey!,
      );
    }
    return requestToken(c.tokenEndpoint, form, Math.min(c.timeout, 30_000), (e) => tokenResult('m365', e, this.tokenFix(e)));
  }

  private certificateFix(): string {
    return `create a new certificate, upload its public part in ${this.app} → Certificates & secrets → Certificates, and point certificate_file and private_key_file at the new files`;
  }

  /** The admin step for a token-endpoint error (AADSTS codes: https://learn.microsoft.com/entra/identity-platform/reference-error-codes). */
  private tokenFix(e: TokenError): string | undefined {
    const c = this.config;
    switch (e.code) {
      case 'AADSTS7000215':
        return `the client secret is wrong: in ${this.app} → Certificates & secrets, create a new client secret and put its Value (not the Secret ID) in client_secret_file`;
      case 'AADSTS7000222':
        return `the client secret has expired: in ${this.app} → Certificates & secrets, create a new one and put its Value in client_secret_file`;
      case 'AADSTS700016':
        return `no application with client ID ${c.clientId} in tenant ${c.tenant}: copy the Application (client) ID from the app's Overview page into client_id, and check tenant`;
      case 'AADSTS90002':
      case 'AADSTS900023':
        return `tenant "${c.tenant}" does not exist: use the Directory (tenant) ID from the app's Overview page, or the tenant's onmicrosoft.com domain`;
      case 'AADSTS700027':
      case 'AADSTS700024':
      case 'AADSTS1000502':
        return `Microsoft refused the certificate assertion: ${this.certificateFix()} (and check this machine's clock)`;
      case 'AADSTS7000112':
        return `the application is disabled in tenant ${c.tenant}: enable it under Enterprise applications → Properties`;
      default:
        return e.error === 'invalid_client' || e.error === 'unauthorized_client' ? `check client_id, tenant and the credential in ${this.app}` : undefined;
    }
  }

  private consentFix(permission: string): string {
    return `grant the application permission: ${this.app} → API permissions → Add a permission → ${permission === 'Mail.Send' ? 'Microsoft Graph' : 'APIs my organization uses → Office 365 Exchange Online'} → Application permissions → ${permission}, then "Grant admin consent"`;
  }

  private servicePrincipalFix(mailbox: string): string {
    return `register the app in Exchange Online and give it the mailbox (Exchange Online PowerShell): New-ServicePrincipal -AppId ${this.config.clientId} -ObjectId <Object ID from Enterprise applications>; Add-MailboxPermission -Identity ${mailbox} -User <that service principal> -AccessRights FullAccess; and allow SMTP AUTH for the mailbox: Set-CASMailbox ${mailbox} -SmtpClientAuthenticationDisabled $false`;
  }

  protected apiRequest(mailbox: string, raw: Buffer): HttpRequest | { unsupported: string } {
    const body = raw.toString('base64');
    if (body.length > GRAPH_MAX_REQUEST) {
      return {
        unsupported: `the message is ${raw.length} bytes (${body.length} as base64), over Microsoft Graph's 4 MB request limit; it goes to the next upstream (add one with type = "m365", via = "smtp" for the same tenant: SMTP takes up to 35 MB)`,
      };
    }
    return {
      method: 'POST',
      url: apiUrl(this.config.endpoint, `/v1.0/users/${encodeURIComponent(mailbox)}/sendMail`),
      headers: { 'content-type': 'text/plain', accept: 'application/json' },
      body,
    };
  }

  /** Graph errors: {"error": {"code": "...", "message": "..."}} (https://learn.microsoft.com/graph/errors). */
  protected apiError(response: HttpResponse): ApiError {
    const error = field(parseJson(response.text), 'error');
    return { code: str(field(error, 'code')), text: str(field(error, 'message')) ?? response.text.slice(0, 300) };
  }

  protected messageIdOf(): string | undefined {
    return undefined;
  }

  protected fixFor(status: number, code: string | undefined, _text: string, mailbox: string): string | undefined {
    if (code === 'ErrorSendAsDenied') {
      return `${mailbox} may only send with itself in From: make the message's From header ${mailbox} ([local] from = "${mailbox}" for local mail), or grant ${mailbox} Send As permission on the From address in the Exchange admin center`;
    }
    if (
      code === 'ErrorInvalidUser' ||
      code === 'MailboxNotEnabledForRESTAPI' ||
      code === 'ResourceNotFound' ||
      code === 'Request_ResourceNotFound' ||
      (status === 404 && code !== 'OtherRecipientRefused')
    ) {
      return `${mailbox} is not a mailbox in tenant ${this.config.tenant} (or has no Exchange Online licence): set send_as (or mailbox_domains) to an existing mailbox`;
    }
    if (status === 403) return this.consentFix('Mail.Send');
    if (status === 401) return `Microsoft Graph refused the app's token: ${this.consentFix('Mail.Send')}`;
    return undefined;
  }

  protected grantedOf(token: AccessToken): string {
    const roles = peekClaims(token.value)?.roles;
    return `roles: ${Array.isArray(roles) && roles.length > 0 ? roles.join(' ') : '(none)'}`;
  }

  protected async checkAfterToken(mailbox: string, token: AccessToken): Promise<CheckStep[]> {
    const roles = peekClaims(token.value)?.roles;
    const granted = Array.isArray(roles) ? roles.map(String) : [];
    const needed = this.viaSmtp ? 'SMTP.SendAsApp' : 'Mail.Send';
    const steps: CheckStep[] = [];
    if (!granted.includes(needed)) {
      steps.push({
        name: `permission ${needed}`,
        ok: false,
        durationMs: 0,
        detail: `the token carries no ${needed} role (admin consent missing)`,
        failure: { kind: 'http', provider: 'm365', status: 403, errorCode: 'ConsentMissing', text: `${needed} not granted` },
        advice: this.consentFix(needed),
      });
      return steps;
    }
    steps.push({ name: `permission ${needed}`, ok: true, durationMs: 0, detail: 'granted (admin consent given)' });
    if (this.viaSmtp) return [...steps, ...(await this.checkSmtpPath(mailbox, token, this.servicePrincipalFix(mailbox)))];
    steps.push(await this.mailboxStep(mailbox, token, granted));
    return steps;
  }

  /** GET /v1.0/users/{mailbox}: only possible with a User.Read* permission, which Mail.Send alone does not give. */
  private async mailboxStep(mailbox: string, token: AccessToken, granted: string[]): Promise<CheckStep> {
    const name = `mailbox ${mailbox}`;
    if (!granted.some((r) => /^User\.(Read|ReadBasic)\.All$/.test(r))) {
      return { name, ok: true, durationMs: 0, detail: 'not looked up (Mail.Send cannot read users; add User.ReadBasic.All to check, or use --send-to)' };
    }
    const started = performance.now();
    try {
      const response = await httpRequest(
        {
          method: 'GET',
          url: apiUrl(this.config.endpoint, `/v1.0/users/${encodeURIComponent(mailbox)}?$select=id,mail,userPrincipalName`),
          headers: { authorization: `Bearer ${token.value}`, accept: 'application/json' },
        },
        Math.min(this.config.timeout, 30_000),
      );
      if (response.status === 200) return { name, ok: true, durationMs: elapsed(started), detail: `exists (${str(field(parseJson(response.text), 'userPrincipalName')) ?? mailbox})` };
      const error = this.apiError(response);
      return {
        name,
        ok: false,
        durationMs: elapsed(started),
        detail: `HTTP ${response.status} ${error.code ?? ''}: ${error.text}`,
        failure: { kind: 'http', provider: 'm365', status: response.status, errorCode: error.code, text: error.text },
        advice: this.fixFor(response.status === 404 ? 404 : response.status, error.code, error.text, mailbox),
      };
    } catch (error) {
      const failure = error instanceof HttpFailure ? error.result : { kind: 'network' as const, errorCode: 'EHTTP', message: (error as Error).message };
      return { name, ok: false, durationMs: elapsed(started), detail: 'message' in failure ? failure.message : failure.kind, failure };
    }
  }
}
