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
