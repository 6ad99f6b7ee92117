/**
 * Delivery status notifications (RFC 3464 multipart/report; report-type=delivery-status) for
 * recipients that failed permanently or expired. The original headers are attached as
 * text/rfc822-headers (not the body: the sender has it, and we never echo attachments around).
 */
import { randomBytes } from 'node:crypto';
import { rfc5322Date, splitHeaders } from '../message/headers.js';
import type { NewMessage } from '../spool/spool.js';
import type { MessageRecord, RecipientState } from '../spool/types.js';

export interface DsnInput {
  record: MessageRecord;
  failed: RecipientState[];
  originalMessage: Buffer | undefined;
  hostname: string;
  bounceFrom: string;
  now: Date;
}

/** One line, no CR/LF, bounded: reply texts come from remote servers. */
function clean(text: string, max = 900): string {
  return text.replace(/[\r\n]+/g, ' ').replace(/[^\x20-\x7e]/g, '?').slice(0, max);
}

export function buildDsn(input: DsnInput): Buffer {
  const { record, failed, hostname, bounceFrom, now } = input;
  const boundary = `${record.id}/${hostname}/${randomBytes(6).toString('hex')}`;
  const date = rfc5322Date(now);
  const expired = failed.some((r) => r.dsnStatus === '4.4.7');

  const human = [
    `This is the mail system at host ${hostname}.`,
    '',
    "I'm sorry to have to inform you that your message could not",
    'be delivered to one or more recipients. The details are below.',
    '',
    ...failed.map((r) => `<${r.address}>: ${clean(r.lastReply ?? 'delivery failed')}`),
    ...(expired ? ['', 'Delivery was retried until the maximum queue lifetime passed.'] : []),
    '',
  ];

  const perMessage = [
    `Reporting-MTA: dns; ${hostname}`,
    `X-Mailshim-Queue-ID: ${record.id}`,
    ...(record.sender ? [`X-Original-Envelope-From: rfc822; ${clean(record.sender, 300)}`] : []),
    `Arrival-Date: ${rfc5322Date(new Date(record.receivedAt))}`,
  ];
  const perRecipient = failed.flatMap((r) => [
    '',
    `Final-Recipient: rfc822; ${clean(r.address, 300)}`,
    'Action: failed',
    `Status: ${r.dsnStatus ?? '5.0.0'}`,
    ...(r.lastReply ? [`Diagnostic-Code: ${/^\d{3}\b/.test(r.lastReply) ? 'smtp' : 'x-mailshim'}; ${clean(r.lastReply)}`] : []),
    ...(r.lastAttemptAt ? [`Last-Attempt-Date: ${rfc5322Date(new Date(r.lastAttemptAt))}`] : []),
  ]);

  const originalHeaders = input.originalMessage ? splitHeaders(input.originalMessage).header.replace(/\r?\n/g, '\r\n').replace(/(\r\n)*$/, '\r\n') : '';
  const originalSubject = /^Subject:[ \t]*(.*)$/im.exec(originalHeaders)?.[1]?.trim();

  const lines = [
    `From: Mail Delivery System <${bounceFrom}>`,
    `To: <${record.sender}>`,
    `Subject: Undelivered Mail Returned to Sender${originalSubject ? `: ${clean(originalSubject, 200)}` : ''}`,
    `Date: ${date}`,
    `Message-ID: <${record.id}.${randomBytes(4).toString('hex')}.dsn@${hostname}>`,
    'Auto-Submitted: auto-replied',
    'MIME-Version: 1.0',
    `Content-Type: multipart/report; report-type=delivery-status;\r\n\tboundary="${boundary}"`,
    '',
    'This is a MIME-encapsulated message.',
    '',
    `--${boundary}`,
    'Content-Description: Notification',
    'Content-Type: text/plain; charset=us-ascii',
    '',
    ...human,
    `--${boundary}`,
    'Content-Description: Delivery report',
    'Content-Type: message/delivery-status',
    '',
    ...perMessage,
    ...perRecipient,
    '',
    `--${boundary}`,
    'Content-Description: Undelivered Message Headers',
    'Content-Type: text/rfc822-headers',
    '',
  ];
  return Buffer.concat([Buffer.from(lines.join('\r\n') + '\r\n'), Buffer.from(originalHeaders, 'latin1'), Buffer.from(`\r\n--${boundary}--\r\n`)]);
}

export interface DsnSettings {
  hostname: string;
  bounceFrom: string;
}

/**
 * The DSN to commit alongside an outcome (in the same spool transaction), or nothing. Never bounce
 * a bounce (or a message with the null sender): that is how mail loops start.
 */
export function dsnMessages(record: MessageRecord, failed: RecipientState[], raw: Buffer | undefined, settings: DsnSettings, now: number): NewMessage[] {
  if (failed.length === 0 || record.isBounce || record.sender === '') return [];
  const bytes = buildDsn({ record, failed, originalMessage: raw, hostname: settings.hostname, bounceFrom: settings.bounceFrom, now: new Date(now) });
  return [{ envelope: { sender: settings.bounceFrom, recipients: [record.sender] }, bytes, meta: { origin: { protocol: 'dsn' }, isBounce: true } }];
}
