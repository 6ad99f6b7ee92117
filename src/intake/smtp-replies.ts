import { checkAddress } from '../message/addresses.js';

/** Replies that carry their own enhanced status code (see smtp-server-adapter.ts for why that works). */
/** An error smtp-server turns into a reply: `code enhanced text`. */
export class SmtpReply extends Error {
  readonly responseCode: number;
  constructor(code: number, enhanced: string, text: string) {
    super(`${enhanced} ${text}`);
    this.responseCode = code;
  }
}

/**
 * The MAIL/RCPT address check, the same validator the spool's callers use (message/addresses.ts):
 * what passes here is stored, so a message is never refused after DATA for an address accepted
 * before it. Returns the canonical address to store (`"john.doe"@x` becomes `john.doe@x`).
 */
export function checkEnvelopeAddress(address: string, role: 'sender' | 'recipient', requireDomain = role === 'recipient'): string {
  const detail = role === 'sender' ? '5.1.7' : '5.1.3';
  const check = checkAddress(address, { requireDomain });
  if (check.ok) return check.address;
  if (check.reason === 'too-long') throw new SmtpReply(501, detail, `${role === 'sender' ? 'Sender' : 'Recipient'} address too long`);
  if (check.reason === 'unqualified') throw new SmtpReply(553, '5.1.3', 'Recipient address must be a full address (user@domain)');
  throw new SmtpReply(501, detail, `Bad ${role} address syntax`);
}
