/** SMTP submission upstream (587 STARTTLS, 465 implicit TLS, or plain on loopback) via nodemailer. */
import { isIP } from 'node:net';
import nodemailer, { type Transporter } from 'nodemailer';
import type MimeNode from 'nodemailer/lib/mime-node/index.js';
import type SMTPPool from 'nodemailer/lib/smtp-pool/index.js';
import type { SmtpUpstreamConfig } from '../config/types.js';
import { checkSmtp } from './smtp-check.js';
import { TLS_CONFIG_CODE } from './tls-codes.js';
import type { MessageDsn } from '../spool/types.js';
import { forAll, parseReply, type AttemptResult, type CheckRequest, type CheckStep, type OutboundMessage, type RecipientResult, type SmtpStage, type Upstream } from './types.js';

interface NodemailerError extends Error {
  code?: string;
  originalCode?: string;
  /** Set by nodemailer on its own phase timeouts, e.g. "UPGRADE_TIMEOUT" for the TLS handshake. */
  timeoutType?: string;
  response?: string;
  responseCode?: number;
  command?: string;
  rejectedErrors?: NodemailerError[];
  recipient?: string;
}

interface SendInfo {
  /** The server's EHLO keywords. */
  ehlo?: string[];
  accepted: string[];
  rejected: string[];
  rejectedErrors?: NodemailerError[];
  response: string;
}

/** Node's TLS error codes that mean "this certificate is not acceptable" (kept for the REST transport). */
export const CERT_ERROR = TLS_CONFIG_CODE;

export function stageOf(command: string | undefined): SmtpStage {
  const c = (command ?? '').toUpperCase();
  if (c.startsWith('AUTH')) return 'auth';
  if (c.startsWith('MAIL')) return 'mail';
  if (c.startsWith('RCPT')) return 'rcpt';
  if (c.startsWith('DATA') || c === 'MESSAGE') return 'data';
  return 'connect';
}

/**
 * Translates one nodemailer error into what happened, by its codes (never its message text):
 * the socket's own code (`originalCode`: ECONNRESET, CERT_HAS_EXPIRED, ...) first, then
 * nodemailer's (ETLS, EAUTH, ESOCKET, ...).
 */
export function resultOfError(error: NodemailerError, size?: number): AttemptResult {
  const reply = error.response ? parseReply(error.response) : undefined;
  if (reply && error.responseCode) {
    return { kind: 'smtp', code: reply.code, enhanced: reply.enhanced, text: reply.text, stage: stageOf(error.command) };
  }
  if (error.code === 'EMESSAGE' && error.command === 'MAIL FROM') {
    // nodemailer refused to send a message larger than the server's EHLO SIZE: a permanent
    // refusal, as Postfix's smtp client reports it, and the body was never uploaded.
    const limit = /(\d+)\s*$/.exec(error.message)?.[1];
    return { kind: 'smtp', code: 552, enhanced: '5.3.4', text: `message size ${size ?? '?'} exceeds size limit ${limit ?? '?'} of server`, stage: 'mail' };
  }
  const system = error.originalCode ?? '';
  if (TLS_CONFIG_CODE.test(system)) return { kind: 'tls', errorCode: system, message: error.message };
  if (error.code === 'ETLS' || error.timeoutType === 'UPGRADE_TIMEOUT') {
    // The handshake failed without a certificate verdict (closed, reset, timed out): the network.
    return { kind: 'tls', errorCode: system || error.code || 'ETLS', message: error.message, timeout: error.timeoutType !== undefined };
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
    // Strictly longer than the greeting timeout: a server that never greets is reported as such
    // ("Greeting never received", the implicit-TLS hint), not as an idle socket; the two used to race.
    socketTimeout: config.timeout + 1000,
    // SNI takes host names only (RFC 6066); an IP literal is verified against the certificate's IP SANs.
    tls: { ...(config.ca ? { ca: config.ca } : {}), ...(isIP(config.host) ? {} : { servername: config.host }), minVersion: 'TLSv1.2' as const },
  };
}

