/**
 * Delivery status notifications (RFC 3464 multipart/report; report-type=delivery-status), sent
 * from the null reverse-path <> (RFC 5321 §4.5.5) like Postfix's: failures (bounces), "relayed"
 * notices for NOTIFY=SUCCESS when the upstream did not take the request on, and optional delay
 * warnings (delay_warning_time). RFC 3461 is honoured: NOTIFY=NEVER (sendmail -N never) sends
 * nothing, ORCPT and ENVID are echoed, RET=FULL returns the message (up to BOUNCE_SIZE_LIMIT, as
 * Postfix's bounce_size_limit), otherwise only the headers are returned (text/rfc822-headers: the
 * sender has the body, and we never echo attachments around unasked).
 */
import { randomBytes } from 'node:crypto';
import { rfc5322Date, splitHeaders } from '../message/headers.js';
import type { NewMessage } from '../spool/spool.js';
import type { MessageRecord, NotifyKeyword, RecipientState } from '../spool/types.js';
import { parseReply } from '../upstreams/types.js';
import { agreedStatus } from './classify.js';

/** Postfix's bounce_size_limit default: the most of the original message a notice returns. */
export const BOUNCE_SIZE_LIMIT = 50_000;

export type NoticeKind = 'failure' | 'success' | 'delay';

export interface DsnInput {
  record: MessageRecord;
  /** The recipients this notice reports on. */
  failed: RecipientState[];
  originalMessage: Buffer | undefined;
  hostname: string;
  bounceFrom: string;
  now: Date;
  kind?: NoticeKind;
  /** For delay notices: how long delivery is retried (max_age), in ms. */
  maxAge?: number;
}

/** One line, no CR/LF, bounded: reply texts come from remote servers. */
function clean(text: string, max = 900): string {
  return text.replace(/[\r\n]+/g, ' ').replace(/[^\x20-\x7e]/g, '?').slice(0, max);
}

const WORDING: Record<NoticeKind, { subject: string; action: string; intro: string[] }> = {
  failure: {
    subject: 'Undelivered Mail Returned to Sender',
    action: 'failed',
    intro: ["I'm sorry to have to inform you that your message could not", 'be delivered to one or more recipients. The details are below.'],
  },
  success: {
    subject: 'Successful Mail Delivery Report',
    action: 'relayed',
    intro: [
      'Your message was successfully delivered to the destination(s)',
      'listed below. The next system did not offer delivery notifications,',
      'so you may still receive notices of delivery errors from other systems.',
    ],
  },
  delay: {
    subject: 'Delayed Mail (still being retried)',
    action: 'delayed',
    intro: [
      '####################################################################',
      '# THIS IS A WARNING ONLY.  YOU DO NOT NEED TO RESEND YOUR MESSAGE. #',
      '####################################################################',
      '',
      'Your message could not be delivered yet to the recipients below.',
    ],
  },
};

function hours(ms: number): string {
  const h = Math.round(ms / 3_600_000);
  return h >= 48 ? `${Math.round(h / 24)} day(s)` : `${Math.max(h, 0)} hour(s)`;
}

