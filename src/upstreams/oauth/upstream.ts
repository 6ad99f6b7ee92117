/**
 * What the m365 and gmail upstreams share: which mailbox sends, the token cache, the raw-MIME API
 * call with one reactive token refresh, and the SMTP XOAUTH2 path (our SmtpUpstream with a token
 * provider). A provider module supplies its token request, its API request and how to read and
 * explain its errors.
 *
 * Envelope vs headers: both APIs take the recipients from the message headers (To, Cc, Bcc; the
 * provider removes Bcc). The envelope must win, so before an API call the header recipients are
 * compared with the envelope: envelope recipients missing from the headers are added in a Bcc:
 * field the provider strips; a header recipient that is not in the envelope (an alias expanded by
 * mailshim, a recipient already delivered or bounced) cannot be expressed without rewriting the
 * message, so the API path reports the message unsupported and the router hands it to the next
 * upstream (e.g. the same tenant with via = "smtp", which sends to the envelope).
 */
import type { OAuthUpstreamConfig, SmtpUpstreamConfig } from '../../config/types.js';
import { splitHeaders, parseHeaderFields, fieldValue } from '../../message/headers.js';
import { parseAddressList } from '../../message/addresses.js';
import { capRetryAfter, HttpFailure, httpRequest, parseRetryAfter, type HttpRequest, type HttpResponse } from '../rest/http.js';
import { Limiter } from '../rest/limiter.js';
import { checkSmtp } from '../smtp-check.js';
import { SmtpUpstream } from '../smtp.js';
import type { OAuthTokenProvider } from '../smtp-errors.js';
import { forAll, type AttemptResult, type CheckRequest, type CheckStep, type OutboundMessage, type RecipientResult, type Upstream } from '../types.js';
import { TokenCache, TokenFailure, type AccessToken } from './token.js';

export interface ApiError {
  /** The provider's code, e.g. "ErrorSendAsDenied", "failedPrecondition". */
  code?: string;
  text: string;
}

/** The message as the API must receive it, or why the API path cannot carry it. */
export type ApiMime = { raw: Buffer } | { unsupported: string };

const lower = (a: string) => a.toLowerCase();

/**
 * Makes the header recipients equal the envelope: extra envelope recipients go in a prepended
 * Bcc: field (the API removes it before delivery); a header recipient outside the envelope makes
 * the message unsupported on this path.
 */
export function envelopeMime(raw: Buffer, recipients: string[], api: string): ApiMime {
  const { header } = splitHeaders(raw);
  const named = new Set<string>();
  for (const field of parseHeaderFields(header)) {
    if (/^(to|cc|bcc)$/i.test(field.name)) for (const { address } of parseAddressList(fieldValue(field))) named.add(lower(address));
  }
  const envelope = new Set(recipients.map(lower));
  const outside = [...named].filter((a) => !envelope.has(a));
  if (outside.length > 0) {
    return {
      unsupported: `${api} sends to the addresses in the To/Cc/Bcc headers, and ${outside.slice(0, 3).join(', ')}${outside.length > 3 ? ', …' : ''} there ${outside.length === 1 ? 'is' : 'are'} not among this delivery's envelope recipients; an SMTP upstream (via = "smtp") sends to the envelope`,
    };
  }
  const missing = recipients.filter((r) => !named.has(lower(r)));
  if (missing.length === 0) return { raw };
  const eol = header.includes('\r\n') || header === '' ? '\r\n' : '\n';
  return { raw: Buffer.concat([Buffer.from(`Bcc: ${missing.join(', ')}${eol}`), raw]) };
}

export abstract class OAuthUpstream<C extends OAuthUpstreamConfig = OAuthUpstreamConfig> implements Upstream {
  readonly name: string;
  readonly type: string;
  /**
   * The raw message goes up (API upload, or SMTP to Google's or Microsoft's servers, which offer
   * 8BITMIME): made wire-legal first, correctly declared 8-bit kept (src/message/wire.ts).
   */
  readonly wire = { eightBit: true };
  protected readonly tokens: TokenCache;
  private readonly limiter: Limiter;
  private readonly smtpPaths = new Map<string, SmtpUpstream>();

  constructor(
    protected readonly config: C,
    protected readonly hostname: string,
  ) {
    this.name = config.name;
    this.type = config.type;
    this.tokens = new TokenCache((key) => this.acquireToken(key));
    this.limiter = new Limiter(config.maxConcurrency);
  }

  /** "Graph" / "the Gmail API", for messages. */
  protected abstract readonly apiName: string;
  /** The token scope of each path. */
  protected abstract readonly scopes: { api: string; smtp: string };

  protected get viaSmtp(): boolean {
    return this.config.via === 'smtp';
  }

