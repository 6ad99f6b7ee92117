/**
 * The DSN parameters of RFC 3461 as one plain shape: read at intake (RCPT NOTIFY/ORCPT, MAIL
 * RET/ENVID, sendmail -N/-R/-V), stored with the message by the spool, passed on by SMTP
 * upstreams. Here, not in the spool, so that upstreams need not reach back into the spool for it.
 */

/** RFC 3461 NOTIFY keywords. ["NEVER"] asks for no notice at all. */
export type NotifyKeyword = 'NEVER' | 'SUCCESS' | 'FAILURE' | 'DELAY';

/** The DSN parameters (RFC 3461) a client gave for one recipient (RCPT NOTIFY/ORCPT, sendmail -N). */
export interface RecipientDsn {
  notify?: NotifyKeyword[];
  /** ORCPT, xtext-decoded: "rfc822;bob@example.net". */
  orcpt?: string;
}

/** The DSN parameters of a submission: MAIL RET/ENVID (sendmail -R/-V) and each recipient's. */
export interface MessageDsn {
  ret?: 'FULL' | 'HDRS';
  envid?: string;
  /** By recipient address as given in the envelope. */
  recipients?: Record<string, RecipientDsn>;
}
