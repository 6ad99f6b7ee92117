/**
 * Strict fake of Google's OAuth 2.0 token endpoint (service-account JWT bearer grant with
 * domain-wide delegation) and the Gmail API's users.messages.send media upload, written from
 * Google's documentation:
 * - https://developers.google.com/identity/protocols/oauth2/service-account ("Preparing to make an
 *   authorized API call" → HTTP/REST): form POST grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer
 *   and assertion; header {"alg":"RS256","typ":"JWT"}; claims iss (client_email), scope
 *   (space-delimited), aud (the token URI), exp (at most one hour after iat), iat, sub (the user
 *   impersonated; needs domain-wide delegation of that scope to the client id). Answer
 *   {access_token, expires_in, token_type}; errors {error, error_description}: unauthorized_client
 *   (delegation missing), invalid_grant ("Invalid email or User ID", "Invalid JWT Signature.",
 *   "Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe").
 * - https://developers.google.com/gmail/api/reference/rest/v1/users.messages/send and
 *   https://developers.google.com/gmail/api/guides/uploads: POST
 *   /upload/gmail/v1/users/{userId}/messages/send?uploadType=media, Content-Type message/rfc822,
 *   max 35 MB; scopes gmail.send or mail.google.com among others; 200 with a Message resource
 *   {id, threadId, labelIds}. Recipients from To/Cc/Bcc (Bcc removed before delivery).
 * - Errors: https://developers.google.com/gmail/api/guides/handle-errors ({"error": {"code",
 *   "message", "errors": [{"domain", "reason", "message"}], "status"}}; 400 invalidArgument
 *   "Recipient address required" / "Invalid To header", 401 authError, 403 "Delegation denied",
 *   403/429 rateLimitExceeded / userRateLimitExceeded).
 */
import { createPublicKey, randomBytes } from 'node:crypto';
import { startFake, header, type Fake, type Received, type Reply } from './server.js';
import { decodeJwt, formOf, headerRecipients, verifyJwt, withoutBcc } from './jwt-verify.js';

export const GMAIL_SEND = 'https://www.googleapis.com/auth/gmail.send';
export const MAIL_GOOGLE = 'https://mail.google.com/';

export interface GmailSent {
  userId: string;
  /** The message as delivered (Bcc removed). */
  raw: Buffer;
  /** The upload as received. */
  uploaded: Buffer;
  recipients: string[];
}

export interface GoogleToken {
  value: string;
  sub: string;
  scopes: string[];
  expiresAt: number;
}

export interface GoogleFake extends Fake<GmailSent> {
  clientEmail: string;
  clientId: string;
  /** Public key of the service account (PEM). */
  publicKey: string;
  /** Workspace users (lower case). */
  users: Set<string>;
  /** Scopes delegated domain-wide to clientId in the admin console. */
  delegated: Set<string>;
  tokens: GoogleToken[];
  tokenRequests: number;
  tokenLifetime: number;
  tokenUrl: string;
  expireTokens(): void;
  validToken(value: string, user: string, scope: string): GoogleToken | undefined;
}

const oauthError = (status: number, error: string, description: string): Reply => ({ status, body: { error, error_description: description } });

const apiError = (code: number, reason: string, message: string, status: string, headers?: Record<string, string>): Reply => ({
  status: code,
  headers,
  body: { error: { code, message, errors: [{ message, domain: 'global', reason }], status } },
});

export async function startGoogle(account: { clientEmail: string; clientId: string; publicKey: string }): Promise<GoogleFake> {
  let fake!: GoogleFake;
  const base = await startFake<GmailSent>((request, control) => {
    const [path, query = ''] = request.path.split('?');
    if (request.method === 'POST' && path === '/token') return tokenEndpoint(fake, request);
    const send = /^\/upload\/gmail\/v1\/users\/([^/]+)\/messages\/send$/.exec(path!);
    if (request.method === 'POST' && send) return sendMessage(fake, request, decodeURIComponent(send[1]!), new URLSearchParams(query), control);
    return apiError(404, 'notFound', 'Not Found', 'NOT_FOUND');
  });
  fake = Object.assign(base, {
    ...account,
    users: new Set(['scanner@example.com', 'alerts@example.com']),
    delegated: new Set([GMAIL_SEND, MAIL_GOOGLE]),
    tokens: [] as GoogleToken[],
    tokenRequests: 0,
    tokenLifetime: 3599,
    tokenUrl: `${base.url}/token`,
    expireTokens() {
      for (const t of fake.tokens) t.expiresAt = Date.now() - 1000;
    },
    validToken(value: string, user: string, scope: string) {
      return fake.tokens.find((t) => t.value === value && t.sub === user.toLowerCase() && t.scopes.includes(scope) && t.expiresAt > Date.now());
    },
  });
  return fake;
}

