/**
 * Mail addresses, in one place: nodemailer's addressparser reads RFC 5322 address lists (display
 * names, quoted strings, commas inside quotes, comments, groups), and `checkAddress` is the one
 * validator every path uses (SMTP MAIL/RCPT, sendmail arguments and -t headers, aliases targets,
 * config keys). What it accepts is what the spool stores, so an address that passes RCPT is never
 * refused after DATA.
 *
 * Syntax (RFC 5321 §4.1.2): local part is a dot-string or a quoted string; domain is labels or an
 * address literal. Like Postfix (strict_rfc821_envelopes = no) dot placement in a dot-string is
 * not policed (`foo..bar@docomo.ne.jp` is real mail), and UTF-8 is allowed (RFC 6531).
 */
import addressparser from 'nodemailer/lib/addressparser';

export interface Mailbox {
  /** Display name ("" when none). */
  name: string;
  /** The address as written; a bare local name ("root") is an unqualified address. */
  address: string;
}

/** RFC 5322 atext plus "." and 8-bit (UTF-8) characters. */
const DOT_STRING = /^[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~.\u0080-\uffff]+$/;
/** A strict dot-atom: what a quoted local part can be written as without its quotes. */
const DOT_ATOM = /^[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~\u0080-\uffff]+(\.[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~\u0080-\uffff]+)*$/;
/** RFC 5321 qtextSMTP / quoted-pairSMTP content (printable ASCII, space, UTF-8). */
const QUOTED = /^"((?:[\x20\x21\x23-\x5b\x5d-\x7e\u0080-\uffff]|\\[\x20-\x7e])*)"$/;
const LABEL = /^[A-Za-z0-9_\u0080-\uffff](?:[A-Za-z0-9_\-\u0080-\uffff]*[A-Za-z0-9_\u0080-\uffff])?$/;
const LITERAL = /^\[(?:\d{1,3}(?:\.\d{1,3}){3}|IPv6:[0-9A-Fa-f:.]+)\]$/i;

/** RFC 5321 §4.5.3.1.3: a path is at most 256 octets with its brackets. */
export const MAX_ADDRESS_LENGTH = 254;

export type AddressCheck = { ok: true; address: string } | { ok: false; reason: 'syntax' | 'too-long' | 'unqualified' };

function canonicalLocalPart(local: string): string | undefined {
  const quoted = QUOTED.exec(local);
  if (quoted) {
    const content = quoted[1]!.replace(/\\(.)/g, '$1');
    // "john.doe" and john.doe are the same mailbox: store the form every receiver reads alike.
    return DOT_ATOM.test(content) ? content : `"${content.replace(/(["\\])/g, '\\$1')}"`;
  }
  return local !== '' && DOT_STRING.test(local) ? local : undefined;
}

function validDomain(domain: string): boolean {
  if (LITERAL.test(domain)) return true;
  return domain.split('.').every((label) => label.length <= 63 && LABEL.test(label));
}

/** Index of the "@" before the domain: the last one, or the one right after a quoted local part. */
function domainSeparator(address: string): number {
  if (!address.startsWith('"')) return address.lastIndexOf('@');
  for (let i = 1; i < address.length; i++) {
    if (address[i] === '\\') i++;
    else if (address[i] === '"') return address[i + 1] === '@' ? i + 1 : -1;
  }
  return -1;
}

/**
 * The validator. Returns the canonical form to store (a quoted local part that needs no quotes
 * loses them), or why the address is refused. `requireDomain: false` accepts a bare local name.
 */
export function checkAddress(address: string, options: { requireDomain: boolean }): AddressCheck {
  if (address.length > MAX_ADDRESS_LENGTH) return { ok: false, reason: 'too-long' };
  const at = domainSeparator(address);
  const local = canonicalLocalPart(at === -1 ? address : address.slice(0, at));
  if (local === undefined) return { ok: false, reason: 'syntax' };
  if (at === -1) return options.requireDomain ? { ok: false, reason: 'unqualified' } : { ok: true, address: local };
  const domain = address.slice(at + 1);
  if (!validDomain(domain)) return { ok: false, reason: 'syntax' };
  return { ok: true, address: `${local}@${domain}` };
}

