/**
 * The last step of every sendmail-path submission (socket or maildrop): bare LF → CRLF (as SMTP
 * intake does by default), prepend the Received header, drop the DROPPED_HEADERS (Bcc, ...),
 * `spool.acceptOnce()` (resolves after fsync; idempotent per token), log the accepted line (or the
 * duplicate). Every other byte is kept — a bare CR, NUL, 8-bit, long lines: whatever a program
 * wrote (issue 19); delivery makes it legal on the wire (message/wire.ts), so nothing of it can
 * reach an upstream raw.
 */
import { SpoolError, SubmitError } from '../errors.js';
import type { Logger } from '../log.js';
import { dropHeaders, messageIdOf } from '../message/headers.js';
import { newQueueId } from '../spool/ids.js';
import type { Accepted, Spool, SubmitToken } from '../spool/spool.js';
import type { Envelope } from '../spool/types.js';
import { fromSendmail, type SendmailDsn } from './dsn-params.js';
import { normalizeBareLf } from './message-check.js';
import { receivedHeader } from './received.js';

export interface LocalSubmission {
  envelope: Envelope;
  bytes: Buffer;
  /** The submitting user's name (as claimed) and uid (the maildrop file's owner, or as claimed on the socket). */
  user: string;
  uid: number;
  via: 'socket' | 'maildrop';
  /** The submitter's idempotency token (scoped to `uid`). */
  token?: string;
  /** sendmail -N/-R/-V as the submitter gave them. */
  dsn?: SendmailDsn;
}

/**
 * Refuses what must never be spooled from the sendmail path, whether it came over the socket or
 * from a maildrop file anyone can write: a message without recipients. SubmitError EUSAGE:
 * permanent, the caller tells the submitter (socket) or sets the file aside (maildrop).
 */
export function checkLocalSubmission(envelope: Envelope): void {
  if (envelope.recipients.length === 0) throw new SubmitError('EUSAGE', 'no recipients');
}

export async function acceptLocal(spool: Spool, hostname: string, log: Logger, s: LocalSubmission): Promise<Accepted> {
  checkLocalSubmission(s.envelope);
  const id = newQueueId();
  const received = receivedHeader({ hostname, protocol: 'local', queueId: id, recipients: s.envelope.recipients, user: String(s.uid) });
  const bytes = Buffer.concat([Buffer.from(received, 'latin1'), dropHeaders(normalizeBareLf(s.bytes))]);
  const messageId = messageIdOf(s.bytes);
  const token: SubmitToken | undefined = s.token === undefined ? undefined : { uid: s.uid, token: s.token };
  let accepted: Accepted;
  try {
    const dsn = fromSendmail(s.dsn, s.envelope.recipients);
    accepted = await spool.acceptOnce(s.envelope, bytes, { id, messageId, origin: { protocol: 'sendmail', user: s.user }, ...(dsn ? { dsn } : {}) }, token);
  } catch (error) {
    const reason = error instanceof SpoolError && error.code === 'ESPOOLFULL' ? 'spool is full' : 'spool write failed';
    throw new SubmitError('ETEMPFAIL', `${reason}; message not accepted`, { cause: error });
  }
  if (accepted.duplicate) {
    log.info({ event: 'duplicate', queueId: accepted.id, messageId, user: s.user, uid: s.uid, via: s.via }, 'submission already queued under the same token; not queued again');
    return accepted;
  }
  log.info({ event: 'accepted', queueId: id, messageId, from: s.envelope.sender, recipients: s.envelope.recipients, size: bytes.length, user: s.user, uid: s.uid, via: s.via }, 'accepted');
  return accepted;
}
