/**
 * Turning what a program pipes into sendmail into a well-formed message:
 * LF or CRLF input → CRLF; traditional "." end unless -i; a leading mbox "From " line dropped;
 * -t recipients from To/Cc/Bcc; Bcc always removed (as sendmail and Postfix do); missing
 * Date, Message-ID, From and To (undisclosed-recipients:;) added.
 */
import { SubmitError } from '../errors.js';
import { fieldValue, formatDisplayName, parseHeaderFields, rfc5322Date } from '../message/headers.js';

/** Input bytes → CRLF lines. Stops at a lone "." line unless `ignoreDots`. Bare CR is refused. */
export function normalizeInput(input: Buffer, ignoreDots: boolean): Buffer {
  const text = input.toString('latin1');
  const lines = text.split('\n');
  if (lines[lines.length - 1] === '') lines.pop(); // the final line break
  const out: string[] = [];
  for (let line of lines) {
    if (line.endsWith('\r')) line = line.slice(0, -1);
    if (!ignoreDots && line === '.') break;
    if (line.includes('\r')) throw new SubmitError('EDATAERR', 'message contains a bare CR (carriage return without line feed)');
    out.push(line);
  }
  if (out.length > 0 && out[0]!.startsWith('From ')) out.shift(); // mbox separator, not a header
  return Buffer.from(out.map((l) => l + '\r\n').join(''), 'latin1');
}

const HEADER_LINE = /^[!-9;-~]+:/;

/** Splits CRLF text into header lines and body; a non-header line ends the header block as a blank line would. */
function split(message: string): { header: string; body: string } {
  let offset = 0;
  let first = true;
  while (offset < message.length) {
    const end = message.indexOf('\r\n', offset);
    const line = message.slice(offset, end === -1 ? message.length : end);
    if (line === '') return { header: message.slice(0, offset), body: message.slice(offset) };
    const continuation = !first && /^[ \t]/.test(line);
    if (!HEADER_LINE.test(line) && !continuation) return { header: message.slice(0, offset), body: '\r\n' + message.slice(offset) };
    first = false;
    offset = end === -1 ? message.length : end + 2;
  }
  return { header: message, body: '\r\n' };
}

export interface PrepareOptions {
  /** -t: the address-list reader (recipients.ts, loaded only when -t is given). */
  readRecipients?: (fieldValue: string) => string[];
  /** Envelope sender (already defaulted to the invoking user). */
  sender: string;
  fullName?: string;
  hostname: string;
  /** Unique local part of the Message-ID we add (not the queue id: the daemon picks that later). */
  uniqueId: string;
  now?: Date;
}

export interface Prepared {
  bytes: Buffer;
  /** Recipients found in To/Cc/Bcc when -t was given. */
  headerRecipients: string[];
}

export function prepareMessage(normalized: Buffer, o: PrepareOptions): Prepared {
  const { header, body } = split(normalized.toString('latin1'));
  const fields = parseHeaderFields(header);
  const has = (name: string) => fields.some((f) => f.name.toLowerCase() === name);
  const headerRecipients: string[] = [];
  if (o.readRecipients) {
    for (const field of fields) {
      if (['to', 'cc', 'bcc'].includes(field.name.toLowerCase())) headerRecipients.push(...o.readRecipients(fieldValue(field)));
    }
  }
  const kept = fields.filter((f) => f.name.toLowerCase() !== 'bcc');
  const added: string[] = [];
  if (!has('date')) added.push(`Date: ${rfc5322Date(o.now)}`);
  if (!has('message-id')) added.push(`Message-ID: <${o.uniqueId}@${o.hostname}>`);
  if (!has('from')) {
    const phrase = o.fullName ? `${formatDisplayName(o.fullName)} ` : '';
    added.push(`From: ${phrase}<${o.sender}>`);
  }
  if (!has('to') && !has('cc')) added.push('To: undisclosed-recipients:;');
  const text = kept.map((f) => f.raw).join('') + added.map((l) => l + '\r\n').join('') + body;
  return { bytes: Buffer.from(text, 'latin1'), headerRecipients };
}
