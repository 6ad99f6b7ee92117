/**
 * Masquerading: providers refuse unverified senders, so mail from local users ("root",
 * "www-data", "user@web1") leaves with the envelope sender `[local] from` and a header From of
 * that address with the original display name kept (`"Cron Daemon" <alerts@example.com>`).
 * Without `[local] from`, local senders are only qualified with the host name. Senders in a real
 * domain are left alone unless `[local] rewrite = "all"`.
 */
import type { LocalConfig } from '../config/types.js';
import { formatDisplayName, parseMailbox } from '../message/addresses.js';
import { fieldValue, parseHeaderFields, splitHeaders } from '../message/headers.js';
import { localName } from './addresses.js';

export interface MasqueradePolicy {
  hostname: string;
  domains: Set<string>;
  local: LocalConfig;
}

/** The address `address` becomes, or undefined when it stays as it is. */
function rewritten(address: string, policy: MasqueradePolicy): string | undefined {
  const isLocal = localName(address, policy.domains) !== undefined;
  if (!isLocal && policy.local.rewrite !== 'all') return undefined;
  const target = policy.local.from ?? (address.includes('@') ? address : `${address}@${policy.hostname}`);
  return target === address ? undefined : target;
}

export function masqueradeSender(sender: string, policy: MasqueradePolicy): string {
  if (sender === '') return sender; // the null sender <> stays null
  return rewritten(sender, policy) ?? sender;
}

/** Rewrites the From header (and adds Reply-To when configured); returns the message unchanged otherwise. */
export function masqueradeHeaders(message: Buffer, policy: MasqueradePolicy): Buffer {
  const { header, body } = splitHeaders(message);
  const fields = parseHeaderFields(header);
  const from = fields.find((f) => f.name.toLowerCase() === 'from');
  if (!from) return message;
  const mailbox = parseMailbox(fieldValue(from));
  if (!mailbox) return message;
  const target = rewritten(mailbox.address, policy);
  if (!target) return message;
  const phrase = mailbox.name ? `${formatDisplayName(mailbox.name)} ` : '';
  let replacement = `From: ${phrase}<${target}>\r\n`;
  const hasReplyTo = fields.some((f) => f.name.toLowerCase() === 'reply-to');
  if (policy.local.keepOriginalFromAsReplyTo && !hasReplyTo) {
    const original = mailbox.address.includes('@') ? mailbox.address : `${mailbox.address}@${policy.hostname}`;
    replacement += `Reply-To: ${phrase}<${original}>\r\n`;
  }
  const rebuilt = fields.map((f) => (f === from ? replacement : f.raw)).join('');
  const separator = header.slice(fields.map((f) => f.raw).join('').length);
  return Buffer.concat([Buffer.from(rebuilt + separator, 'latin1'), body]);
}
