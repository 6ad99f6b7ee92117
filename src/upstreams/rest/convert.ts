/**
 * MIME → the parts a JSON mail API takes, parsed with mailparser (never by hand): from with display
 * name, reply-to, subject, text and html exactly as written (no generated alternatives, cid: links
 * kept), every attachment with filename, type and Content-ID, and the custom headers.
 * Recipients follow the SMTP envelope, never the headers (see splitRecipients).
 *
 * A message a JSON API cannot carry faithfully — signed or encrypted MIME (S/MIME, PGP/MIME,
 * inline PGP: rebuilding the MIME breaks the signature), a header the provider reserves, an inline
 * image where the provider has no Content-ID — yields `{ unsupported }` with the reason. The router
 * then tries the next upstream (a raw-MIME one can carry it) or bounces with that reason.
 */
import { simpleParser, type AddressObject, type ParsedMail } from 'mailparser';

export interface MailAddress {
  address: string;
  name?: string;
}

export interface ConvertedAttachment {
  filename: string;
  contentType: string;
  content: Buffer;
  /** Content-ID without angle brackets, for inline parts referenced as cid: from the html. */
  contentId?: string;
  inline: boolean;
}

export interface HeaderPair {
  name: string;
  value: string;
}

export interface ConvertedMessage {
  from: MailAddress;
  replyTo: MailAddress[];
  subject: string;
  text?: string;
  html?: string;
  /** Header To/Cc, as written (recipients come from the envelope: splitRecipients). */
  headerTo: MailAddress[];
  headerCc: MailAddress[];
  attachments: ConvertedAttachment[];
  /** Headers to pass on, in message order (names as written, values unfolded, still RFC 2047-encoded). */
  headers: HeaderPair[];
}

export interface ProviderRules {
  /** Provider name for messages, e.g. "Mailjet". */
  provider: string;
  /** Lower-case header names the API refuses: a message carrying one is unsupported. */
  reserved: ReadonlySet<string>;
  /** Lower-case header names the provider always sets itself (documented in docs/providers.md); dropped. */
  regenerated: ReadonlySet<string>;
  /** Whether inline parts with a Content-ID can be expressed. */
  inlineImages: boolean;
  /** The API rejects a message without a subject (rather than sending it without one). */
  requiresSubject?: boolean;
  /** Allowed attachment file extensions (lower case), when the API has an allow-list. */
  attachmentExtensions?: ReadonlySet<string>;
}

/** `degraded`: what the conversion changed to fit the API (only with `degrade`). */
export type Conversion = { message: ConvertedMessage; degraded?: string } | { unsupported: string };

export interface ConvertOptions {
  /** unsupported = "degrade": send inline parts as regular attachments instead of refusing the message. */
  degrade?: boolean;
}

/**
 * Headers the conversion itself expresses, or that describe the original bytes and are rebuilt by
 * whoever builds the new MIME: structure (MIME-Version, Content-*), trace (Received, Return-Path),
 * signatures over the original bytes (DKIM/ARC: invalid after conversion; the provider signs),
 * and Date (stamped by the provider at send time).
 */
const HANDLED = new Set([
  'from',
  'to',
  'cc',
  'bcc',
  'subject',
  'reply-to',
  'date',
  'mime-version',
  'content-type',
  'content-transfer-encoding',
  'content-disposition',
  'content-id',
  'content-description',
  'received',
  'return-path',
  'x-envelope-to',
  'delivered-to',
  'dkim-signature',
  'arc-seal',
  'arc-message-signature',
  'arc-authentication-results',
  'authentication-results',
]);

const SIGNED_OR_ENCRYPTED_TYPES = /^(multipart\/(signed|encrypted)|application\/(x-)?pkcs7-(mime|signature)|application\/pgp-(encrypted|signature|keys))$/i;

