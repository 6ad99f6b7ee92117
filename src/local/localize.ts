/**
 * The local-mail policy applied to every sendmail submission before it is spooled: recipients
 * through the aliases, sender and From masqueraded. Run by the daemon for socket submissions
 * and by the sendmail command itself when it has to use the maildrop (daemon not running), so
 * errors (EX_NOUSER, EX_DATAERR) reach the caller either way.
 */
import type { LocalConfig } from '../config/types.js';
import { SubmitError } from '../errors.js';
import type { Envelope } from '../spool/types.js';
import type { AliasTable } from './aliases.js';
import { validAddress } from '../message/addresses.js';
import { localDomains } from './addresses.js';
import { masqueradeHeaders, masqueradeSender } from './masquerade.js';
import { resolveRecipients, type AdminRewrite } from './resolve.js';
import type { Logger } from '../log.js';

export interface LocalPolicy {
  hostname: string;
  local: LocalConfig;
  aliases: AliasTable;
}

export interface Localized {
  envelope: Envelope;
  bytes: Buffer;
  notes: string[];
  rewrites: AdminRewrite[];
}

/** The log lines for a localized message: notes at warn, every rewrite to [local] admin at info with the original address. */
export function logLocalized(log: Logger, localized: Localized, context: Record<string, unknown>): void {
  for (const note of localized.notes) log.warn({ event: 'aliases', note, ...context }, note);
  for (const r of localized.rewrites) log.info({ event: 'local-rewrite', original: r.original, to: r.to, reason: r.reason, ...context }, `${r.original} delivered to ${r.to} (${r.reason})`);
}

export function localize(envelope: Envelope, bytes: Buffer, policy: LocalPolicy): Localized {
  const canonical = (address: string) => {
    const valid = validAddress(address, { requireDomain: false });
    if (valid === undefined) throw new SubmitError('EDATAERR', `invalid address ${JSON.stringify(address)}`);
    return valid;
  };
  const sender = envelope.sender ? canonical(envelope.sender) : envelope.sender;
  const domains = localDomains(policy.local);
  const { recipients, notes, rewrites } = resolveRecipients(envelope.recipients.map(canonical), { aliases: policy.aliases, domains, admin: policy.local.admin });
  const masquerade = { hostname: policy.hostname, domains, local: policy.local };
  return {
    envelope: { sender: masqueradeSender(sender, masquerade), recipients },
    bytes: masqueradeHeaders(bytes, masquerade),
    notes,
    rewrites,
  };
}