function tokenEndpoint(fake: GoogleFake, request: Received): Reply {
  fake.tokenRequests++;
  if (!/^application\/x-www-form-urlencoded\b/.test(header(request, 'content-type') ?? '')) return oauthError(400, 'invalid_request', 'Invalid Content-Type');
  const form = formOf(request.body);
  if (form.get('grant_type') !== 'urn:ietf:params:oauth:grant-type:jwt-bearer') return oauthError(400, 'unsupported_grant_type', `Invalid grant_type: ${form.get('grant_type') ?? ''}`);
  const jwt = decodeJwt(form.get('assertion') ?? '');
  if (!jwt) return oauthError(400, 'invalid_grant', 'Invalid JWT: unable to parse');
  const { header: h, claims: c } = jwt;
  if (h.alg !== 'RS256' || h.typ !== 'JWT') return oauthError(400, 'invalid_grant', 'Invalid JWT header: alg must be RS256');
  if (c.iss !== fake.clientEmail) return oauthError(401, 'invalid_client', 'The OAuth client was not found.');
  if (!verifyJwt(jwt, createPublicKey(fake.publicKey))) return oauthError(400, 'invalid_grant', 'Invalid JWT Signature.');
  if (c.aud !== fake.tokenUrl) return oauthError(400, 'invalid_grant', 'Invalid JWT: audience does not match the token URI');
  const now = Math.floor(Date.now() / 1000);
  const iat = Number(c.iat);
  const exp = Number(c.exp);
  if (!Number.isInteger(iat) || !Number.isInteger(exp) || exp - iat > 3600 || exp < now || iat > now + 300) {
    return oauthError(400, 'invalid_grant', 'Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe. Check your iat and exp values in the JWT claim.');
  }
  const scopes = typeof c.scope === 'string' ? c.scope.split(' ').filter(Boolean) : [];
  if (scopes.length === 0) return oauthError(400, 'invalid_scope', 'Empty or missing scope not allowed.');
  const sub = typeof c.sub === 'string' ? c.sub.toLowerCase() : '';
  if (sub) {
    if (!scopes.every((s) => fake.delegated.has(s))) {
      return oauthError(401, 'unauthorized_client', 'Client is unauthorized to retrieve access tokens using this method, or client not authorized for any of the scopes requested.');
    }
    if (!fake.users.has(sub)) return oauthError(400, 'invalid_grant', 'Invalid email or User ID');
  }
  const value = `ya29.${randomBytes(24).toString('base64url')}`;
  fake.tokens.push({ value, sub, scopes, expiresAt: Date.now() + fake.tokenLifetime * 1000 });
  return { status: 200, body: { access_token: value, expires_in: fake.tokenLifetime, token_type: 'Bearer' } };
}

function sendMessage(fake: GoogleFake, request: Received, userId: string, query: URLSearchParams, control: { accept(r: Received, p: GmailSent, s: (id: string) => Reply): Reply }): Reply {
  const auth = /^Bearer (.+)$/.exec(header(request, 'authorization') ?? '');
  const token = auth ? fake.tokens.find((t) => t.value === auth[1]) : undefined;
  if (!token || token.expiresAt <= Date.now()) {
    return apiError(401, 'authError', 'Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential.', 'UNAUTHENTICATED');
  }
  if (!token.scopes.some((s) => s === GMAIL_SEND || s === MAIL_GOOGLE)) return apiError(403, 'insufficientPermissions', 'Request had insufficient authentication scopes.', 'PERMISSION_DENIED');
  const user = userId === 'me' ? token.sub : userId.toLowerCase();
  if (user !== token.sub) return apiError(403, 'forbidden', `Delegation denied for ${token.sub}`, 'PERMISSION_DENIED');
  if (query.get('uploadType') !== 'media') return apiError(400, 'invalidArgument', "'raw' RFC822 payload message string or uploading message via /upload/* URL required", 'INVALID_ARGUMENT');
  if (!/^message\/rfc822\b/.test(header(request, 'content-type') ?? ''))
    return apiError(400, 'badContent', `Media type '${header(request, 'content-type') ?? ''}' is not supported. Valid media types: [message/*]`, 'INVALID_ARGUMENT');
  if (request.body.length > 35 * 1024 * 1024) return apiError(413, 'uploadTooLarge', 'Media upload too large.', 'INVALID_ARGUMENT');
  const recipients = headerRecipients(request.body);
  if (recipients.length === 0) return apiError(400, 'invalidArgument', 'Recipient address required', 'INVALID_ARGUMENT');
  // A From that is neither the user nor one of its "Send mail as" aliases is rewritten by Gmail, not refused; the fake records the upload as sent.
  return control.accept(request, { userId: user, raw: withoutBcc(request.body), uploaded: request.body, recipients }, (id) => ({
    status: 200,
    body: { id, threadId: id, labelIds: ['SENT'] },
  }));
}