export async function convertMessage(raw: Buffer, rules: ProviderRules, options: ConvertOptions = {}): Promise<Conversion> {
  let parsed: ParsedMail;
  try {
    parsed = await simpleParser(raw, { skipImageLinks: true, skipHtmlToText: true, skipTextToHtml: true, skipTextLinks: true });
  } catch (error) {
    return { unsupported: `cannot parse the message as MIME: ${(error as Error).message}` };
  }
  const topType = (parsed.headers.get('content-type') as { value?: string } | undefined)?.value ?? 'text/plain';
  if (SIGNED_OR_ENCRYPTED_TYPES.test(topType)) {
    return { unsupported: `${topType} (signed or encrypted) cannot be sent through ${rules.provider}'s JSON API without breaking it; use an upstream that takes raw MIME` };
  }
  const signedPart = parsed.attachments.find((a) => SIGNED_OR_ENCRYPTED_TYPES.test(a.contentType));
  if (signedPart) {
    return { unsupported: `the message contains a ${signedPart.contentType} part (signed or encrypted) that ${rules.provider}'s JSON API cannot carry intact` };
  }
  if (/-----BEGIN PGP (SIGNED )?MESSAGE-----/.test(parsed.text ?? '')) {
    return { unsupported: `inline PGP content cannot be sent through ${rules.provider}'s JSON API without risking the signature` };
  }

  const from = addresses(parsed.from);
  if (from.length !== 1) {
    return { unsupported: from.length === 0 ? 'the message has no From: address' : `${rules.provider}'s API takes exactly one From: address, the message has ${from.length}` };
  }

  if (rules.requiresSubject && !parsed.subject) {
    return { unsupported: `${rules.provider}'s API requires a subject and the message has none` };
  }

  const headers: HeaderPair[] = [];
  for (const { key, line } of parsed.headerLines) {
    const name = line.slice(0, line.indexOf(':')).trim();
    const lower = key.toLowerCase();
    if (HANDLED.has(lower) || rules.regenerated.has(lower)) continue;
    if (rules.reserved.has(lower)) return { unsupported: `${rules.provider}'s API does not allow setting the ${name} header` };
    headers.push({ name, value: unfold(line.slice(line.indexOf(':') + 1)) });
  }

  const attachments: ConvertedAttachment[] = [];
  const degraded: string[] = [];
  for (const [i, a] of parsed.attachments.entries()) {
    const contentId = a.cid ?? a.contentId?.replace(/^<|>$/g, '');
    let inline = Boolean(contentId) && (a.related || a.contentDisposition === 'inline');
    if (inline && !rules.inlineImages) {
      if (!options.degrade) return { unsupported: `${rules.provider}'s API cannot send inline parts with a Content-ID (cid:${contentId})` };
      degraded.push(`inline part cid:${contentId} sent as a regular attachment`);
      inline = false;
    }
    const filename = a.filename ?? `part-${i + 1}.${extensionFor(a.contentType)}`;
    const extension = /\.([^.]+)$/.exec(filename)?.[1]?.toLowerCase() ?? '';
    if (rules.attachmentExtensions && !rules.attachmentExtensions.has(extension)) {
      return { unsupported: `${rules.provider}'s API does not accept attachments named *.${extension || '(no extension)'} ("${filename}")` };
    }
    attachments.push({ filename, contentType: withCharset(a), content: a.content, contentId: inline ? contentId : undefined, inline });
  }

  return {
    message: {
      from: from[0]!,
      replyTo: addresses(parsed.replyTo),
      subject: parsed.subject ?? '',
      // mailparser reports an absent text part as ""; an empty body is no text either.
      text: parsed.text || undefined,
      html: parsed.html === false ? undefined : parsed.html,
      headerTo: addresses(parsed.to),
      headerCc: addresses(parsed.cc),
      attachments,
      headers,
    },
    ...(degraded.length ? { degraded: degraded.join('; ') } : {}),
  };
}