export function buildDsn(input: DsnInput): Buffer {
  const { record, failed, hostname, bounceFrom, now } = input;
  const kind = input.kind ?? 'failure';
  const wording = WORDING[kind];
  const boundary = `${record.id}/${hostname}/${randomBytes(6).toString('hex')}`;
  const date = rfc5322Date(now);
  const expired = failed.some((r) => r.dsnStatus === '4.4.7');

  const human = [
    `This is the mail system at host ${hostname}.`,
    '',
    ...wording.intro,
    ...(kind === 'delay' && input.maxAge
      ? [`It has been queued for ${hours(now.getTime() - record.receivedAt)}; delivery is retried until it is ${hours(input.maxAge)} old.`]
      : []),
    '',
    ...failed.map((r) => `<${r.address}>: ${clean(kind === 'success' ? `delivered via ${r.upstream ?? 'upstream'}: ${r.lastReply ?? ''}` : (r.lastReply ?? 'delivery failed'))}`),
    ...(expired && kind === 'failure' ? ['', 'Delivery was retried until the maximum queue lifetime passed.'] : []),
    '',
  ];

  const perMessage = [
    `Reporting-MTA: dns; ${hostname}`,
    `X-Mailshim-Queue-ID: ${record.id}`,
    ...(record.envid ? [`Original-Envelope-Id: ${clean(record.envid, 100)}`] : []),
    ...(record.sender ? [`X-Original-Envelope-From: rfc822; ${clean(record.sender, 300)}`] : []),
    `Arrival-Date: ${rfc5322Date(new Date(record.receivedAt))}`,
  ];
  const perRecipient = failed.flatMap((r) => [
    '',
    `Final-Recipient: rfc822; ${clean(r.address, 300)}`,
    ...(r.orcpt ? [`Original-Recipient: ${clean(r.orcpt, 300)}`] : []),
    `Action: ${wording.action}`,
    `Status: ${kind === 'success' ? '2.0.0' : kind === 'delay' ? transientStatus(r.lastReply) : (r.dsnStatus ?? '5.0.0')}`,
    ...(r.lastReply ? [`Diagnostic-Code: ${/^\d{3}\b/.test(r.lastReply) ? 'smtp' : 'x-mailshim'}; ${clean(r.lastReply)}`] : []),
    ...(r.lastAttemptAt ? [`Last-Attempt-Date: ${rfc5322Date(new Date(r.lastAttemptAt))}`] : []),
    ...(kind === 'delay' && input.maxAge ? [`Will-Retry-Until: ${rfc5322Date(new Date(record.receivedAt + input.maxAge))}`] : []),
  ]);

  const original = input.originalMessage;
  const originalHeaders = original ? splitHeaders(original).header.replace(/\r?\n/g, '\r\n').replace(/(\r\n)*$/, '\r\n') : '';
  const originalSubject = /^Subject:[ \t]*(.*)$/im.exec(originalHeaders)?.[1]?.trim();
  // RET=FULL asks for the whole message; a failure notice then returns it, up to the size limit.
  const returnFull = kind === 'failure' && record.dsnRet === 'FULL' && original !== undefined && original.length <= BOUNCE_SIZE_LIMIT;

  const lines = [
    `From: Mail Delivery System <${bounceFrom}>`,
    `To: <${record.sender}>`,
    `Subject: ${wording.subject}${originalSubject ? `: ${clean(originalSubject, 200)}` : ''}`,
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
    ...(returnFull
      ? ['Content-Description: Undelivered Message', 'Content-Type: message/rfc822']
      : [`Content-Description: ${kind === 'failure' ? 'Undelivered Message Headers' : 'Message Headers'}`, 'Content-Type: text/rfc822-headers']),
    '',
  ];
  const attached = returnFull ? Buffer.from(original.toString('latin1').replace(/\r?\n/g, '\r\n').replace(/(\r\n)*$/, '\r\n'), 'latin1') : Buffer.from(originalHeaders, 'latin1');
  return Buffer.concat([Buffer.from(lines.join('\r\n') + '\r\n'), attached, Buffer.from(`\r\n--${boundary}--\r\n`)]);
}

/** The status of a deferred recipient's last reply ("450 4.2.1 busy" → 4.2.1), for delay notices. */
function transientStatus(lastReply: string | undefined): string {
  const reply = lastReply ? parseReply(lastReply) : undefined;
  const status = reply ? agreedStatus(reply.code, reply.enhanced) : undefined;
  return status?.startsWith('4.') ? status : '4.0.0';
}

export interface DsnSettings {
  hostname: string;
  bounceFrom: string;
  /** delay_warning_time in ms; 0 or absent = no delay notices (the default, as in Postfix). */
  delayWarning?: number;
  /** max_age, for the "retried until" line of delay notices. */
  maxAge?: number;
}

