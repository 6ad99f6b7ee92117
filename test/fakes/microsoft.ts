/**
 * Strict fake of the Microsoft identity platform v2 token endpoint and Microsoft Graph sendMail,
 * written from Microsoft's documentation:
 * - Client credentials grant: https://learn.microsoft.com/entra/identity-platform/v2-oauth2-client-creds-grant-flow
 *   (form-encoded POST /{tenant}/oauth2/v2.0/token; grant_type=client_credentials, client_id, scope
 *   ending in /.default, and client_secret or client_assertion_type + client_assertion; the answer
 *   {token_type, expires_in, ext_expires_in, access_token}; errors {error, error_description
 *   "AADSTSnnnnnnn: …", error_codes, timestamp, trace_id, correlation_id}).
 * - Certificate credentials: https://learn.microsoft.com/entra/identity-platform/certificate-credentials
 *   (header alg PS256 + x5t#S256, or the older RS256 + x5t; claims aud = the token endpoint,
 *   iss = sub = client_id, jti, exp, nbf; signed by the registered certificate's key).
 * - AADSTS codes: https://learn.microsoft.com/entra/identity-platform/reference-error-codes
 *   (7000215 invalid secret, 700016 application not found in the directory, 90002 tenant not
 *   found, 700027 invalid assertion signature / expired key, 1002012 invalid scope).
 * - sendMail with MIME: https://learn.microsoft.com/graph/api/user-sendmail and
 *   https://learn.microsoft.com/graph/outlook-send-mime-message (POST /v1.0/users/{id|UPN}/sendMail,
 *   Content-Type: text/plain, body = base64 MIME; 202 with an empty body; malformed base64 → 400
 *   "Invalid base64 string for MIME content."; application permission Mail.Send).
 * - Errors: https://learn.microsoft.com/graph/errors ({"error": {"code", "message"}}, 401
 *   InvalidAuthenticationToken, 403 ErrorAccessDenied, 413, 429 with Retry-After) and
 *   https://learn.microsoft.com/graph/throttling-limits (Outlook: ApplicationThrottled, MailboxConcurrency).
 * The ~4 MB request limit answers 413 RequestEntityTooLarge beyond 4 MB.
 */
import { createHash, randomUUID, X509Certificate } from 'node:crypto';
import { startFake, header, isBase64, type Fake, type Received, type Reply } from './server.js';
import { decodeJwt, formOf, headerRecipients, headerValue, verifyJwt } from './jwt-verify.js';

export const GRAPH_SCOPE = 'https://graph.microsoft.com/.default';
export const EXCHANGE_SCOPE = 'https://outlook.office365.com/.default';

export interface GraphSent {
  mailbox: string;
  /** The decoded MIME as Graph received it. */
  mime: Buffer;
  recipients: string[];
}

export interface IssuedToken {
  value: string;
  scope: string;
  roles: string[];
  expiresAt: number;
}

export interface MicrosoftFake extends Fake<GraphSent> {
  tenant: string;
  clientId: string;
  secret: string;
  /** PEM of the certificate registered with the app (certificate credential), if any. */
  certificate?: string;
  /** Application permissions consented per resource scope. */
  roles: Record<string, string[]>;
  /** Mailboxes that exist in the tenant (lower case). */
  mailboxes: Set<string>;
  /** mailbox → addresses it may send as (besides itself). */
  sendAs: Map<string, string[]>;
  /** Recipients Exchange cannot resolve. */
  invalidRecipients: Set<string>;
  tokens: IssuedToken[];
  tokenRequests: number;
  /** Seconds of lifetime for new tokens. */
  tokenLifetime: number;
  tokenUrl: string;
  /** Makes every issued token expired (as after an hour). */
  expireTokens(): void;
  /** Validates an access token presented to Exchange (SMTP XOAUTH2). */
  validToken(value: string, scope: string): IssuedToken | undefined;
}

