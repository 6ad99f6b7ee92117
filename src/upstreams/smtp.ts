/** SMTP submission upstream (587 STARTTLS, 465 implicit TLS, or plain on loopback) via nodemailer. */
import { isIP } from 'node:net';
import nodemailer, { type Transporter } from 'nodemailer';
import type SMTPPool from 'nodemailer/lib/smtp-pool/index.js';
import type { SmtpUpstreamConfig } from '../config/types.js';
import { checkSmtp } from './smtp-check.js';
import { forAll, parseReply, type AttemptResult, type CheckRequest, type CheckStep, type OutboundMessage, type RecipientResult, type SmtpStage, type Upstream } from './types.js';

interface NodemailerError extends Error {
  code?: string;
  originalCode?: string;
  response?: string;
  responseCode?: number;
  command?: string;
  rejectedErrors?: NodemailerError[];
  recipient?: string;
}

interface SendInfo {
  accepted: string[];
  rejected: string[];
  rejectedErrors?: NodemailerError[];
  response: string;
}

/** Node's TLS error codes that mean "this certificate is not acceptable". */
export const CERT_ERROR = /CERT|SELF_SIGNED|UNABLE_TO_VERIFY|UNABLE_TO_GET_ISSUER|ERR_TLS|ALTNAME|EPROTO|ERR_SSL/;

export function stageOf(command: string | undefined): SmtpStage {
  const c = (command ?? '').toUpperCase();
  if (c.startsWith('AUTH')) return 'auth';
  if (c.startsWith('MAIL')) return 'mail';
  if (c.startsWith('RCPT')) return 'rcpt';
  if (c.startsWith('DATA') || c === 'MESSAGE') return 'data';
  return 'connect';
}

/** Translates one nodemailer error into what happened. */
export function resultOfError(error: NodemailerError): AttemptResult {
  const reply = error.response ? parseReply(error.response) : undefined;
  if (reply && error.responseCode) {
    return { kind: 'smtp', code: reply.code, enhanced: reply.enhanced, text: reply.text, stage: stageOf(error.command) };
  }
  const system = error.originalCode ?? '';
  if (error.code === 'ETLS' || CERT_ERROR.test(system) || /certificate|TLS|SSL/i.test(error.message)) {
    return { kind: 'tls', errorCode: system || error.code || 'ETLS', message: error.message, timeout: /timeout/i.test(error.message) };
  }
  if (error.code === 'EAUTH') {
    return { kind: 'smtp', code: 535, enhanced: '5.7.8', text: error.message, stage: 'auth' };
  }
  return { kind: 'network', errorCode: system || error.code || 'EUNKNOWN', message: error.message };
}

/** How to reach and secure the upstream; shared by delivery and `test-upstream`. */
export function connectionOptions(config: SmtpUpstreamConfig, hostname: string) {
  const timeout = Math.min(config.timeout, 30_000);
  return {
    host: config.host,
    port: config.port,
    secure: config.tls === 'implicit',
    requireTLS: config.tls === 'starttls',
    ignoreTLS: config.tls === 'none',
    name: hostname,
    connectionTimeout: timeout,
    greetingTimeout: timeout,
    socketTimeout: config.timeout,
    // SNI takes host names only (RFC 6066); an IP literal is verified against the certificate's IP SANs.
    tls: { ...(config.ca ? { ca: config.ca } : {}), ...(isIP(config.host) ? {} : { servername: config.host }), minVersion: 'TLSv1.2' as const },
  };
}

/**
 * SASL XOAUTH2 instead of a password (the m365 and gmail upstreams' SMTP path): the mailbox to
 * authenticate as and where its access token comes from. `renew` is true when the server refused
 * the previous token; the result's expiresAt tells nodemailer when to ask again.
 */
export interface OAuthTokenProvider {
  user: string;
  token(renew: boolean): Promise<{ value: string; expiresAt: number }>;
}

export class SmtpUpstream implements Upstream {
  readonly type = 'smtp';
  readonly name: string;
  private readonly transport: Transporter<SMTPPool.SentMessageInfo>;

  constructor(
    private readonly config: SmtpUpstreamConfig,
    private readonly hostname: string,
    private readonly oauth?: OAuthTokenProvider,
  ) {
    this.name = config.name;
    const options: SMTPPool.Options = {
      ...connectionOptions(config, hostname),
      pool: true,
      maxConnections: config.maxConcurrency,
      auth: oauth ? { type: 'OAuth2', user: oauth.user } : config.username !== undefined ? { user: config.username, pass: config.password ?? '' } : undefined,
      disableFileAccess: true,
      disableUrlAccess: true,
    };
    this.transport = nodemailer.createTransport(options);
    if (oauth) {
      this.transport.set('oauth2_provision_cb', (_user: string, renew: boolean, callback: (error: Error | null, token?: string, expires?: number) => void) => {
        oauth.token(renew).then((token) => callback(null, token.value, token.expiresAt), (error: Error) => callback(error));
      });
    }
  }

  async send(message: OutboundMessage): Promise<RecipientResult[]> {
    let info: SendInfo;
    try {
      info = (await this.transport.sendMail({
        envelope: { from: message.sender, to: message.recipients },
        raw: message.raw,
      })) as unknown as SendInfo;
    } catch (caught) {
      const error = caught as NodemailerError;
      if (error.rejectedErrors?.length) return this.perRecipient(message.recipients, [], error.rejectedErrors, error);
      return forAll(message.recipients, resultOfError(error));
    }
    return this.perRecipient(message.recipients, info.accepted, info.rejectedErrors ?? [], undefined, info.response);
  }

  private perRecipient(
    recipients: string[],
    accepted: string[],
    rejected: NodemailerError[],
    fallback: NodemailerError | undefined,
    response = '',
  ): RecipientResult[] {
    const acceptedSet = new Set(accepted.map((a) => a.toLowerCase()));
    const providerMessageId = /(?:queued as|Ok:?|id=?)\s*<?([^\s<>]+)>?\s*$/i.exec(response)?.[1];
    return recipients.map((recipient) => {
      if (acceptedSet.has(recipient.toLowerCase())) {
        return { recipient, result: { kind: 'accepted', reply: response, providerMessageId } };
      }
      const error = rejected.find((e) => e.recipient?.toLowerCase() === recipient.toLowerCase()) ?? fallback;
      if (!error) return { recipient, result: { kind: 'network', errorCode: 'EUNKNOWN', message: 'no reply for recipient' } };
      return { recipient, result: resultOfError(error) };
    });
  }

  check(request: CheckRequest): Promise<CheckStep[]> {
    return checkSmtp(this.config, this.hostname, request, this.oauth);
  }

  async close(): Promise<void> {
    this.transport.close();
  }
}
