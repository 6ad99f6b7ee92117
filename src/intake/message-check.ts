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
 * Returns the same buffer when there is nothing to do.
 */
export function normalizeBareLf(data: Buffer): Buffer {
  let lf = data.indexOf(0x0a);
  const parts: Buffer[] = [];
  let start = 0;
  while (lf !== -1) {
    if (lf === 0 || data[lf - 1] !== 0x0d) {
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
  // Postfix's reply for smtpd_forbid_bare_newline = reject.
  if (bareNewline === 'reject') return new SmtpReply(550, '5.5.2', 'Error: bare <LF> received');
  return normalized;
}

/** The offset of the first bare CR or bare LF, or -1 (the sendmail path's check, below). */
export function findBareLineBreak(data: Buffer): number {
  let lf = data.indexOf(0x0a);
  let cr = data.indexOf(0x0d);
  while (lf !== -1 || cr !== -1) {
    if (cr !== -1 && (lf === -1 || cr < lf)) {
      if (data[cr + 1] !== 0x0a) return cr;
      lf = data.indexOf(0x0a, cr + 2);
      cr = data.indexOf(0x0d, cr + 2);
    } else {
      return lf; // an LF before any CR cannot be part of a CRLF
    }
  }
  return -1;
}

/**
 * The checks every sendmail-path message gets before it is spooled, whether it came over the
 * submission socket or from a maildrop file (which any local user can write by hand). One
 * function, so the two paths cannot drift apart; called from acceptLocal(). Returns the reason
 * to refuse, or undefined.
 */
export function localMessageProblem(data: Buffer): string | undefined {
  if (findBareLineBreak(data) !== -1) return 'message contains bare CR or LF line endings';
  if (data.indexOf(0) !== -1) return 'message contains NUL characters';
  return undefined;
}