  protected get scope(): string {
    return this.viaSmtp ? this.scopes.smtp : this.scopes.api;
  }
  /** Fetches a token for this cache key (throws TokenFailure). */
  protected abstract acquireToken(key: string): Promise<AccessToken>;
  /** Google tokens are per impersonated mailbox; one Microsoft app token serves every mailbox. */
  protected abstract tokenKey(mailbox: string): string;
  /** The send request (without Authorization) or why this message cannot go through the API. */
  protected abstract apiRequest(mailbox: string, raw: Buffer): HttpRequest | { unsupported: string };
  protected abstract apiError(response: HttpResponse): ApiError;
  protected abstract messageIdOf(response: HttpResponse): string | undefined;
  /** The admin step that fixes an API error about our setup (permission, mailbox, delegation), if any. */
  protected abstract fixFor(status: number, code: string | undefined, text: string, mailbox: string): string | undefined;
  /** `test-upstream` steps after the token (permissions, mailbox, SMTP AUTH). */
  protected abstract checkAfterToken(mailbox: string, token: AccessToken): Promise<CheckStep[]>;

  /** The envelope sender when it is a mailbox of this tenant/domain, else send_as. */
  mailboxFor(sender: string): string | undefined {
    const domain = sender.slice(sender.lastIndexOf('@') + 1).toLowerCase();
    if (sender.includes('@') && this.config.mailboxDomains.includes(domain)) return sender;
    return this.config.sendAs;
  }

  private noMailbox(sender: string): AttemptResult {
    return {
      kind: 'http',
      provider: this.type,
      status: 403,
      errorCode: 'NoSendingMailbox',
      text: `sender <${sender}> is not a mailbox of ${this.config.mailboxDomains.join(', ') || 'this upstream'} and send_as is not set — fix: set send_as = "<a mailbox the app may send as>" (or mailbox_domains) on upstream "${this.name}"`,
    };
  }

  async send(message: OutboundMessage): Promise<RecipientResult[]> {
    const mailbox = this.mailboxFor(message.sender);
    if (mailbox === undefined) return forAll(message.recipients, this.noMailbox(message.sender));
    let token: AccessToken;
    try {
      token = await this.tokens.get(this.tokenKey(mailbox));
    } catch (error) {
      if (error instanceof TokenFailure) return forAll(message.recipients, error.result);
      throw error;
    }
    // SMTP sends to the envelope with MAIL FROM = the authenticated mailbox (Exchange and Gmail
    // refuse any other); the token was fetched above so a token error is reported as one.
    if (this.viaSmtp) {
      const path = this.smtpPath(mailbox);
      const results = await path.send({ ...message, sender: mailbox });
      if (!results.some((r) => r.result.kind === 'smtp' && r.result.stage === 'auth')) return results;
      // Refused at AUTH (Exchange answers 535 at once, without the XOAUTH2 challenge that makes
      // nodemailer renew): drop the token and try once more on a new connection with a fresh one.
      this.tokens.invalidate(this.tokenKey(mailbox), token.value);
      return path.send({ ...message, sender: mailbox });
    }
    return this.sendApi(message, mailbox, token);
  }

  private async sendApi(message: OutboundMessage, mailbox: string, token: AccessToken): Promise<RecipientResult[]> {
    const mime = envelopeMime(await message.body.buffer(), message.recipients, this.apiName);
    if ('unsupported' in mime) return forAll(message.recipients, { kind: 'unsupported', text: mime.unsupported });
    const request = this.apiRequest(mailbox, mime.raw);
    if ('unsupported' in request) return forAll(message.recipients, { kind: 'unsupported', text: request.unsupported });
    let response: HttpResponse;
    try {
      response = await this.call(request, token);
      if (response.status === 401) {
        // Expired or revoked before its time: one fresh token, one more try.
        this.tokens.invalidate(this.tokenKey(mailbox), token.value);
        response = await this.call(request, await this.tokens.get(this.tokenKey(mailbox)));
      }
    } catch (error) {
      if (error instanceof HttpFailure || error instanceof TokenFailure) return forAll(message.recipients, error.result);
      return forAll(message.recipients, { kind: 'network', errorCode: 'EHTTP', message: (error as Error).message });
    }
    if (response.status >= 200 && response.status < 300) {
      const id = this.messageIdOf(response);
      return forAll(message.recipients, { kind: 'accepted', reply: `HTTP ${response.status}${id ? ` id=${id}` : ''}`, providerMessageId: id });
    }
    return this.refusal(response, message.recipients, mailbox);
  }

  private call(request: HttpRequest, token: AccessToken): Promise<HttpResponse> {
    return this.limiter.run(() => httpRequest({ ...request, headers: { ...request.headers, authorization: `Bearer ${token.value}` } }, this.config.timeout));
  }

  /** An error answer as per-recipient results: a recipient the error names gets it; the others are retried. */
  private refusal(response: HttpResponse, recipients: string[], mailbox: string): RecipientResult[] {
    const error = this.apiError(response);
    const fix = this.fixFor(response.status, error.code, error.text, mailbox);
    const result: AttemptResult = {
      kind: 'http',
      provider: this.type,
      status: response.status,
      errorCode: error.code,
      text: `${error.text || `HTTP ${response.status}`}${fix ? ` — fix: ${fix}` : ''}`,
      retryAfterMs: capRetryAfter(parseRetryAfter(response.headers.get('retry-after'))),
    };
    const named = recipients.filter((r) => error.text.toLowerCase().includes(r.toLowerCase()));
    if (named.length === 0 || named.length === recipients.length || response.status !== 400) return forAll(recipients, result);
    return recipients.map((recipient) =>
      named.includes(recipient)
        ? { recipient, result }
        : {
            recipient,
            result: {
              kind: 'http',
              provider: this.type,
              status: response.status,
              errorCode: 'OtherRecipientRefused',
              text: `not sent: ${this.apiName} refused another recipient of this message (${error.text})`,
            },
          },
    );
  }