/** The canonical address, or undefined when `checkAddress` refuses it. */
export function validAddress(address: string, options: { requireDomain: boolean }): string | undefined {
  const check = checkAddress(address, options);
  return check.ok ? check.address : undefined;
}

/**
 * Splits an address list at the commas between its elements: outside quotes, angle brackets and
 * comments. With `groups`, a group's "name:" is dropped and its ";" ends an element too.
 * addressparser alone cannot be trusted with this: it reads `root, "Ops" <ops@x>` as one mailbox
 * named "root, Ops" (its heuristic for unquoted `Doe, John <j@x>`), so each element is parsed alone.
 */
export function splitAddressList(text: string, options: { groups: boolean }): string[] {
  const out: string[] = [];
  let current = '';
  let quoted = false;
  let angle = 0;
  let comment = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (c === '\\' && (quoted || comment > 0) && i + 1 < text.length) {
      current += c + text[++i];
      continue;
    }
    if (c === '"' && comment === 0) quoted = !quoted;
    else if (!quoted && c === '(') comment++;
    else if (!quoted && c === ')' && comment > 0) comment--;
    else if (!quoted && comment === 0 && c === '<') angle++;
    else if (!quoted && comment === 0 && c === '>' && angle > 0) angle--;
    const top = !quoted && angle === 0 && comment === 0;
    if (top && (c === ',' || (options.groups && c === ';'))) {
      out.push(current.trim());
      current = '';
      continue;
    }
    if (top && options.groups && c === ':') {
      current = ''; // "Team:" — the group's name is not an address
      continue;
    }
    current += c;
  }
  out.push(current.trim());
  return out.filter((t) => t !== '');
}

/**
 * Every mailbox in an RFC 5322 address list, groups flattened (`undisclosed-recipients:;` has
 * none). A bare word ("root") is kept as an unqualified address, as sendmail reads `To: root`.
 */
export function parseAddressList(text: string): Mailbox[] {
  const out: Mailbox[] = [];
  for (const element of splitAddressList(text, { groups: true })) {
    for (const entry of addressparser(element, { flatten: true })) {
      // "bad<addr>@example.net": addressparser moves the domain into the name; keep the whole so the validator refuses it.
      if (entry.address && !entry.address.includes('@') && entry.name.includes('@')) out.push({ name: '', address: element });
      else if (entry.address) out.push({ name: entry.name, address: entry.address });
      else if (entry.name && /^[^\s@<>()",;:]+$/.test(entry.name)) out.push({ name: '', address: entry.name });
    }
  }
  return out;
}

/**
 * The one mailbox of a From-style field, or undefined when it holds none or several (callers leave
 * those alone). addressparser reads a domain-less address as a bare word and drops its comment,
 * so `root (Cron Daemon)` — how cron writes From — keeps its name here; and a phrase without angle
 * brackets (`a b@example.com`) is not a mailbox.
 */
export function parseMailbox(text: string): Mailbox | undefined {
  if (/[\r\n]/.test(text)) return undefined;
  const list = parseAddressList(text);
  if (list.length !== 1) return undefined;
  const mailbox = list[0]!;
  if (mailbox.name !== '' && !/[<(]/.test(text)) return undefined;
  const cron = /^\s*([^\s()<>,;:"@]+)\s*\(([^()]*)\)\s*$/.exec(text);
  return cron ? { name: cron[2]!.trim(), address: cron[1]! } : mailbox;
}

/** A display name as a header phrase: RFC 2047 encoded words as they are, anything else quoted. Never a line break. */
export function formatDisplayName(name: string): string {
  const oneLine = name.replace(/[\r\n]+/g, ' ');
  if (/^=\?[^?\s]+\?[bBqQ]\?[^?\s]*\?=( =\?[^?\s]+\?[bBqQ]\?[^?\s]*\?=)*$/.test(oneLine)) return oneLine;
  return `"${oneLine.replace(/(["\\])/g, '\\$1')}"`;
}
