/** SMTP submission upstream (587 STARTTLS, 465 implicit TLS, or plain on loopback) via nodemailer. */
import nodemailer, { type Transporter } from 'nodemailer';
import type MimeNode from 'nodemailer/lib/mime-node/index.js';
import type SMTPPool from 'nodemailer/lib/smtp-pool/index.js';
import type { SmtpUpstreamConfig } from '../config/types.js';
import { adaptNodemailer, type SessionBodyEnvelope } from './nodemailer-adapter.js';
import { bodyForSession } from './session-body.js';
import { checkSmtp } from './smtp-check.js';
import { connectionOptions, resultOfError, type NodemailerError, type OAuthTokenProvider } from './smtp-errors.js';
import type { MessageBody } from '../message/body.js';
import type { MessageDsn } from '../message/dsn-parameters.js';
import { forAll, type CheckRequest, type CheckStep, type OutboundMessage, type RecipientResult, type Upstream } from './types.js';

/**
 * What MAIL FROM declares about the bytes a session sends, where the server advertises the
 * extension (nodemailer checks EHLO): SIZE= (RFC 1870, so an oversize message is refused before its
 * body is sent), BODY=8BITMIME when any byte is 8-bit (RFC 6152; Postfix does the same). SMTPUTF8
 * (RFC 6531) is added by nodemailer itself when an envelope address is not ASCII. Only a
 * declaration: which bytes a session sends is src/upstreams/session-body.ts's decision.
 */
function declaration(body: Pick<MessageBody, 'size' | 'eightBit'>): { size: number; use8BitMime: boolean } {
  return { size: body.size, use8BitMime: body.eightBit };
}

/**
 * nodemailer copies extra envelope keys through to SMTPConnection.send(), where the adapter asks
 * `sessionBody` for the bytes and sets `size` and `use8BitMime` for them (smtp-connection
 * `_setEnvelope` reads those); nodemailer's MimeNode.Envelope type does not list them.
 */
type SessionEnvelope = MimeNode.Envelope & SessionBodyEnvelope;

/** What nodemailer builds its own (discarded) message stream from: see sendTransaction. */
const DISCARDED = Buffer.from('\r\n');

/** The form a session needs cannot be made (src/message/wire.ts says why): the attempt reports it, nothing is sent. */
class UnsupportedForSession extends Error {
  /** nodemailer's code for a refused message: the pool resets the connection and keeps it. */
  readonly code = 'EMESSAGE';
}

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

export class SmtpUpstream implements Upstream {
  readonly type = 'smtp';
  readonly acceptsNullSender = true;
  readonly name: string;
  /**
   * 8-bit parts stay 8-bit where the session's EHLO offers 8BITMIME, 7-bit otherwise: delivery hands
   * over its fitting (OutboundMessage.fitFor) and each session asks for the form it can carry
   * (src/upstreams/session-body.ts).
   */
  readonly wire = { eightBit: 'if-offered' } as const;
  private readonly transport: Transporter<SMTPPool.SentMessageInfo>;

  constructor(
    private readonly config: SmtpUpstreamConfig,
    private readonly hostname: string,
    private readonly oauth?: OAuthTokenProvider,
  ) {
    this.name = config.name;
    adaptNodemailer();
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
        oauth.token(renew).then(
          (token) => callback(null, token.value, token.expiresAt),
          (error: Error) => callback(error),
        );
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
    let info: SMTPPool.SentMessageInfo;
    const sessionBody = async (extensions: readonly string[]) => {
      const chosen = await bodyForSession(message.body, message.fitFor, extensions);
      if ('unsupported' in chosen) throw new UnsupportedForSession(chosen.unsupported);
      // Streamed: a spooled body file is read as it is sent (a damaged one fails the stream before the final ".").
      // Wire-clean bytes have no bare CR or LF: nodemailer's dot-stuffing need only look at line starts.
      return { raw: chosen.body.stream(), ...declaration(chosen.body), crlfOnly: chosen.body.wireClean };
    };
    try {
      info = await this.transport.sendMail({
        envelope: { from: message.sender, to: recipients, sessionBody } satisfies SessionEnvelope,
        // nodemailer builds a stream of `raw` that the adapter discards for sessionBody's: a
        // placeholder, so that a body file is read once, as it is sent.
        raw: DISCARDED,
        ...(message.dsn ? { dsn: dsnParameters(message.dsn, recipients[0]!) } : {}),
      });
    } catch (caught) {
      if (caught instanceof UnsupportedForSession) return forAll(recipients, { kind: 'unsupported', text: caught.message });
      const error = caught as NodemailerError;
      if (error.rejectedErrors?.length) return this.perRecipient(recipients, [], error.rejectedErrors, error);
      return forAll(recipients, resultOfError(error, message.body.size));
    }
    const dsnPassedOn = message.dsn !== undefined && (info.ehlo ?? []).some((keyword) => /^DSN\b/i.test(keyword));
    return this.perRecipient(recipients, info.accepted, info.rejectedErrors ?? [], undefined, info.response, dsnPassedOn);
  }

  private perRecipient(recipients: string[], accepted: string[], rejected: NodemailerError[], fallback: NodemailerError | undefined, response = '', dsnPassedOn = false): RecipientResult[] {
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
