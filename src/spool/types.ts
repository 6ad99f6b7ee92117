/** Records the spool stores. Plain data (serialised with msgpack by lmdb). */

export interface Envelope {
  /** Envelope sender (MAIL FROM); "" is the null reverse-path <>. */
  sender: string;
  recipients: string[];
}

export type RecipientStatus = 'pending' | 'deferred' | 'delivered' | 'failed';
export type OutcomeClass = 'delivered' | 'transient' | 'permanent' | 'config';

export interface AttemptNote {
  at: number;
  upstream: string;
  outcome: OutcomeClass;
  reply: string;
}

export type { MessageDsn, NotifyKeyword, RecipientDsn } from '../message/dsn-parameters.js';
import type { MessageDsn, NotifyKeyword } from '../message/dsn-parameters.js';

export interface RecipientState {
  address: string;
  /** RFC 3461 NOTIFY; absent = the default (a notice on failure; on delay when delay_warning_time is set). */
  notify?: NotifyKeyword[];
  /** RFC 3461 ORCPT as received, xtext-decoded. */
  orcpt?: string;
  /** A delay notice was sent for this recipient (delay_warning_time). */
  delayNotified?: boolean;
  status: RecipientStatus;
  attempts: number;
  lastAttemptAt?: number;
  /** Last reply text, e.g. "451 4.3.0 try again later". */
  lastReply?: string;
  lastClass?: OutcomeClass;
  /** RFC 3463 status of the final outcome, used in DSNs. */
  dsnStatus?: string;
  upstream?: string;
  /** The provider's id for the delivered message ("250 Ok <id>", X-Message-Id, ...). */
  providerMessageId?: string;
  /** Most recent attempts, newest last, capped. */
  history: AttemptNote[];
}

export interface Origin {
  protocol: 'smtp' | 'esmtp' | 'sendmail' | 'dsn' | 'local';
  client?: string;
  helo?: string;
  user?: string;
}

export interface MessageRecord {
  id: string;
  sender: string;
  recipients: RecipientState[];
  receivedAt: number;
  size: number;
  messageId?: string;
  origin: Origin;
  /** A DSN we generated: never bounced itself, whatever its envelope sender. */
  isBounce: boolean;
  /** RFC 3461 RET: return the full message or only its headers in a failure notice. */
  dsnRet?: 'FULL' | 'HDRS';
  /** RFC 3461 ENVID, xtext-decoded. */
  envid?: string;
  held: boolean;
  /** When delivery is next due; null while held or once nothing is left to deliver. */
  nextAttemptAt: number | null;
  attempts: number;
  /**
   * Present when the body is a file, `<spool>/bodies/<id>` (body-files.ts), rather than in LMDB;
   * with what the wire scan found at accept time, so delivery can stream the file without reading
   * it first (message/wire.ts: `wireClean` bytes need no fitting; `eightBit` for BODY=8BITMIME).
   */
  bodyFile?: { wireClean: boolean; eightBit: boolean };
  /** CRC-32 of the stored body, written at accept time (absent on records from before 0.1). */
  bodyCrc32?: number;
  /** Why the message was held by the integrity check (its stored copy is damaged). */
  damaged?: string;
  /** "uid:token" when the submitter gave an idempotency token; becomes a tombstone when the message goes. */
  tokenKey?: string;
}

export interface AcceptMeta {
  /** A queue id chosen in advance (e.g. named in a Received header); generated when absent. */
  id?: string;
  messageId?: string;
  origin: Origin;
  isBounce?: boolean;
  dsn?: MessageDsn;
}

export const HISTORY_LIMIT = 10;

export function isFinal(state: RecipientState): boolean {
  return state.status === 'delivered' || state.status === 'failed';
}

/** The operator's view of a message's state: see states.ts, which derives it. */
export type { MessageState } from './states.js';

/** A provider event as a retained message's history shows it (webhook or poll). */
export interface ProviderEventNote {
  at: number;
  /** hard_bounce, complaint, delivered, … (src/events/types.ts EVENT_TYPES). */
  type: string;
  reason?: string;
  status?: string;
  /** The provider's event id, when it has one: a repeated event is recorded once. */
  eventId?: string;
}

/** One recipient an upstream accepted with a provider message id, as retained after delivery. */
export interface SentRecipient {
  address: string;
  upstream: string;
  providerMessageId: string;
  notify?: NotifyKeyword[];
  orcpt?: string;
  acceptedAt: number;
  /** The upstream's answer ("HTTP 200 id=…"). */
  reply?: string;
  /** The delivery attempts, as the queue record had them. */
  history: AttemptNote[];
  /** Provider events for this recipient, newest last, capped at SENT_EVENTS_LIMIT. */
  events: ProviderEventNote[];
  /** Set once a provider reported a permanent failure: the sender was told (or did not ask to be) then, and never again. */
  failedAt?: number;
  /** Whether a failure notice was queued then (not for NOTIFY=NEVER, a bounce, or the null sender). */
  noticeQueued?: boolean;
  /** Set once a complaint was recorded (the admin is told at most once). */
  complainedAt?: number;
}

/**
 * What the spool keeps of a message after an upstream accepted it with a provider message id
 * (events.retention): enough to match a later provider event and tell the sender — the envelope,
 * the RFC 3461 parameters and the original headers, never the body. Not queued mail: it is in no
 * queue count, listing or due index.
 */
export interface SentRecord {
  id: string;
  sender: string;
  messageId?: string;
  isBounce: boolean;
  dsnRet?: 'FULL' | 'HDRS';
  envid?: string;
  receivedAt: number;
  size: number;
  /** When the latest recipient was accepted: the record is kept events.retention after it. */
  retainedAt: number;
  /** The original header section (latin1), capped at SENT_HEADERS_LIMIT bytes. */
  headers: string;
  recipients: SentRecipient[];
}

/** Header bytes kept per retained message (the rest are cut at a line boundary). */
export const SENT_HEADERS_LIMIT = 16 * 1024;
/** Provider events kept per retained recipient. */
export const SENT_EVENTS_LIMIT = 20;