/** A text attachment keeps its charset (a bare "text/plain" would be read as US-ASCII or guessed). */
function withCharset(a: { contentType: string; headers: Map<string, unknown> }): string {
  if (!/^text\//i.test(a.contentType)) return a.contentType;
  const params = (a.headers.get('content-type') as { params?: Record<string, string> } | undefined)?.params;
  const charset = params?.charset;
  return charset && /^[\w.:-]+$/.test(charset) ? `${a.contentType}; charset=${charset}` : a.contentType;
}

function unfold(value: string): string {
  return value.replace(/\r?\n(?=[ \t])/g, '').trim();
}

function extensionFor(contentType: string): string {
  const sub = contentType.split('/')[1] ?? 'bin';
  return ({ jpeg: 'jpg', plain: 'txt', 'octet-stream': 'bin' } as Record<string, string>)[sub] ?? sub.replace(/[^a-z0-9]/gi, '');
}

/** Flattens mailparser's address objects (groups included) to plain addresses. */
export function addresses(value: AddressObject | AddressObject[] | undefined): MailAddress[] {
  const out: MailAddress[] = [];
  const visit = (entries: Array<{ address?: string; name: string; group?: unknown[] }>) => {
    for (const entry of entries) {
      if (entry.group) visit(entry.group as typeof entries);
      else if (entry.address) out.push(entry.name ? { address: entry.address, name: entry.name } : { address: entry.address });
    }
  };
  for (const object of value === undefined ? [] : Array.isArray(value) ? value : [value]) visit(object.value);
  return out;
}

export interface RecipientSplit {
  to: MailAddress[];
  cc: MailAddress[];
  bcc: MailAddress[];
}

/**
 * The envelope decides who receives the message: an envelope recipient named in To or Cc keeps
 * that role (and its display name); any other envelope recipient (Bcc, alias expansion) is a Bcc;
 * header addresses that are not envelope recipients are not delivered to. APIs need at least one
 * To, so a group with none becomes one request per recipient, each addressed To that recipient
 * alone (as a Bcc copy would be), and groups are cut to the provider's per-request limit.
 */
export function splitRecipients(message: ConvertedMessage, envelope: string[], maxPerRequest: number): RecipientSplit[] {
  const find = (list: MailAddress[], address: string) => list.find((a) => a.address.toLowerCase() === address.toLowerCase());
  const all: Array<{ role: keyof RecipientSplit; address: MailAddress }> = [];
  const seen = new Set<string>();
  for (const recipient of envelope) {
    const key = recipient.toLowerCase();
    if (seen.has(key)) continue;
    seen.add(key);
    const inTo = find(message.headerTo, recipient);
    const inCc = find(message.headerCc, recipient);
    if (inTo) all.push({ role: 'to', address: { ...inTo, address: recipient } });
    else if (inCc) all.push({ role: 'cc', address: { ...inCc, address: recipient } });
    else all.push({ role: 'bcc', address: { address: recipient } });
  }
  const groups: RecipientSplit[] = [];
  for (let i = 0; i < all.length; i += maxPerRequest) {
    const chunk = all.slice(i, i + maxPerRequest);
    const group: RecipientSplit = { to: [], cc: [], bcc: [] };
    for (const { role, address } of chunk) group[role].push(address);
    if (group.to.length > 0) groups.push(group);
    else for (const { address } of chunk) groups.push({ to: [address], cc: [], bcc: [] });
  }
  return groups;
}

/** The envelope addresses a split covers. */
export function splitAddresses(split: RecipientSplit): string[] {
  return [...split.to, ...split.cc, ...split.bcc].map((a) => a.address);
}

/** "Name <addr>" with the name quoted when it needs to be. */
export function formatAddress(a: MailAddress): string {
  if (!a.name) return a.address;
  const name = /^[\w !#$%&'*+\-/=?^`{|}~]+$/.test(a.name) ? a.name : `"${a.name.replace(/(["\\])/g, '\\$1')}"`;
  return `${name} <${a.address}>`;
}