/**
 * Whether the sender asked for (or by default gets) this kind of notice for this recipient
 * (RFC 3461 §4.1): without NOTIFY, failures are reported, and delays when delay notices are on.
 */
export function wantsNotice(state: RecipientState, kind: NoticeKind): boolean {
  const notify: NotifyKeyword[] | undefined = state.notify;
  if (!notify || notify.length === 0) return kind !== 'success';
  return notify.includes(kind === 'failure' ? 'FAILURE' : kind === 'success' ? 'SUCCESS' : 'DELAY');
}

/**
 * The notice to commit alongside an outcome (in the same spool transaction), or nothing. Never
 * notify about a bounce (or a message with the null sender): that is how mail loops start.
 */
export function noticeMessages(record: MessageRecord, kind: NoticeKind, recipients: RecipientState[], raw: Buffer | undefined, settings: DsnSettings, now: number): NewMessage[] {
  if (record.isBounce || record.sender === '') return [];
  const wanted = recipients.filter((r) => wantsNotice(r, kind));
  if (wanted.length === 0) return [];
  const bytes = buildDsn({ record, failed: wanted, originalMessage: raw, hostname: settings.hostname, bounceFrom: settings.bounceFrom, now: new Date(now), kind, maxAge: settings.maxAge });
  // The null reverse-path: nothing may bounce back. Upstreams that need a verified sender (REST
  // APIs) send it from bounce_from instead (Router).
  return [{ envelope: { sender: '', recipients: [record.sender] }, bytes, meta: { origin: { protocol: 'dsn' }, isBounce: true } }];
}

/** The failure notice (bounce) for recipients that failed permanently or expired. */
export function dsnMessages(record: MessageRecord, failed: RecipientState[], raw: Buffer | undefined, settings: DsnSettings, now: number): NewMessage[] {
  return noticeMessages(record, 'failure', failed, raw, settings, now);
}

/**
 * The same notice as plain text, for an upstream that cannot carry multipart/report (JSON APIs
 * that build the MIME themselves): the explanation, the delivery report and the returned headers
 * inline, under the notice's own From/To/Subject. Only for notices built by buildDsn.
 */
export function plainTextNotice(raw: Buffer): Buffer | undefined {
  const text = raw.toString('latin1');
  const split = text.indexOf('\r\n\r\n');
  if (split === -1) return undefined;
  const head = text.slice(0, split);
  const boundary = /boundary="([^"]+)"/.exec(head)?.[1];
  if (!boundary) return undefined;
  const parts = text
    .slice(split + 4)
    .split(`--${boundary}`)
    .slice(1, -1)
    .map((part) => {
      const end = part.indexOf('\r\n\r\n');
      return { description: /Content-Description: *(.*)/i.exec(part.slice(0, end))?.[1]?.trim() ?? '', body: part.slice(end + 4).replace(/\r\n$/, '') };
    });
  if (parts.length === 0) return undefined;
  const keep = head
    .replace(/\r\n[ \t]+/g, ' ')
    .split('\r\n')
    .filter((line) => !/^(MIME-Version|Content-Type|Content-Transfer-Encoding):/i.test(line));
  const body = parts.map((p, i) => (i === 0 ? p.body : `----- ${p.description} -----\r\n\r\n${p.body}`)).join('\r\n\r\n');
  const eightBit = /[\x80-\xff]/.test(body);
  const headers = [...keep, 'MIME-Version: 1.0', `Content-Type: text/plain; charset=${eightBit ? 'utf-8' : 'us-ascii'}`, `Content-Transfer-Encoding: ${eightBit ? '8bit' : '7bit'}`];
  return Buffer.from(`${headers.join('\r\n')}\r\n\r\n${body}\r\n`, 'latin1');
}
