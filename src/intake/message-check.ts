/**
 * Checks on the bytes of DATA before anything is stored. Each returns the SMTP reply to send, so a
 * malformed message is refused with a clear code instead of being relayed for another MTA to
 * misread.
 */
import { SmtpReply } from './smtp-replies.js';

/**
 * SMTP smuggling defence (CVE-2023-51764 class): a line ending that is not CRLF inside DATA is how
 * a second message is hidden in the first, for receivers that accept "\n.\n" as end-of-data.
 * smtp-server only ends DATA on "\r\n.\r\n", so such bytes reach us inside the message; we refuse
 * the message outright rather than relay bytes another MTA could split differently.
 * Returns the offset of the first bare CR or bare LF, or -1.
 */
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

/** RFC 5322 §2.1.1: lines are at most 998 octets, excluding CRLF. */
export const MAX_HEADER_LINE = 998;

function headerBlockEnd(data: Buffer): number {
  if (data[0] === 0x0d && data[1] === 0x0a) return 0;
  const end = data.indexOf('\r\n\r\n');
  return end === -1 ? data.length : end + 2;
}

export function checkMessage(data: Buffer): SmtpReply | undefined {
  if (findBareLineBreak(data) !== -1) return new SmtpReply(554, '5.6.0', 'Message contains bare CR or LF line endings; use CRLF');
  if (data.indexOf(0) !== -1) return new SmtpReply(554, '5.6.0', 'Message contains NUL characters');
  const headerEnd = headerBlockEnd(data);
  let start = 0;
  while (start < headerEnd) {
    const eol = data.indexOf('\r\n', start);
    const end = eol === -1 || eol > headerEnd ? headerEnd : eol;
    if (end - start > MAX_HEADER_LINE) return new SmtpReply(554, '5.6.0', `Header line longer than ${MAX_HEADER_LINE} octets`);
    start = end + 2;
  }
  const header = data.subarray(0, headerEnd);
  // 8-bit header text must at least be valid UTF-8 (RFC 6532); raw Latin-1 bytes would be mangled downstream.
  if (header.some((byte) => byte >= 0x80)) {
    try {
      new TextDecoder('utf-8', { fatal: true }).decode(header);
    } catch {
      return new SmtpReply(554, '5.6.0', 'Message headers contain invalid UTF-8');
    }
  }
  return undefined;
}
