/** -t: addresses in To/Cc/Bcc, via nodemailer's address parser (groups, quoted names, comments). */
import addressparser from 'nodemailer/lib/addressparser';

/** Addresses in an address-list field; a bare local name ("root") counts as an address. */
export function addressesIn(value: string): string[] {
  const out: string[] = [];
  const visit = (entries: ReturnType<typeof addressparser>) => {
    for (const entry of entries) {
      if ('group' in entry && entry.group) visit(entry.group);
      else if (entry.address) out.push(entry.address);
      else if (entry.name && /^[^\s@<>()",;:]+$/.test(entry.name)) out.push(entry.name);
    }
  };
  visit(addressparser(value));
  return out;
}