function aadError(status: number, error: string, code: number, text: string): Reply {
  const traceId = randomUUID();
  return {
    status,
    body: {
      error,
      error_description: `AADSTS${code}: ${text} Trace ID: ${traceId} Correlation ID: ${randomUUID()} Timestamp: ${new Date().toISOString()}`,
      error_codes: [code],
      timestamp: new Date().toISOString(),
      trace_id: traceId,
      correlation_id: randomUUID(),
      error_uri: `https://login.microsoftonline.com/error?code=${code}`,
    },
  };
}

const graphError = (status: number, code: string, message: string, headers?: Record<string, string>): Reply => ({
  status,
  headers,
  body: { error: { code, message, innerError: { date: new Date().toISOString(), 'request-id': randomUUID(), 'client-request-id': randomUUID() } } },
});

export async function startMicrosoft(options: { tenant?: string; clientId?: string; secret?: string; certificate?: string } = {}): Promise<MicrosoftFake> {
  let fake!: MicrosoftFake;
  const base = await startFake<GraphSent>((request, control) => {
    const path = request.path.split('?')[0]!;
    if (request.method === 'POST' && /^\/[^/]+\/oauth2\/v2\.0\/token$/.test(path)) return tokenEndpoint(fake, request);
    const send = /^\/v1\.0\/users\/([^/]+)\/sendMail$/.exec(path);
    if (request.method === 'POST' && send) return sendMail(fake, request, decodeURIComponent(send[1]!), control);
    const user = /^\/v1\.0\/users\/([^/]+)$/.exec(path);
    if (request.method === 'GET' && user) return getUser(fake, request, decodeURIComponent(user[1]!));
    return graphError(404, 'BadRequest', `Resource not found for the segment '${path}'.`);
  });
  const tenant = options.tenant ?? 'contoso.onmicrosoft.com';
  fake = Object.assign(base, {
    tenant,
    clientId: options.clientId ?? '11111111-2222-3333-4444-555555555555',
    secret: options.secret ?? 'Qz8~fake.secret-value_0123456789abcdefgh',
    certificate: options.certificate,
    roles: { [GRAPH_SCOPE]: ['Mail.Send'], [EXCHANGE_SCOPE]: ['SMTP.SendAsApp'] },
    mailboxes: new Set(['scanner@contoso.com', 'alerts@contoso.com']),
    sendAs: new Map<string, string[]>(),
    invalidRecipients: new Set<string>(),
    tokens: [] as IssuedToken[],
    tokenRequests: 0,
    tokenLifetime: 3599,
    tokenUrl: `${base.url}/${tenant}/oauth2/v2.0/token`,
    expireTokens() {
      for (const t of fake.tokens) t.expiresAt = Date.now() - 1000;
    },
    validToken(value: string, scope: string) {
      return fake.tokens.find((t) => t.value === value && t.scope === scope && t.expiresAt > Date.now());
    },
  });
  return fake;
}

