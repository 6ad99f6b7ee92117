/**
 * smtp-server picks the enhanced status code (RFC 3463) from a fixed table keyed by the basic
 * reply code, so it cannot say "452 4.5.3" (too many recipients) or "452 4.3.1" (spool full).
 * This one-method wrapper lets a reply text that already starts with an enhanced code ("4.5.3 ...")
 * carry its own code instead of getting a second, generic one. Everything else is unchanged.
 */
import { SMTPConnection } from 'smtp-server/lib/smtp-connection.js';
import { checkAddress } from '../message/addresses.js';

type Send = (code: number, data?: string | string[], context?: string | false) => void;

const ENHANCED = /^[245]\.\d{1,3}\.\d{1,3} /;
let installed = false;

export function installEnhancedReplyCodes(): void {
  if (installed) return;
  installed = true;
  const prototype = SMTPConnection.prototype as unknown as { send: Send };
  const original = prototype.send;
  prototype.send = function (this: unknown, code, data, context) {
    if (typeof data === 'string' && ENHANCED.test(data)) return original.call(this, code, data, false);
    return original.call(this, code, data, context);
  };
}

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
