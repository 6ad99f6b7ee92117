/**
 * Turning what a program pipes into sendmail into a well-formed message:
 * LF or CRLF input → CRLF; traditional "." end unless -i; a leading mbox "From " line dropped;
 * -t recipients from To/Cc/Bcc; Bcc always removed (as sendmail and Postfix do); missing
 * Date, Message-ID, From and To (undisclosed-recipients:;) added.
 */
import { SubmitError } from '../errors.js';
import { parseAddressList } from '../message/addresses.js';
import { fieldValue, headerBlock, HOP_COUNT_LIMIT, missingHeaders, parseHeaderFields } from '../message/headers.js';

/**
 * Input bytes → CRLF lines. Stops at a lone "." line unless `ignoreDots`. Anything else is kept
 * as written — a CR without LF (progress bars), NUL, 8-bit in any charset, lines of any length,
 * no final newline (one is added): cron must never lose a job's output. Delivery makes it legal
 * on the wire without losing a byte (src/message/wire.ts).
 */
export function normalizeInput(input: Buffer, ignoreDots: boolean): Buffer {
  const text = input.toString('latin1');
  const lines = text.split('\n');
  if (lines[lines.length - 1] === '') lines.pop(); // the final line break
  const out: string[] = [];
  for (let line of lines) {
    if (line.endsWith('\r')) line = line.slice(0, -1);
    if (!ignoreDots && line === '.') break;
    out.push(line);
  }
  if (out.length > 0 && out[0]!.startsWith('From ')) out.shift(); // mbox separator, not a header
  return Buffer.from(out.map((l) => l + '\r\n').join(''), 'latin1');
}

export interface PrepareOptions {
  /** -t: take recipients from To/Cc/Bcc. */
  readRecipients?: boolean;
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
  // A non-header line ends the header block as a blank line would; the blank line is then added.
  const { end } = headerBlock(normalized, true);
  const fields = parseHeaderFields(normalized.toString('latin1', 0, end));
  const body = '\r\n' + normalized.toString('latin1', end);
  if (fields.filter((f) => f.name.toLowerCase() === 'received').length + 1 > HOP_COUNT_LIMIT) {
    // Postfix would accept and bounce (5.4.0 "too many hops"); the caller is right here, so say it now.
    throw new SubmitError('EDATAERR', `too many hops: more than ${HOP_COUNT_LIMIT} Received: headers (a mail loop)`);
  }
  const headerRecipients: string[] = [];
  if (o.readRecipients) {
    for (const field of fields) {
      if (['to', 'cc', 'bcc'].includes(field.name.toLowerCase())) headerRecipients.push(...parseAddressList(fieldValue(field)).map((m) => m.address));
    }
  }
  // Bcc and the other DROPPED_HEADERS are removed by the daemon on every path (intake/local-accept.ts).
  const added = missingHeaders(fields, { hostname: o.hostname, queueId: o.uniqueId, from: o.sender, fullName: o.fullName, now: o.now });
  if (!fields.some((f) => ['to', 'cc'].includes(f.name.toLowerCase()))) added.push('To: undisclosed-recipients:;');
  const text = fields.map((f) => f.raw).join('') + added.map((l) => l + '\r\n').join('') + body;
  return { bytes: Buffer.from(text, 'latin1'), headerRecipients };
}
