/**
 * Delivery status notifications (RFC 3464 multipart/report; report-type=delivery-status), sent
 * from the null reverse-path <> (RFC 5321 §4.5.5) like Postfix's: failures (bounces), "relayed"
 * notices for NOTIFY=SUCCESS when the upstream did not take the request on, and optional delay
 * warnings (delay_warning_time). RFC 3461 is honoured: NOTIFY=NEVER (sendmail -N never) sends
 * nothing, ORCPT and ENVID are echoed, RET=FULL returns the message (up to BOUNCE_SIZE_LIMIT, as
 * Postfix's bounce_size_limit), otherwise only the headers are returned (text/rfc822-headers: the
 * sender has the body, and we never echo attachments around unasked).
 */
import { isUtf8 } from 'node:buffer';
import { randomBytes } from 'node:crypto';
import MimeNode from 'nodemailer/lib/mime-node';
import { headerEnd, rfc5322Date } from '../message/headers.js';
import { buildMimeSync } from '../message/mime-sync.js';
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

/** One line, no control characters, bounded (reply texts come from remote servers); non-ASCII as '?' unless `unicode`. */
function clean(text: string, max = 900, unicode = false): string {
  const line = text.replace(/[\r\n]+/g, ' ').replace(/[\x00-\x1f\x7f]/g, '?');
  return (unicode ? line : line.replace(/[^\x20-\x7e]/g, '?')).slice(0, max);
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

/**
 * The notice as a MIME tree composed by nodemailer (header encoding, folding, boundary, transfer
 * encodings), serialised synchronously (message/mime-sync.ts says why). Three parts, RFC 3464 §2:
 * the explanation for people, the delivery report for programs, and what is returned of the
 * original (its headers, or with RET=FULL the whole message up to BOUNCE_SIZE_LIMIT).
 */
export function buildDsn(input: DsnInput): Buffer {
  return buildMimeSync(composeDsn(input));
}

/** The notice's MIME tree, before serialisation (exported for the test that compares serialisers). */
export function composeDsn(input: DsnInput): MimeNode {
  const { record, hostname, bounceFrom, now } = input;
  const kind = input.kind ?? 'failure';
  const original = input.originalMessage === undefined ? undefined : crlf(input.originalMessage);
  const root = new MimeNode('multipart/report; report-type=delivery-status', { baseBoundary: `${record.id}-${randomBytes(6).toString('hex')}`, hostname });
  const subject = original ? /^Subject:[ \t]*(.*(?:\r\n[ \t].*)*)/im.exec(headerText(original))?.[1]?.replace(/\r\n/g, '') : undefined;
  root.setHeader([
    { key: 'From', value: { name: 'Mail Delivery System', address: bounceFrom } },
    { key: 'To', value: { address: record.sender } },
    { key: 'Subject', value: `${WORDING[kind].subject}${subject?.trim() ? `: ${clean(subject.trim(), 200, true)}` : ''}` },
    { key: 'Date', value: rfc5322Date(now) },
    { key: 'Message-ID', value: `<${record.id}.${randomBytes(4).toString('hex')}.dsn@${hostname}>` },
    { key: 'Auto-Submitted', value: 'auto-replied' },
  ]);
  root.createChild('text/plain; charset=us-ascii').setHeader('Content-Description', 'Notification').setContent(notificationText(input, kind));
  const report = deliveryReport(input, kind);
  const reportPart = root.createChild(report.global ? 'message/global-delivery-status' : 'message/delivery-status').setHeader('Content-Description', 'Delivery report');
  if (report.global) reportPart.setHeader('Content-Transfer-Encoding', '8bit');
  reportPart.setContent(Buffer.from(report.text, 'utf8'));
  if (original) returnedPart(root, original, kind === 'failure' && record.dsnRet === 'FULL' && original.length <= BOUNCE_SIZE_LIMIT, kind);
  return root;
}

/** Part 1, for people: what happened, one line per recipient with the reply that explains it. */
function notificationText(input: DsnInput, kind: NoticeKind): string {
  const { record, failed, hostname, now } = input;
  const expired = failed.some((r) => r.dsnStatus === '4.4.7');
  return [
    `This is the mail system at host ${hostname}.`,
    '',
    ...WORDING[kind].intro,
    ...(kind === 'delay' && input.maxAge ? [`It has been queued for ${hours(now.getTime() - record.receivedAt)}; delivery is retried until it is ${hours(input.maxAge)} old.`] : []),
    '',
    ...failed.map((r) => `<${clean(r.address, 300, true)}>: ${clean(kind === 'success' ? `delivered via ${r.upstream ?? 'upstream'}: ${r.lastReply ?? ''}` : (r.lastReply ?? 'delivery failed'))}`),
    ...(expired && kind === 'failure' ? ['', 'Delivery was retried until the maximum queue lifetime passed.'] : []),
    '',
  ].join('\r\n');
}

/**
 * Part 2, for programs (RFC 3464 §2.2, §2.3): the per-message fields, then one block per
 * recipient. A UTF-8 address (SMTPUTF8) makes it message/global-delivery-status with the "utf-8"
 * address type (RFC 6533 §3); otherwise everything is ASCII.
 */
function deliveryReport(input: DsnInput, kind: NoticeKind): { text: string; global: boolean } {
  const { record, failed, hostname } = input;
  const global = !isAscii(record.sender) || failed.some((r) => !isAscii(r.address) || (r.orcpt !== undefined && !isAscii(r.orcpt)));
  const perMessage = [
    `Reporting-MTA: dns; ${hostname}`,
    `X-Mailshim-Queue-ID: ${record.id}`,
    ...(record.envid ? [`Original-Envelope-Id: ${clean(record.envid, 100)}`] : []),
    ...(record.sender ? [`X-Original-Envelope-From: ${address(record.sender)}`] : []),
    `Arrival-Date: ${rfc5322Date(new Date(record.receivedAt))}`,
  ];
  const perRecipient = failed.map((r) =>
    [
      `Final-Recipient: ${address(r.address)}`,
      ...(r.orcpt ? [`Original-Recipient: ${clean(r.orcpt, 300, true)}`] : []),
      `Action: ${WORDING[kind].action}`,
      `Status: ${kind === 'success' ? '2.0.0' : kind === 'delay' ? transientStatus(r.lastReply) : (r.dsnStatus ?? '5.0.0')}`,
      ...(r.lastReply ? [`Diagnostic-Code: ${/^\d{3}\b/.test(r.lastReply) ? 'smtp' : 'x-mailshim'}; ${clean(r.lastReply)}`] : []),
      ...(r.lastAttemptAt ? [`Last-Attempt-Date: ${rfc5322Date(new Date(r.lastAttemptAt))}`] : []),
      ...(kind === 'delay' && input.maxAge ? [`Will-Retry-Until: ${rfc5322Date(new Date(record.receivedAt + input.maxAge))}`] : []),
    ].join('\r\n'),
  );
  return { text: [perMessage.join('\r\n'), ...perRecipient].join('\r\n\r\n') + '\r\n', global };
}

/**
 * Part 3: the original. RET=FULL (failures only, within the size limit) returns it whole, as
 * message/rfc822 — message/global when its header is UTF-8 (RFC 6533 §3.5) — labelled 8bit when
 * it has 8-bit bytes; otherwise only its header, as text/rfc822-headers (RFC 6522), or
 * message/global-headers for a UTF-8 header. Other 8-bit headers are quoted-printable by nodemailer.
 */
function returnedPart(root: MimeNode, original: Buffer, full: boolean, kind: NoticeKind): void {
  const header = headerOf(original);
  const utf8Header = !isAscii(header) && isUtf8(header);
  if (full) {
    const part = root.createChild(utf8Header ? 'message/global' : 'message/rfc822').setHeader('Content-Description', 'Undelivered Message');
    if (!isAscii(original)) part.setHeader('Content-Transfer-Encoding', '8bit');
    part.setContent(original);
    return;
  }
  const part = root.createChild(utf8Header ? 'message/global-headers' : 'text/rfc822-headers');
  part.setHeader('Content-Description', kind === 'failure' ? 'Undelivered Message Headers' : 'Message Headers');
  if (utf8Header) part.setHeader('Content-Transfer-Encoding', '8bit');
  // An ASCII string lets nodemailer pick 7bit; 8-bit bytes stay bytes (quoted-printable, never re-decoded).
  part.setContent(utf8Header || !isAscii(header) ? header : header.toString('latin1'));
}

/** The original with CRLF line ends and exactly one CRLF at the end. */
function crlf(message: Buffer): Buffer {
  return Buffer.from(
    message
      .toString('latin1')
      .replace(/\r?\n/g, '\r\n')
      .replace(/(\r\n)*$/, '\r\n'),
    'latin1',
  );
}

/** The header of a crlf() message, ending in one CRLF (the whole message when it has no body). */
function headerOf(message: Buffer): Buffer {
  const end = headerEnd(message);
  return message.subarray(0, end === message.length ? end : Math.max(0, end - 2));
}

function headerText(message: Buffer): string {
  const header = headerOf(message);
  return isUtf8(header) ? header.toString('utf8') : header.toString('latin1');
}

function isAscii(text: string | Buffer): boolean {
  return typeof text === 'string' ? /^[\x00-\x7f]*$/.test(text) : !text.some((b) => b > 0x7f);
}

/** An address field value: "rfc822; a@b", or "utf-8; …" for a UTF-8 address (RFC 6533 §3). */
function address(value: string): string {
  return isAscii(value) ? `rfc822; ${clean(value, 300)}` : `utf-8; ${clean(value, 300, true)}`;
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
 * `original` gives the message to quote (undefined: missing); it is called only when a notice is built.
 */
export function noticeMessages(record: MessageRecord, kind: NoticeKind, recipients: RecipientState[], original: () => Buffer | undefined, settings: DsnSettings, now: number): NewMessage[] {
  if (record.isBounce || record.sender === '') return [];
  const wanted = recipients.filter((r) => wantsNotice(r, kind));
  if (wanted.length === 0) return [];
  const bytes = buildDsn({ record, failed: wanted, originalMessage: original(), hostname: settings.hostname, bounceFrom: settings.bounceFrom, now: new Date(now), kind, maxAge: settings.maxAge });
  // The null reverse-path: nothing may bounce back. Upstreams that need a verified sender (REST
  // APIs) send it from bounce_from instead (Router).
  return [{ envelope: { sender: '', recipients: [record.sender] }, bytes, meta: { origin: { protocol: 'dsn' }, isBounce: true } }];
}

/** The failure notice (bounce) for recipients that failed permanently or expired. */
export function dsnMessages(record: MessageRecord, failed: RecipientState[], original: () => Buffer | undefined, settings: DsnSettings, now: number): NewMessage[] {
  return noticeMessages(record, 'failure', failed, original, settings, now);
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
      const head = part.slice(0, end).replace(/\r\n[ \t]+/g, ' ');
      const body = part.slice(end + 4).replace(/\r\n$/, '');
      const encoding = /^Content-Transfer-Encoding: *(\S+)/im.exec(head)?.[1]?.toLowerCase();
      // nodemailer may have quoted-printable encoded a part (long or 8-bit lines): the plain text carries it decoded.
      const decoded = encoding === 'quoted-printable' ? decodeQuotedPrintable(body) : encoding === 'base64' ? Buffer.from(body, 'base64').toString('latin1') : body;
      return { description: /^Content-Description: *(.*)/im.exec(head)?.[1]?.trim() ?? '', body: decoded.replace(/\r\n$/, '') };
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

/**
 * RFC 2045 6.7 decoding of a part nodemailer encoded (latin1 string in, latin1 string out): soft
 * line breaks, then =XX. Three lines here rather than libqp, which the daemon loads only when a
 * message needs re-encoding (src/message/wire.ts) and which this synchronous path cannot await.
 */
function decodeQuotedPrintable(body: string): string {
  return body.replace(/=\r?\n/g, '').replace(/=([0-9A-Fa-f]{2})/g, (_, hex: string) => String.fromCharCode(parseInt(hex, 16)));
}
