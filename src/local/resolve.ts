/**
 * Recipient expansion for locally submitted mail: local names go through the aliases table
 * (chains followed, loops broken), and a local name without an alias goes to `[local] admin`.
 * Nothing is ever silently dropped: an alias whose targets are all refused, or a loop, also
 * falls back to admin, with a note for the log.
 */
import { SubmitError } from '../errors.js';
import type { AliasTable } from './aliases.js';
import { localName } from './addresses.js';

export interface ResolveContext {
  aliases: AliasTable;
  domains: Set<string>;
  admin?: string;
}

/** A recipient that went to `[local] admin`, logged with the address the client gave. */
export interface AdminRewrite {
  original: string;
  to: string;
  reason: string;
}

export interface Resolved {
  recipients: string[];
  /** Things the operator should know (refused targets used, loops broken). */
  notes: string[];
  rewrites: AdminRewrite[];
}

export function resolveRecipients(addresses: readonly string[], ctx: ResolveContext): Resolved {
  const out = new Map<string, string>();
  const notes: string[] = [];
  const rewrites: AdminRewrite[] = [];
  const add = (address: string) => {
    const key = address.toLowerCase();
    if (!out.has(key)) out.set(key, address);
  };
  const toAdmin = (original: string, name: string, why?: string) => {
    if (!ctx.admin) throw new SubmitError('ENOUSER', `${name}: ${why ?? 'no such alias'} and [local] admin is not set`);
    if (why) notes.push(`${name}: ${why}; delivered to ${ctx.admin}`);
    rewrites.push({ original, to: ctx.admin, reason: why ?? (ctx.aliases.entries.has(name) ? `local mailbox ${name}` : `no alias for ${name}`) });
    add(ctx.admin);
  };
  const expand = (name: string, chain: string[], original: string) => {
    const entry = ctx.aliases.entries.get(name);
    if (!entry) return toAdmin(original, name);
    let produced = false;
    for (const target of entry.targets) {
      if (target.kind === 'refused') {
        notes.push(`${ctx.aliases.file}:${target.line}: ${name}: refused ${JSON.stringify(target.text)} (${target.reason})`);
        continue;
      }
      produced = true;
      const child = localName(target.address, ctx.domains);
      if (child === undefined) add(target.address);
      else if (target.noExpand || child === name)
        toAdmin(original, child); // "\root" or "root: root": the local mailbox
      else if (chain.includes(child)) toAdmin(original, child, `alias loop ${[...chain, name, child].join(' → ')} broken`);
      else expand(child, [...chain, name], original);
    }
    if (!produced) toAdmin(original, name, 'every target of this alias was refused');
  };
  for (const address of addresses) {
    const name = localName(address, ctx.domains);
    if (name === undefined) add(address);
    else expand(name, [], address);
  }
  return { recipients: [...out.values()], notes, rewrites };
}
