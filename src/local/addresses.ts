/** Which addresses are local to this machine: no domain, or one of `[local] local_domains`. */
import type { LocalConfig } from '../config/types.js';

export function localDomains(local: Pick<LocalConfig, 'domains'>): Set<string> {
  return new Set(local.domains.map((d) => d.toLowerCase()));
}

/** The local name ("root") of a local address ("root", "ROOT@web1"), or undefined for a remote one. */
export function localName(address: string, domains: Set<string>): string | undefined {
  const at = address.lastIndexOf('@');
  if (at === -1) return address.toLowerCase();
  return domains.has(address.slice(at + 1).toLowerCase()) ? address.slice(0, at).toLowerCase() : undefined;
}
