/**
 * What SMTP intake does to the bytes of DATA before they are stored. Like Postfix's smtpd, we
 * accept what allowed clients send — bare CR, NUL, 8-bit, long lines are content, and delivery
 * makes them legal on the wire (message/wire.ts) — with one exception, the bare LF.
 *
 * SMTP smuggling (CVE-2023-51764 class): a line ending that is not CRLF is how a second message
 * is hidden inside the first, for receivers that take "\n.\n" as end-of-data. smtp-server ends
 * DATA only on "\r\n.\r\n", so such bytes always reach us inside one message. A bare LF is then
 * either normalised to CRLF (default, Postfix's smtpd_forbid_bare_newline = normalize) or the
 * message is refused ("reject"). Normalised, a smuggled "\n.\n" is a "." line of this message's
 * body, which every SMTP client dot-stuffs on the way out: no upstream can see two messages.
 */
import type { BareNewline } from '../config/types.js';
import { SmtpReply } from './smtp-replies.js';

const CRLF = Buffer.from('\r\n');

/**
 * Bare LF → CRLF. (A client that ends lines with bare LF also dot-stuffs the lines after them,
 * as Python's smtplib does; smtp-server already removes a stuffed dot after any LF.)
 * Returns the same buffer when there is nothing to do. `previous`: the byte before `data`, when
 * it continues a message (DATA normalised piece by piece), so a CR ending one piece pairs with an
 * LF starting the next.
 */
export function normalizeBareLf(data: Buffer, previous?: number): Buffer {
  let lf = data.indexOf(0x0a);
  const parts: Buffer[] = [];
  let start = 0;
  while (lf !== -1) {
    if (lf === 0 ? previous !== 0x0d : data[lf - 1] !== 0x0d) {
      parts.push(data.subarray(start, lf), CRLF);
      start = lf + 1;
    }
    lf = data.indexOf(0x0a, lf + 1);
  }
  if (parts.length === 0) return data;
  parts.push(data.subarray(start));
  return Buffer.concat(parts);
}

/** DATA as received → the bytes to store, or the reply refusing it. */
export function acceptData(data: Buffer, bareNewline: BareNewline): Buffer | SmtpReply {
  const normalized = normalizeBareLf(data);
  if (normalized === data) return data;
  return bareLfRefusal(bareNewline) ?? normalized;
}

/** The reply to a message with a bare LF: refused where the listener says so, else undefined (normalised). */
export function bareLfRefusal(bareNewline: BareNewline): SmtpReply | undefined {
  // Postfix's reply for smtpd_forbid_bare_newline = reject.
  return bareNewline === 'reject' ? new SmtpReply(550, '5.5.2', 'Error: bare <LF> received') : undefined;
}
