/**
 * Minimal RFC 5322 header-block helpers used on the hot path (intake, DSNs, sendmail header
 * completion). Full MIME parsing is left to mailparser where a message must be understood;
 * these only split the header block from the body and read or edit unfolded fields.
 */
import { formatDisplayName } from './addresses.js';

export interface HeaderField {
  /** Field name as written. */
  name: string;
  /** Raw field text including the name, folded lines and the trailing line break. */
  raw: string;
}

/** A field's first line: a name of printable ASCII but ":" (RFC 5322 §2.2), then ":". */
const FIELD_START = /^[!-9;-~]+:/;

/**
 * The one header/body splitter. The header block ends after the first empty line (CRLF or bare
 * LF; `separated`), or at the end of the message. With `stopAtNonHeader` it also ends before the
 * first line that is neither a field nor a continuation (not `separated`): how the sendmail
 * path reads what a program pipes in, as Postfix's cleanup does ("Subject: x\nhello" has a body).
 */
export function headerBlock(message: Buffer, stopAtNonHeader = false): { end: number; separated: boolean } {
  let offset = 0;
  while (offset < message.length) {
    const newline = message.indexOf(0x0a, offset);
    const next = newline === -1 ? message.length : newline + 1;
    if (newline === offset || (newline === offset + 1 && message[offset] === 0x0d)) return { end: next, separated: true };
    if (stopAtNonHeader) {
      const continuation = offset > 0 && (message[offset] === 0x20 || message[offset] === 0x09);
      if (!continuation && !FIELD_START.test(message.toString('latin1', offset, next))) return { end: offset, separated: false };
    }
    offset = next;
  }
  return { end: message.length, separated: false };
}

/** Byte offset where the body starts (after the blank line), or the length when there is no body. */
export function headerEnd(message: Buffer): number {
  return headerBlock(message).end;
}

/** The header block (with the blank line that ends it) and the body. */
export function splitHeaders(message: Buffer): { header: string; body: Buffer } {
  const end = headerEnd(message);
  return { header: message.subarray(0, end).toString('latin1'), body: message.subarray(end) };
}

/** Header fields in order; continuation lines stay attached to their field. */
export function parseHeaderFields(header: string): HeaderField[] {
  const fields: HeaderField[] = [];
  for (const line of header.split(/(?<=\n)/)) {
    if (line === '\r\n' || line === '\n' || line === '') continue;
    if ((line.startsWith(' ') || line.startsWith('\t')) && fields.length > 0) {
      fields[fields.length - 1]!.raw += line;
      continue;
    }
    const colon = line.indexOf(':');
    fields.push({ name: colon > 0 ? line.slice(0, colon).trim() : line.trim(), raw: line });
  }
  return fields;
}

/** Unfolded value of a field, without the name. */
export function fieldValue(field: HeaderField): string {
  const colon = field.raw.indexOf(':');
  return field.raw
    .slice(colon + 1)
    .replace(/\r?\n[ \t]/g, ' ')
    .replace(/\r?\n$/, '')
    .trim();
}

export function getHeader(header: string, name: string): string | undefined {
  const lower = name.toLowerCase();
  const field = parseHeaderFields(header).find((f) => f.name.toLowerCase() === lower);
  return field ? fieldValue(field) : undefined;
}

export function messageIdOf(message: Buffer): string | undefined {
  const id = getHeader(splitHeaders(message).header, 'Message-ID');
  return id ? id.slice(0, 998) : undefined;
}

/** RFC 5322 date-time in the local zone offset, e.g. "Mon, 23 Nov 2026 03:22:47 +0000". */
export function rfc5322Date(date = new Date()): string {
  const days = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];
  const months = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
  const pad = (n: number) => String(n).padStart(2, '0');
  const offset = -date.getTimezoneOffset();
  const sign = offset >= 0 ? '+' : '-';
  const abs = Math.abs(offset);
  return (
    `${days[date.getDay()]}, ${pad(date.getDate())} ${months[date.getMonth()]} ${date.getFullYear()} ` +
    `${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())} ${sign}${pad(Math.floor(abs / 60))}${pad(abs % 60)}`
  );
}

/** Replaces the header block's fields (the separator and body stay byte for byte). */
export function rebuildHeaders(message: Buffer, edit: (fields: HeaderField[]) => string[]): Buffer {
  const { header, body } = splitHeaders(message);
  const fields = parseHeaderFields(header);
  const separator = header.slice(fields.map((f) => f.raw).join('').length);
  return Buffer.concat([Buffer.from(edit(fields).join('') + separator, 'latin1'), body]);
}

/**
 * Never relayed, on any path: Postfix's message_drop_headers default. Bcc and Resent-Bcc would
 * show every recipient the blind copies; Return-Path is the receiver's to add; Content-Length
 * describes the sender's storage, not what arrives.
 */
export const DROPPED_HEADERS: ReadonlySet<string> = new Set(['bcc', 'content-length', 'resent-bcc', 'return-path']);

export function dropHeaders(message: Buffer): Buffer {
  const { header } = splitHeaders(message);
  const fields = parseHeaderFields(header);
  if (!fields.some((f) => DROPPED_HEADERS.has(f.name.toLowerCase()))) return message;
  return rebuildHeaders(message, (all) => all.filter((f) => !DROPPED_HEADERS.has(f.name.toLowerCase())).map((f) => f.raw));
}

/** Postfix hop_count_limit: a message with more Received: headers than this is a mail loop. */
export const HOP_COUNT_LIMIT = 50;

/** Received: fields in the header block. */
export function hopCount(message: Buffer): number {
  return parseHeaderFields(splitHeaders(message).header).filter((f) => f.name.toLowerCase() === 'received').length;
}

export interface HeaderCompletion {
  hostname: string;
  queueId: string;
  /** Envelope sender for a From: we add; undefined = add no From. */
  from?: string;
  /** Display name for that From (sendmail -F). */
  fullName?: string;
  now?: Date;
}

/** Lines (without CRLF) for the Date:, Message-ID: and From: the message lacks, as Postfix's cleanup adds them. */
export function missingHeaders(fields: readonly HeaderField[], c: HeaderCompletion): string[] {
  const has = (name: string) => fields.some((f) => f.name.toLowerCase() === name);
  const added: string[] = [];
  if (!has('date')) added.push(`Date: ${rfc5322Date(c.now)}`);
  if (!has('message-id')) added.push(`Message-ID: <${c.queueId}@${c.hostname}>`);
  if (!has('from') && c.from !== undefined) added.push(`From: ${c.fullName ? `${formatDisplayName(c.fullName)} ` : ''}<${c.from}>`);
  return added;
}

/** The message with the missing Date:, Message-ID: and From: added at the end of its header block. */
export function completeHeaders(message: Buffer, c: HeaderCompletion): Buffer {
  const added = missingHeaders(parseHeaderFields(splitHeaders(message).header), c);
  return added.length === 0 ? message : rebuildHeaders(message, (fields) => [...fields.map((f) => f.raw), ...added.map((l) => `${l}\r\n`)]);
}