  /** One pooled SMTP transport per sending mailbox (the XOAUTH2 user is fixed per connection). */
  protected smtpPath(mailbox: string): SmtpUpstream {
    let path = this.smtpPaths.get(mailbox.toLowerCase());
    if (!path) {
      path = new SmtpUpstream(this.smtpConfig(), this.hostname, this.tokenProvider(mailbox));
      this.smtpPaths.set(mailbox.toLowerCase(), path);
    }
    return path;
  }

  protected smtpConfig(): SmtpUpstreamConfig {
    const { host, port, tls, ca } = this.config.smtp;
    return { type: 'smtp', name: this.name, matchFrom: [], maxConcurrency: this.config.maxConcurrency, timeout: this.config.timeout, host, port, tls, ca };
  }

  /** XOAUTH2 for nodemailer: the cached token; `renew` when the server refused the last one. */
  protected tokenProvider(mailbox: string): OAuthTokenProvider {
    const key = this.tokenKey(mailbox);
    let last: string | undefined;
    return {
      user: mailbox,
      token: async (renew) => {
        if (renew && last) this.tokens.invalidate(key, last);
        const token = await this.tokens.get(key);
        last = token.value;
        return token;
      },
    };
  }

  /** The mailbox `test-upstream` checks: the one --from (or the test message's sender) maps to, else send_as. */
  protected checkMailbox(request: CheckRequest): string | undefined {
    const sender = request.send?.sender ?? request.from;
    return sender !== undefined ? this.mailboxFor(sender) : this.config.sendAs;
  }

  async check(request: CheckRequest): Promise<CheckStep[]> {
    const mailbox = this.checkMailbox(request);
    if (mailbox === undefined) {
      const failure = this.noMailbox(request.send?.sender ?? '(none)');
      return [
        {
          name: 'sending mailbox',
          ok: false,
          durationMs: 0,
          detail: 'send_as is not set',
          failure,
          advice: `set send_as = "<mailbox>" on upstream "${this.name}", or run test-upstream with --from <mailbox>`,
        },
      ];
    }
    const steps: CheckStep[] = [];
    const started = performance.now();
    let token: AccessToken;
    try {
      token = await this.acquireToken(this.tokenKey(mailbox));
    } catch (error) {
      if (!(error instanceof TokenFailure)) throw error;
      const text = error.result.kind === 'http' ? error.result.text : error.message;
      steps.push({ name: 'token', ok: false, durationMs: elapsed(started), detail: text.replace(/ — fix: .*$/, ''), failure: error.result, advice: /— fix: (.*)$/.exec(text)?.[1] });
      return steps;
    }
    steps.push({ name: 'token', ok: true, durationMs: elapsed(started), detail: `${this.grantedOf(token)}, expires in ${Math.round((token.expiresAt - Date.now()) / 60_000)} min` });
    const after = await this.checkAfterToken(mailbox, token);
    steps.push(...after);
    if (after.some((s) => !s.ok) || !request.send) return steps;
    const sendStarted = performance.now();
    const results = await this.send(request.send);
    const refused = results.find((r) => r.result.kind !== 'accepted');
    if (!refused) {
      const first = results[0]!.result;
      steps.push({ name: `send to ${request.send.recipients.join(', ')} as ${mailbox}`, ok: true, durationMs: elapsed(sendStarted), detail: first.kind === 'accepted' ? first.reply : 'accepted' });
    } else {
      const failure = refused.result;
      const text = 'text' in failure ? failure.text : 'message' in failure ? failure.message : failure.kind;
      steps.push({
        name: `send to ${request.send.recipients.join(', ')} as ${mailbox}`,
        ok: false,
        durationMs: elapsed(sendStarted),
        detail: text.replace(/ — fix: .*$/, ''),
        failure,
        advice: /— fix: (.*)$/.exec(text)?.[1],
      });
    }
    return steps;
  }

  /** test-upstream for the SMTP path: connect, TLS, AUTH XOAUTH2 with this token; a refused AUTH gets `authFix`. */
  protected async checkSmtpPath(mailbox: string, token: AccessToken, authFix: string): Promise<CheckStep[]> {
    const steps = await checkSmtp(this.smtpConfig(), this.hostname, {}, { user: mailbox, token: async () => token });
    for (const step of steps) if (!step.ok && step.name.startsWith('auth')) step.advice = authFix;
    return steps;
  }

  /** What the token grants, for test-upstream (roles of a Microsoft app token; the scope for Google). */
  protected abstract grantedOf(token: AccessToken): string;

  async close(): Promise<void> {
    await Promise.all([...this.smtpPaths.values()].map((p) => p.close()));
  }
}

export function elapsed(started: number): number {
  return Math.round(performance.now() - started);
}
