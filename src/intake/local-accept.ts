/**
 * The last step of every sendmail-path submission (socket or maildrop): prepend the Received
 * header, `spool.accept()` (resolves after fsync), log the accepted line.
 */
import { SpoolError, SubmitError } from '../errors.js';
import type { Logger } from '../log.js';
import { messageIdOf } from '../message/headers.js';
import type { Spool } from '../spool/spool.js';
import type { Envelope } from '../spool/types.js';
import { fromSendmail, type SendmailDsn } from './dsn-params.js';
import { receivedHeader } from './received.js';

export interface LocalSubmission {
  id: string;
  envelope: Envelope;
  bytes: Buffer;
  /** The submitting user's name (as claimed) and uid (the maildrop file's owner, or as claimed on the socket). */
  user: string;
  uid: number;
  via: 'socket' | 'maildrop';
  /** sendmail -N/-R/-V as the submitter gave them. */
  dsn?: SendmailDsn;
}

export async function acceptLocal(spool: Spool, hostname: string, log: Logger, s: LocalSubmission): Promise<string> {
  const received = receivedHeader({ hostname, protocol: 'local', queueId: s.id, recipients: s.envelope.recipients, user: String(s.uid) });
  const bytes = Buffer.concat([Buffer.from(received, 'latin1'), s.bytes]);
  const messageId = messageIdOf(s.bytes);
  try {
    const dsn = fromSendmail(s.dsn, s.envelope.recipients);
    await spool.accept(s.envelope, bytes, { id: s.id, messageId, origin: { protocol: 'sendmail', user: s.user }, ...(dsn ? { dsn } : {}) });
  } catch (error) {
    const reason = error instanceof SpoolError && error.code === 'ESPOOLFULL' ? 'spool is full' : 'spool write failed';
    throw new SubmitError('ETEMPFAIL', `${reason}; message not accepted`, { cause: error });
  }
  log.info(
    { event: 'accepted', queueId: s.id, messageId, from: s.envelope.sender, recipients: s.envelope.recipients, size: bytes.length, user: s.user, uid: s.uid, via: s.via },
    'accepted',
  );
  return s.id;
}