function tokenEndpoint(fake: MicrosoftFake, request: Received): Reply {
  fake.tokenRequests++;
  if (!/^application\/x-www-form-urlencoded\b/.test(header(request, 'content-type') ?? '')) {
    return aadError(400, 'invalid_request', 900144, "The request body must contain the following parameter: 'grant_type'.");
  }
  const form = formOf(request.body);
  const tenant = decodeURIComponent(request.path.split('/')[1]!);
  if (tenant !== fake.tenant) return aadError(400, 'invalid_request', 90002, `Tenant '${tenant}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud.`);
  if (form.get('grant_type') !== 'client_credentials') return aadError(400, 'unsupported_grant_type', 70003, 'The app requested an unsupported grant type.');
  if (form.get('client_id') !== fake.clientId) {
    return aadError(
      400,
      'unauthorized_client',
      700016,
      `Application with identifier '${form.get('client_id')}' was not found in the directory '${fake.tenant}'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant.`,
    );
  }
  const scope = form.get('scope') ?? '';
  if (scope !== GRAPH_SCOPE && scope !== EXCHANGE_SCOPE)
    return aadError(
      400,
      'invalid_scope',
      1002012,
      `The provided value for scope ${scope} is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI).`,
    );
  const secret = form.get('client_secret');
  const assertion = form.get('client_assertion');
  if (secret !== null && assertion !== null) return aadError(400, 'invalid_request', 50027, 'Only one client credential may be presented.');
  if (secret !== null) {
    if (secret !== fake.secret)
      return aadError(
        401,
        'invalid_client',
        7000215,
        'Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app.',
      );
  } else if (assertion !== null) {
    const problem = assertionProblem(fake, form.get('client_assertion_type'), assertion);
    if (problem) return problem;
  } else {
    return aadError(401, 'invalid_client', 7000218, "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.");
  }
  const roles = fake.roles[scope] ?? [];
  const expiresAt = Date.now() + fake.tokenLifetime * 1000;
  const claims: Record<string, unknown> = {
    aud: scope.replace('/.default', ''),
    iss: `https://sts.windows.net/${fake.tenant}/`,
    appid: fake.clientId,
    exp: Math.floor(expiresAt / 1000),
    jti: randomUUID(),
  };
  if (roles.length > 0) claims.roles = roles; // an app without consent gets a token without roles
  const value = `${Buffer.from(JSON.stringify({ typ: 'JWT', alg: 'RS256' })).toString('base64url')}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}.${randomUUID().replace(/-/g, '')}`;
  fake.tokens.push({ value, scope, roles, expiresAt });
  return { status: 200, body: { token_type: 'Bearer', expires_in: fake.tokenLifetime, ext_expires_in: fake.tokenLifetime, access_token: value } };
}