/**
 * What MAIL FROM declares about the message, where the server advertises the extension (nodemailer
 * checks EHLO): SIZE= (RFC 1870, so an oversize message is refused before its body is sent),
 * BODY=8BITMIME when any byte is 8-bit (RFC 6152; Postfix does the same). SMTPUTF8 (RFC 6531) is
 * added by nodemailer itself when an envelope address is not ASCII. Only a declaration: turning
 * 8-bit into 7-bit for a server without 8BITMIME is the message encoder's job, not this one's.
 */
export function declaration(raw: Buffer): { size: number; use8BitMime: boolean } {
  let eightBit = false;
  for (let i = 0; i < raw.length && !eightBit; i++) eightBit = raw[i]! > 0x7f;
  return { size: raw.length, use8BitMime: eightBit };
}

/**
 * nodemailer copies extra envelope keys through to SMTPConnection.send(), which reads `size` and
 * `use8BitMime` (smtp-connection `_setEnvelope`); @types/nodemailer does not list them.
 */
type DeclaredEnvelope = MimeNode.Envelope & ReturnType<typeof declaration>;

/** The RFC 3461 parameters for one transaction (its recipients share NOTIFY and ORCPT). */
function dsnParameters(dsn: MessageDsn, recipient: string): { ret?: string; envid?: string; notify?: string; orcpt?: string } {
  const own = dsn.recipients?.[recipient];
  return {
    ...(dsn.ret ? { ret: dsn.ret } : {}),
    ...(dsn.envid ? { envid: dsn.envid } : {}),
    ...(own?.notify?.length ? { notify: own.notify.join(',') } : {}),
    ...(own?.orcpt ? { orcpt: own.orcpt } : {}),
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
  readonly acceptsNullSender = true;
  readonly name: string;
  /** 7-bit: the pooled client cannot see the server's EHLO before the bytes are chosen (src/message/wire.ts). */
  readonly wire = { eightBit: false };
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
    // nodemailer passes one NOTIFY/ORCPT for a whole transaction: recipients whose DSN parameters
    // differ go in transactions of their own (one, in the usual case of none given).
    const groups = new Map<string, string[]>();
    for (const recipient of message.recipients) {
      const own = message.dsn?.recipients?.[recipient];
      const key = JSON.stringify([own?.notify ?? null, own?.orcpt ?? null]);
      groups.set(key, [...(groups.get(key) ?? []), recipient]);
    }
    const results = await Promise.all([...groups.values()].map((recipients) => this.sendTransaction(message, recipients)));
    return results.flat();
  }

  private async sendTransaction(message: OutboundMessage, recipients: string[]): Promise<RecipientResult[]> {
    let info: SendInfo;
    try {
      info = (await this.transport.sendMail({
        envelope: { from: message.sender, to: recipients, ...declaration(message.raw) } satisfies DeclaredEnvelope,
        raw: message.raw,
        ...(message.dsn ? { dsn: dsnParameters(message.dsn, recipients[0]!) } : {}),
      })) as unknown as SendInfo;
    } catch (caught) {
      const error = caught as NodemailerError;
      if (error.rejectedErrors?.length) return this.perRecipient(recipients, [], error.rejectedErrors, error);
      return forAll(recipients, resultOfError(error, message.raw.length));
    }
    const dsnPassedOn = message.dsn !== undefined && (info.ehlo ?? []).some((keyword) => /^DSN\b/i.test(keyword));
    return this.perRecipient(recipients, info.accepted, info.rejectedErrors ?? [], undefined, info.response, dsnPassedOn);
  }

  private perRecipient(
    recipients: string[],
    accepted: string[],
    rejected: NodemailerError[],
    fallback: NodemailerError | undefined,
    response = '',
    dsnPassedOn = false,
  ): RecipientResult[] {
    const acceptedSet = new Set(accepted.map((a) => a.toLowerCase()));
    const providerMessageId = /(?:queued as|Ok:?|id=?)\s*<?([^\s<>]+)>?\s*$/i.exec(response)?.[1];
    return recipients.map((recipient) => {
      if (acceptedSet.has(recipient.toLowerCase())) {
        return { recipient, result: { kind: 'accepted', reply: response, providerMessageId, ...(dsnPassedOn ? { dsnPassedOn } : {}) } };
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
