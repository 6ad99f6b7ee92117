import type { MessageDsn } from '../message/dsn-parameters.js';

/**
 * The one small interface every upstream implements. An upstream reports *what happened* for each
 * recipient (a reply, an HTTP status, a network or TLS failure); src/delivery decides what that
 * means (delivered, retry, bounce, hold). Upstreams never touch the spool.
 */
import type { MessageBody } from '../message/body.js';
import type { WireCapability, WireResult } from '../message/wire.js';

export interface OutboundMessage {
  /** Spool queue id: stable across retries (idempotency keys, file names). */
  id: string;
  /** "" is the null reverse-path <> (bounces). */
  sender: string;
  recipients: string[];
  /** The bytes: `await body.buffer()` where the whole message is needed, `body.stream()` to send as it is read. */
  body: MessageBody;
  messageId?: string;
  /** RFC 3461 parameters to pass on where the upstream offers DSN (SMTP). */
  dsn?: MessageDsn;
  /** A delivery status notification we generated (sender ""): see Router for how it travels. */
  isBounce?: boolean;
  /** bounce_from: the sender used for a null-sender message where the upstream cannot send from <>. */
  bounceFrom?: string;
  /**
   * For an upstream whose `wire.eightBit` is 'if-offered' (SMTP): `body` is the stored message, and
   * this fits it (src/message/wire.ts) for a session that offers 8-bit or not, each form computed
   * when first asked for and once only (one MIME pass per message, whichever the server needs).
   * Absent: `body` goes as it is (wire-clean, or already fitted).
   */
  fitFor?: (eightBit: boolean) => Promise<WireResult>;
}

export type AttemptResult =
  /** The upstream took responsibility for this recipient. */
  | {
      kind: 'accepted';
      reply: string;
      providerMessageId?: string;
      /** The upstream offered DSN and took our NOTIFY/RET: success notices come from further on. */
      dsnPassedOn?: boolean;
    }
  /** An SMTP reply other than success; `stage` is the command it answered. */
  | { kind: 'smtp'; code: number; enhanced?: string; text: string; stage: SmtpStage }
  /** Could not talk to the upstream at all (refused, reset, timeout, DNS). */
  | { kind: 'network'; errorCode: string; message: string }
  /** TLS failed: certificate rejected, version mismatch, handshake error or timeout. */
  | { kind: 'tls'; errorCode: string; message: string; timeout?: boolean }
  /**
   * An HTTP API answered with a non-success status (or a success whose body reports an error).
   * `provider` selects the provider's classification table; `errorCode` is the provider's own
   * error code or name (e.g. Postmark 406, Resend "validation_error", SES "MessageRejected").
   */
  | { kind: 'http'; provider?: string; status: number; errorCode?: string; text: string; retryAfterMs?: number }
  /**
   * The message cannot be expressed for this upstream (e.g. a signed message for a JSON API).
   * `final`: the upstream's `unsupported = "bounce"` setting — bounce now, try no other upstream.
   */
  | { kind: 'unsupported'; text: string; final?: boolean };

export type SmtpStage = 'connect' | 'auth' | 'mail' | 'rcpt' | 'data';

export interface RecipientResult {
  recipient: string;
  result: AttemptResult;
}

export interface Upstream {
  readonly name: string;
  readonly type: string;
  /**
   * For upstreams that carry the message's own bytes (SMTP, raw-MIME APIs): what they can carry.
   * Delivery makes each message fit before send() (src/message/wire.ts: lines ≤ 998 octets, no
   * bare CR/LF or NUL, 8-bit only where allowed and declared; 'if-offered': the session decides, and
   * delivery hands over the fitting instead, OutboundMessage.fitFor). Absent: the upstream builds its
   * own message (JSON APIs) or stores the bytes as they are (maildir).
   */
  readonly wire?: WireCapability;
  /**
   * The upstream sends a message with the null reverse-path <> as it is (RFC 5321 §4.5.5: bounces
   * use it). Absent or false (every REST API: they need a verified sender), the router sends such
   * a message from `bounce_from` instead.
   */
  readonly acceptsNullSender?: boolean;
  send(message: OutboundMessage): Promise<RecipientResult[]>;
  close(): Promise<void>;
  /**
   * `mailshim test-upstream`: exercise the connection step by step (connect, TLS, auth; for a REST
   * provider its cheapest authenticated call) and, when `send` is given, deliver that message.
   * Reports what happened at each step; the CLI diagnoses. Optional: upstreams without it are
   * reported as "no check available".
   */
  check?(request: CheckRequest): Promise<CheckStep[]>;
}

export interface CheckRequest {
  send?: OutboundMessage;
  /** `--from`: the sender to check as (mailbox providers check that mailbox even without --send-to). */
  from?: string;
}

export interface CheckStep {
  /** e.g. "tcp connect", "greeting + TLS", "auth", "send", "API key" */
  name: string;
  ok: boolean;
  durationMs: number;
  /** What was seen: the server's reply, the TLS version, "not configured", ... */
  detail: string;
  /** On failure: what happened, in the same terms as send() results. */
  failure?: AttemptResult;
  /**
   * On failure: the upstream's own advice (e.g. which config key holds a rejected API key), preferred
   * over the generic diagnosis. On success: an account-level warning with its fix (sandbox, …).
   */
  advice?: string;
}

/** The same result for every recipient (connection-level failures). */
export function forAll(recipients: string[], result: AttemptResult): RecipientResult[] {
  return recipients.map((recipient) => ({ recipient, result }));
}

/** "451 4.3.0 text" → code, enhanced status, text. */
export function parseReply(reply: string): { code: number; enhanced?: string; text: string } | undefined {
  const match = /^(\d{3})[ -](?:(\d\.\d{1,3}\.\d{1,3})\s+)?([\s\S]*)$/.exec(reply.trim());
  if (!match) return undefined;
  return { code: Number(match[1]), enhanced: match[2], text: match[3]!.trim() };
}