function assertionProblem(fake: MicrosoftFake, type: string | null, assertion: string): Reply | undefined {
  if (type !== 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer') return aadError(400, 'invalid_request', 50027, 'Invalid client_assertion_type.');
  const jwt = decodeJwt(assertion);
  if (!jwt) return aadError(401, 'invalid_client', 50027, 'Invalid JWT token. Token format not valid.');
  if (!fake.certificate) return aadError(401, 'invalid_client', 700027, 'Client assertion contains an invalid signature. [Reason - The key was not found.]');
  const cert = new X509Certificate(fake.certificate);
  const s256 = createHash('sha256').update(cert.raw).digest('base64url');
  const sha1 = createHash('sha1').update(cert.raw).digest('base64url');
  const { header: h, claims: c } = jwt;
  const keyMatches = (h.alg === 'PS256' && h['x5t#S256'] === s256) || (h.alg === 'RS256' && (h.x5t === sha1 || h['x5t#S256'] === s256));
  if (h.typ !== 'JWT' || !keyMatches) return aadError(401, 'invalid_client', 700027, 'Client assertion contains an invalid signature. [Reason - The key was not found.]');
  if (!verifyJwt(jwt, cert.publicKey))
    return aadError(401, 'invalid_client', 700027, 'Client assertion contains an invalid signature. [Reason - The provided signature value did not match the expected signature value.]');
  if (Date.parse(cert.validTo) < Date.now()) return aadError(401, 'invalid_client', 700027, 'Client assertion contains an invalid signature. [Reason - The key used is expired.]');
  const now = Date.now() / 1000;
  if (c.aud !== fake.tokenUrl) return aadError(401, 'invalid_client', 700212, `No matching federated identity record found for presented assertion audience '${String(c.aud)}'.`);
  if (c.iss !== fake.clientId || c.sub !== fake.clientId) return aadError(401, 'invalid_client', 700021, "Client assertion application identifier doesn't match 'client_id' parameter.");
  if (typeof c.jti !== 'string' || !c.jti) return aadError(401, 'invalid_client', 700023, 'Client assertion jti is missing.');
  if (typeof c.exp !== 'number' || c.exp < now) return aadError(401, 'invalid_client', 700024, 'Client assertion is not within its valid time range.');
  if (typeof c.nbf === 'number' && c.nbf > now + 300) return aadError(401, 'invalid_client', 700024, 'Client assertion is not within its valid time range.');
  return undefined;
}

function bearer(fake: MicrosoftFake, request: Received): IssuedToken | Reply {
  const auth = header(request, 'authorization') ?? '';
  const match = /^Bearer (.+)$/.exec(auth);
  if (!match) return graphError(401, 'InvalidAuthenticationToken', 'Access token is empty.');
  const token = fake.tokens.find((t) => t.value === match[1]);
  if (!token) return graphError(401, 'InvalidAuthenticationToken', 'IDX14100: JWT is not well formed.');
  if (token.expiresAt <= Date.now()) return graphError(401, 'InvalidAuthenticationToken', 'Lifetime validation failed, the token is expired.');
  if (token.scope !== GRAPH_SCOPE) return graphError(401, 'InvalidAuthenticationToken', 'Access token validation failure. Invalid audience.');
  return token;
}

function sendMail(fake: MicrosoftFake, request: Received, mailbox: string, control: { accept(r: Received, p: GraphSent, s: (id: string) => Reply): Reply }): Reply {
  const token = bearer(fake, request);
  if ('status' in token) return token;
  if (!token.roles.includes('Mail.Send')) return graphError(403, 'ErrorAccessDenied', 'Access is denied. Check credentials and try again.');
  if (request.body.length > 4 * 1024 * 1024) return graphError(413, 'RequestEntityTooLarge', 'The request is larger than 4 MB.');
  if (!fake.mailboxes.has(mailbox.toLowerCase())) return graphError(404, 'ErrorInvalidUser', `The requested user '${mailbox}' is invalid.`);
  if (!/^text\/plain\b/.test(header(request, 'content-type') ?? ''))
    return graphError(400, 'RequestBodyRead', 'Cannot read the request body: a MIME message must be sent with Content-Type: text/plain.');
  const text = request.body.toString('latin1');
  if (!isBase64(text)) return graphError(400, 'ErrorMimeContentInvalidBase64String', 'Invalid base64 string for MIME content.');
  const mime = Buffer.from(text, 'base64');
  const from = /<([^>]+)>|([^\s<>]+@[^\s<>]+)/.exec(headerValue(mime, 'From') ?? '');
  const fromAddress = (from?.[1] ?? from?.[2] ?? '').toLowerCase();
  if (fromAddress && fromAddress !== mailbox.toLowerCase() && !(fake.sendAs.get(mailbox.toLowerCase()) ?? []).includes(fromAddress)) {
    return graphError(
      403,
      'ErrorSendAsDenied',
      'The user account which was used to submit this request does not have the right to send mail on behalf of the specified sending account., Cannot submit message.',
    );
  }
  const recipients = headerRecipients(mime);
  if (recipients.length === 0) return graphError(400, 'ErrorInvalidRecipients', "At least one recipient is not valid., A message can't be sent because it contains no recipients.");
  const invalid = recipients.find((r) => fake.invalidRecipients.has(r));
  if (invalid)
    return graphError(
      400,
      'ErrorInvalidRecipients',
      `At least one recipient is not valid., Recipient '${invalid}' is not resolved. All recipients must be resolved before a message can be submitted.`,
    );
  return control.accept(request, { mailbox, mime, recipients }, () => ({ status: 202, body: '' }));
}

function getUser(fake: MicrosoftFake, request: Received, id: string): Reply {
  const token = bearer(fake, request);
  if ('status' in token) return token;
  if (!token.roles.some((r) => /^User\.(Read|ReadBasic)\.All$/.test(r))) return graphError(403, 'Authorization_RequestDenied', 'Insufficient privileges to complete the operation.');
  if (!fake.mailboxes.has(id.toLowerCase())) return graphError(404, 'Request_ResourceNotFound', `Resource '${id}' does not exist or one of its queried reference-property objects are not present.`);
  return { status: 200, body: { '@odata.context': 'https://graph.microsoft.com/v1.0/$metadata#users(id,mail,userPrincipalName)/$entity', id: randomUUID(), mail: id, userPrincipalName: id } };
}
