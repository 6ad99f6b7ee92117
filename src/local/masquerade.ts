/**
 * Masquerading: providers refuse unverified senders, so mail from local users ("root",
 * "www-data", "user@web1") leaves with the envelope sender `[local] from` and a header From of
 * that address with the original display name kept (`"Cron Daemon" <alerts@example.com>`).
 * Without `[local] from`, local senders are only qualified with the host name, as are local
 * names in To, Cc, Reply-To and the other address fields (`To: root` from cron). Senders in a real
 * domain are left alone unless `[local] rewrite = "all"`.
 */
import type { LocalConfig } from '../config/types.js';
import { formatDisplayName, parseAddressList, parseMailbox } from '../message/addresses.js';
import { fieldValue, parseHeaderFields, rebuildHeaders, splitHeaders, type HeaderField } from '../message/headers.js';
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

/** Address fields whose unqualified addresses ("To: root") get @hostname, as Postfix's append_at_myorigin does. */
const ADDRESS_FIELDS = new Set(['to', 'cc', 'reply-to', 'sender', 'resent-to', 'resent-cc', 'resent-from', 'resent-sender']);

/** The field rewritten with every unqualified address qualified, or undefined when it has none. */
function qualifiedField(field: HeaderField, hostname: string): string | undefined {
  const mailboxes = parseAddressList(fieldValue(field));
  if (!mailboxes.some((m) => !m.address.includes('@'))) return undefined;
  const list = mailboxes.map((m) => {
    const address = m.address.includes('@') ? m.address : `${m.address}@${hostname}`;
    return m.name ? `${formatDisplayName(m.name)} <${address}>` : address;
  });
  return `${field.name}: ${list.join(',\r\n ')}\r\n`;
}

/** The From field masqueraded (plus Reply-To when configured), or undefined when it stays. */
function masqueradedFrom(fields: HeaderField[], from: HeaderField, policy: MasqueradePolicy): string | undefined {
  const mailbox = parseMailbox(fieldValue(from));
  if (!mailbox) return undefined;
  const target = rewritten(mailbox.address, policy);
  if (!target) return undefined;
  const phrase = mailbox.name ? `${formatDisplayName(mailbox.name)} ` : '';
  let replacement = `From: ${phrase}<${target}>\r\n`;
  const hasReplyTo = fields.some((f) => f.name.toLowerCase() === 'reply-to');
  if (policy.local.keepOriginalFromAsReplyTo && !hasReplyTo) {
    const original = mailbox.address.includes('@') ? mailbox.address : `${mailbox.address}@${policy.hostname}`;
    replacement += `Reply-To: ${phrase}<${original}>\r\n`;
  }
  return replacement;
}

/** Rewrites From (and adds Reply-To when configured), qualifies local names in address fields; the message unchanged otherwise. */
export function masqueradeHeaders(message: Buffer, policy: MasqueradePolicy): Buffer {
  const fields = parseHeaderFields(splitHeaders(message).header);
  let changed = false;
  const lines = fields.map((f) => {
    const name = f.name.toLowerCase();
    const replacement = name === 'from' ? masqueradedFrom(fields, f, policy) : ADDRESS_FIELDS.has(name) ? qualifiedField(f, policy.hostname) : undefined;
    if (replacement === undefined) return f.raw;
    changed = true;
    return replacement;
  });
  return changed ? rebuildHeaders(message, () => lines) : message;
}
