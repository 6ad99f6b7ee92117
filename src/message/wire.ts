/**
 * What leaves mailshim is legal and unambiguous on the wire: every line at most 998 octets
 * (RFC 5322 §2.1.1), no CR or LF outside a CRLF pair and no NUL (RFC 5321 §2.3.8, §4.5.2),
 * and 8-bit content only where the upstream can carry it and correctly declared (RFC 6152, RFC
 * 2045: Content-Transfer-Encoding 8bit and a charset that fits the bytes). This module turns
 * any spooled message into that, keeping every byte the reader should see.
 *
 * Where it happens, and why here: intake stores what it was given (after sendmail's LF → CRLF),
 * and this runs on the way out, per upstream (src/delivery/router.ts, by the upstream's
 * `wire` capability). Postfix does the same split: its sendmail/postdrop take any byte stream,
 * and its SMTP client converts 8bit → 7bit for servers without 8BITMIME
 * (disable_mime_output_conversion) and folds long lines (smtp_line_length_limit). Transforming
 * once at intake would be simpler, but it would decide for every upstream what only some need,
 * rewrite signed mail that an 8BITMIME upstream could carry untouched, and put in the spool (and
 * in bounces, which quote it) bytes that are not what the program wrote. Doing it on the way out
 * keeps the spool faithful and lets failover pick another upstream for the same bytes; the cost
 * is one pass over messages that need it (a scan decides, most mail is already fine).
 *
 * How: a text part that breaks a rule is re-encoded, never folded or stripped. Folding (what
 * Postfix does to long lines) inserts line breaks the author never wrote and cannot fix a bare CR
 * or NUL; re-encoding keeps every byte and the reader's mail client decodes it back:
 * - quoted-printable for text that is mostly ASCII (stays readable in the raw message), base64
 *   when more than a third of it would need escaping (binary garbage, Shift_JIS): with the
 *   escapes for lone CR, lone LF and NUL (libqp's binary mode, so `a\rb` decodes to `a\rb`);
 * - with a charset that fits the bytes: the declared one, unless it is ASCII or UTF-8 and the
 *   bytes are not (a cron job's Latin-1 output under "charset=UTF-8"); then UTF-8 if the bytes
 *   are UTF-8, Shift_JIS or EUC-JP if they decode as Japanese text with kana, else ISO-8859-1,
 *   which maps every byte to a character so nothing is lost (the reader may see é for a byte
 *   meant as another single-byte charset — never a missing line);
 * - a part that is not text (application/octet-stream marked 8bit or binary) becomes base64;
 * - an embedded message/rfc822 is fixed recursively (it may not be encoded itself, RFC 2046).
 * - a header field: an unstructured one (Subject, Comments, X-…) with NUL, CR, a long line or
 *   bytes that are not UTF-8 (or any 8-bit, for a 7-bit upstream) becomes RFC 2047 encoded
 *   words, and so do 8-bit display names in address fields; a long structured one is folded at
 *   whitespace; a structured one that cannot be made legal makes the message unsupported.
 *   A UTF-8 address or other structured field stays (RFC 6532: the upstream needs SMTPUTF8).
 * - preamble, epilogue and boundary lines of a multipart (never shown): a lone CR or LF becomes
 *   CRLF, other offending bytes "?"; a header block with lone LFs is rewritten with CRLF.
 *
 * Signed mail (multipart/signed, S/MIME or PGP parts, or a DKIM-Signature header) is never
 * changed: a signature covers the bytes. If its only problem is 8-bit content, it goes out as it
 * is (the SMTP upstream declares BODY=8BITMIME); if it has a NUL, bare CR/LF or long line, no
 * upstream can take it legally and the result says why (the router then bounces it).
 */
import { isAscii, isUtf8 } from 'node:buffer';
import { once } from 'node:events';
import type Mailsplit from '@zone-eu/mailsplit';
import type Libqp from 'libqp';
import addressparser from 'nodemailer/lib/addressparser/index.js';

type MimeNode = InstanceType<typeof Mailsplit.MimeNode>;

/**
 * The MIME parser and encoders, loaded by the first message that needs more than the scan (most
 * mail never does): they pull in iconv-lite's and encoding-japanese's tables, several MB of the
 * daemon's idle memory otherwise (docs/performance.md).
 */
let mailsplit: typeof Mailsplit;
let libqp: typeof Libqp;
let loading: Promise<void> | undefined;
function loadMime(): Promise<void> {
  loading ??= Promise.all([import('@zone-eu/mailsplit'), import('libqp')]).then(([m, q]) => {
    mailsplit = m.default;
    libqp = q.default;
  });
  return loading;
}
/** A MIME node (headers) with its body chunks, or multipart structure between parts (boundaries, preamble, epilogue). */
type Item = { node: MimeNode; body: Buffer[] } | { data: Buffer };

/** What an upstream can carry, declared on the Upstream interface (src/upstreams/types.ts). */
export interface WireCapability {
  /**
   * Correctly declared 8-bit parts may stay 8-bit; false → every part is made 7-bit; 'if-offered' →
   * it depends on the session (SMTP's 8BITMIME): delivery lets the session ask for the form it
   * needs (src/delivery/router.ts, OutboundMessage.fitFor).
   */
  eightBit: boolean | 'if-offered';
}

/** What fitForWire fits a message to: one answer per message. */
export interface WireTarget {
  eightBit: boolean;
}

export type WireResult = { raw: Buffer; changed: boolean } | { unsupported: string };

/** RFC 5322 §2.1.1: at most 998 octets per line, excluding the CRLF. */
export const MAX_LINE = 998;
const CRLF = Buffer.from('\r\n');

export interface LineProblems {
  nul: boolean;
  bareCr: boolean;
  bareLf: boolean;
  longLine: boolean;
  eightBit: boolean;
}

/**
 * What would make the bytes illegal or 8-bit on the wire. Native scans (isAscii, indexOf) and one
 * step per line rather than a JavaScript step per byte: this runs on every message delivered.
 */
export function scan(bytes: Buffer): LineProblems {
  const scanner = new LineScanner();
  scanner.update(bytes);
  return scanner.problems();
}

/**
 * scan() over bytes that arrive in pieces (a body written to its file as DATA arrives): the same
 * answer as scan() of the pieces joined, with what straddles two pieces (a CR ending one, the
 * length of the line in progress) carried over.
 */
export class LineScanner {
  private readonly p: LineProblems = { nul: false, bareCr: false, bareLf: false, longLine: false, eightBit: false };
  /** Bytes of the line in progress before the current piece (its CR, if the piece starts with LF, included). */
  private lineLength = 0;
  private endsWithCr = false;

  update(bytes: Buffer): void {
    if (bytes.length === 0) return;
    const p = this.p;
    if (!p.nul) p.nul = bytes.indexOf(0) !== -1;
    if (!p.eightBit) p.eightBit = !isAscii(bytes);
    // lineStart is where the line in progress starts, relative to this piece (negative: in an earlier one).
    let lineStart = -this.lineLength;
    for (let lf = bytes.indexOf(0x0a); lf !== -1; lf = bytes.indexOf(0x0a, lf + 1)) {
      const crBefore = lf === 0 ? this.endsWithCr : bytes[lf - 1] === 0x0d;
      if (!crBefore) {
        p.bareLf = true;
        continue;
      }
      if (lf - 1 - lineStart > MAX_LINE) p.longLine = true;
      lineStart = lf + 1;
    }
    this.lineLength = bytes.length - lineStart;
    if (this.endsWithCr && bytes[0] !== 0x0a) p.bareCr = true;
    for (let cr = bytes.indexOf(0x0d); cr !== -1 && !p.bareCr; cr = bytes.indexOf(0x0d, cr + 1)) {
      if (cr + 1 < bytes.length) p.bareCr = bytes[cr + 1] !== 0x0a;
    }
    this.endsWithCr = bytes[bytes.length - 1] === 0x0d;
  }

  /** The problems of everything passed to update() so far, as scan() reports them for the whole. */
  problems(): LineProblems {
    const p = { ...this.p };
    if (this.lineLength > MAX_LINE) p.longLine = true;
    if (this.endsWithCr) p.bareCr = true; // a CR that ends the bytes
    return p;
  }
}

/** True when the bytes need no fitting for any upstream: 7-bit, legal lines (fitForWire returns them unchanged at once). */
export function wireClean(p: LineProblems): boolean {
  return !lineIllegal(p) && !p.eightBit;
}

function lineIllegal(p: LineProblems): boolean {
  return p.nul || p.bareCr || p.bareLf || p.longLine;
}

function describe(p: LineProblems): string {
  const what = [p.nul && 'a NUL byte', p.bareCr && 'a CR without LF', p.bareLf && 'an LF without CR', p.longLine && `a line over ${MAX_LINE} octets`].filter(Boolean);
  return what.join(', ');
}

const SIGNED_TYPES = /^(multipart\/(signed|encrypted)|application\/(x-)?pkcs7-(mime|signature)|application\/pgp-(encrypted|signature))$/i;
const ASCII_LABELS = /^(us-?ascii|ascii|ansi_x3\.4-19(68|86)|iso646-us|us)$/i;
const UTF8_LABELS = /^utf-?8$/i;
/** Unstructured fields (RFC 5322 §3.6.5, RFC 2045 §8, X- by convention): encoded words are allowed anywhere in them. */
const UNSTRUCTURED = /^(subject|comments|content-description|x-[^:]*)$/i;
/** Address fields: encoded words are allowed in display names (RFC 2047 §5 (3)). */
const ADDRESS_FIELDS = /^(from|sender|reply-to|to|cc|bcc|resent-(from|sender|to|cc|bcc)|disposition-notification-to)$/i;

/** The charset to declare for text bytes that carry no (trustworthy) label. */
export function guessCharset(bytes: Buffer): string {
  if (!bytes.some((b) => b >= 0x80)) return 'us-ascii';
  if (isUtf8(bytes)) return 'utf-8';
  for (const charset of ['shift_jis', 'euc-jp']) if (looksJapanese(bytes, charset)) return charset;
  return 'iso-8859-1';
}

/** Strictly valid in the charset and containing kana: Latin-1 text never decodes to hiragana or katakana. */
function looksJapanese(bytes: Buffer, charset: string): boolean {
  let text: string;
  try {
    text = new TextDecoder(charset, { fatal: true }).decode(bytes);
  } catch {
    return false;
  }
  // Kana, and nothing outside Japanese text: JIS punctuation, arrows, maths, box drawing and shapes
  // are fine; other U+0080–U+2FFF or private use (Shift_JIS user-defined lead bytes) means it is not.
  return (
    /[\u3041-\u30fa]/.test(text) &&
    !/[\u0080-\u2fff\ue000-\uf8ff]/.test(text.replace(/[\u2010-\u203b\u2190-\u21ff\u2200-\u22ff\u2500-\u257f\u25a0-\u25ff\u2600-\u26ff\u00a7\u00a8\u00b0\u00b1\u00b4\u00b6\u00d7\u00f7]/g, ''))
  );
}

/** The declared charset when it fits the bytes, else a guess. */
function charsetFor(declared: string | false, bytes: Buffer): string {
  if (declared) {
    const eightBit = bytes.some((b) => b >= 0x80);
    if (!(ASCII_LABELS.test(declared) && eightBit) && !(UTF8_LABELS.test(declared) && !isUtf8(bytes))) return declared;
  }
  return guessCharset(bytes);
}

async function split(raw: Buffer): Promise<Item[]> {
  const items: Item[] = [];
  // The whole message is in memory already: no header is too big to look at (mailsplit counts ≥ 64 per line).
  const splitter = new mailsplit.Splitter({ maxHeadSize: 64 * raw.length + 1024 });
  splitter.on('data', (chunk: { type: string; value?: Buffer }) => {
    if (chunk.type === 'node') items.push({ node: chunk as unknown as MimeNode, body: [] });
    else if (chunk.type === 'body') (items[items.length - 1] as { body: Buffer[] }).body.push(chunk.value!);
    else items.push({ data: chunk.value! });
  });
  const done = once(splitter, 'end');
  splitter.end(raw);
  await done;
  return items;
}

async function qpEncode(content: Buffer): Promise<Buffer> {
  const encoder = new libqp.Encoder({ binary: true, lineLength: 76 });
  const chunks: Buffer[] = [];
  encoder.on('data', (chunk: Buffer) => chunks.push(chunk));
  const done = once(encoder, 'end');
  encoder.end(content);
  await done;
  return Buffer.concat(chunks);
}

function base64Encode(content: Buffer, endsWithBreak: boolean): Buffer {
  const text = content.toString('base64').replace(/.{76}(?=.)/g, '$&\r\n');
  return Buffer.from(endsWithBreak || text === '' ? text + '\r\n' : text, 'latin1');
}

function decodeBody(body: Buffer, encoding: string | false): Buffer {
  if (encoding === 'base64') return Buffer.from(body.toString('latin1').replace(/[^A-Za-z0-9+/=]/g, ''), 'base64');
  if (encoding === 'quoted-printable') return libqp.decode(body);
  return body;
}

/** Bytes quoted-printable would have to escape; over a third of the content → base64 is smaller. */
function mostlyBinary(content: Buffer): boolean {
  let escaped = 0;
  for (let i = 0; i < content.length; i++) {
    const b = content[i]!;
    if (b >= 0x80 || b === 0x3d || (b < 0x20 && b !== 0x09 && !(b === 0x0d && content[i + 1] === 0x0a) && !(b === 0x0a && content[i - 1] === 0x0d))) escaped++;
  }
  return escaped * 3 > content.length;
}

/** RFC 2047 B-encoded words in UTF-8, whole characters per word, each word ≤ 75 characters. */
function encodedWords(text: string): string {
  const words: string[] = [];
  let current = '';
  for (const char of text) {
    if (Buffer.byteLength(current + char) > 45) {
      words.push(current);
      current = '';
    }
    current += char;
  }
  if (current !== '' || words.length === 0) words.push(current);
  return words.map((w) => `=?utf-8?B?${Buffer.from(w).toString('base64')}?=`).join('\r\n ');
}

/** A header line (binary string, folded with CRLF, no final CRLF) made legal, or why it cannot be. */
function fixHeaderLine(key: string, line: string, capability: WireTarget): string | { unsupported: string } {
  const bytes = Buffer.from(line, 'latin1');
  const p = scan(bytes);
  const encodable = UNSTRUCTURED.test(key) || ADDRESS_FIELDS.test(key);
  if (!lineIllegal(p) && (!p.eightBit || (isUtf8(bytes) && (capability.eightBit || !encodable)))) return line;
  const colon = line.indexOf(':');
  const name = line.slice(0, Math.max(colon, 0)) || key;
  const value = headerText(bytes.subarray(colon + 1));
  if (UNSTRUCTURED.test(key)) return `${name}: ${encodedWords(value.replace(/^[ \t]+/, ''))}`;
  if (!lineIllegal(p) && ADDRESS_FIELDS.test(key)) return encodeDisplayNames(name, value) ?? line;
  if (p.nul || p.bareCr || p.bareLf) return { unsupported: `its ${name} header contains ${describe({ ...p, longLine: false })}, which cannot be expressed in that field` };
  if (p.longLine) {
    const folded = line.split('\r\n').map(foldAtWhitespace).join('\r\n');
    if (scan(Buffer.from(folded, 'latin1')).longLine) return { unsupported: `its ${name} header has a line over ${MAX_LINE} octets without whitespace to fold at` };
    return folded;
  }
  return line; // 8-bit in another structured field: UTF-8 (RFC 6532) or as written; the upstream decides
}

/** A header value (after the colon) as text, unfolded, decoded with a charset that fits its bytes. */
function headerText(raw: Buffer): string {
  const bytes = Buffer.from(raw.toString('latin1').replace(/\r\n(?=[ \t])/g, ''), 'latin1');
  const charset = charsetFor(false, bytes);
  return charset === 'iso-8859-1' || charset === 'us-ascii' ? bytes.toString('latin1') : new TextDecoder(charset).decode(bytes);
}

/**
 * An address field whose only 8-bit text is in display names (`From: Jürgen Müller <j@example.de>`),
 * rewritten with those names as encoded words; undefined when an address itself is not ASCII
 * (that needs SMTPUTF8, RFC 6531) or the field does not parse as an address list.
 */
function encodeDisplayNames(name: string, value: string): string | undefined {
  const list = addressparser(value, { flatten: false });
  const mailbox = (a: { name: string; address?: string }) => (a.address && /^[\x21-\x7e]+@[\x21-\x7e]+$/.test(a.address) ? (a.name ? `${phrase(a.name)} <${a.address}>` : a.address) : undefined);
  const parts: string[] = [];
  for (const entry of list) {
    if (entry.group) {
      const members = entry.group.map(mailbox);
      if (members.some((m) => m === undefined)) return undefined;
      parts.push(`${phrase(entry.name)}: ${members.join(', ')};`);
    } else {
      const one = mailbox(entry);
      if (one === undefined) return undefined;
      parts.push(one);
    }
  }
  return parts.length === 0 ? undefined : `${name}: ${parts.join(',\r\n ')}`;
}

function phrase(name: string): string {
  if (/[^\x20-\x7e]/.test(name)) return encodedWords(name);
  return /^[\w !#$%&'*+\-/=?^`{|}~]+$/.test(name) ? name : `"${name.replace(/(["\\])/g, '\\$1')}"`;
}

/** Breaks one physical line before whitespace so that no piece exceeds 998 octets. */
function foldAtWhitespace(line: string): string {
  const pieces: string[] = [];
  let rest = line;
  while (rest.length > MAX_LINE) {
    let at = -1;
    for (let i = Math.min(MAX_LINE, rest.length - 1); i > 0; i--) {
      if (rest[i] === ' ' || rest[i] === '\t') {
        at = i;
        break;
      }
    }
    if (at <= 0) break;
    pieces.push(rest.slice(0, at));
    rest = rest.slice(at);
  }
  pieces.push(rest);
  return pieces.join('\r\n');
}

/**
 * Multipart structure outside the parts (boundary lines, preamble, epilogue; never displayed):
 * a lone CR or LF is a line break there (CRLF), NUL and (for a 7-bit upstream) 8-bit bytes become "?".
 */
function scrub(data: Buffer, capability: WireTarget): Buffer {
  const p = scan(data);
  if (!lineIllegal(p) && (!p.eightBit || capability.eightBit)) return data;
  const text = data
    .toString('latin1')
    .replace(/\r(?!\n)|(?<!\r)\n/g, '\r\n')
    .replace(/\0/g, '?')
    .replace(capability.eightBit ? /(?!)/g : /[\x80-\xff]/g, '?')
    .split('\r\n')
    .map((l) => (l.length > MAX_LINE ? l.replace(new RegExp(`(.{${MAX_LINE}})(?=.)`, 'g'), '$1\r\n') : l))
    .join('\r\n');
  return Buffer.from(text, 'latin1');
}

function isSigned(items: Item[]): string | undefined {
  for (const item of items) {
    if (!('node' in item)) continue;
    const node = item.node;
    if (node.contentType && SIGNED_TYPES.test(node.contentType)) return node.contentType;
    if (node.root && node.headers && node.headers.hasHeader('dkim-signature')) return 'DKIM-Signature';
  }
  return undefined;
}

/** Whether a leaf's body must be re-encoded for this upstream. */
function needsReencoding(node: MimeNode, body: Buffer, capability: WireTarget): boolean {
  const p = scan(body);
  if (lineIllegal(p)) return true;
  if (node.encoding === 'binary') return true;
  if (!p.eightBit) return false;
  if (!capability.eightBit) return true;
  // 8-bit may stay: only if declared as such, and for text with a charset that fits the bytes.
  if (node.encoding !== '8bit') return true;
  const isText = !node.contentType || node.contentType.startsWith('text/');
  return isText && (!node.charset || charsetFor(node.charset, body) !== node.charset);
}

/**
 * The message as it may go to an upstream with this capability: unchanged when it already
 * qualifies (`changed: false`, same Buffer), re-encoded where needed, or why it cannot be sent.
 */
export async function fitForWire(raw: Buffer, capability: WireTarget): Promise<WireResult> {
  const p = scan(raw);
  if (wireClean(p)) return { raw, changed: false };
  await loadMime();
  let items: Item[];
  try {
    items = await split(raw);
  } catch (error) {
    return { unsupported: `the message cannot be parsed as MIME to make it legal on the wire: ${(error as Error).message}` };
  }
  const signed = isSigned(items);
  if (signed) {
    if (!lineIllegal(p)) return { raw, changed: false };
    return { unsupported: `the message is signed (${signed}) and contains ${describe(p)}; it cannot be made legal on the wire without breaking the signature` };
  }
  const rebuilt = await rebuild(items, capability);
  return 'unsupported' in rebuilt || rebuilt.changed ? rebuilt : { raw, changed: false };
}

async function rebuild(items: Item[], capability: WireTarget): Promise<WireResult> {
  const out: Buffer[] = [];
  let changed = false;
  for (const item of items) {
    if ('data' in item) {
      const data = scrub(item.data, capability);
      changed ||= data !== item.data;
      out.push(data);
      continue;
    }
    const { node } = item;
    const original = Buffer.concat(item.body);
    let body: Buffer = original;
    const headers = node.headers;
    if (headers && headers.lines) {
      for (const line of headers.lines) {
        const fixed = fixHeaderLine(line.key, line.line, capability);
        if (typeof fixed !== 'string') return fixed;
        if (fixed !== line.line) {
          line.line = fixed;
          headers.changed = true;
        }
      }
      // A header block ended by lone LFs (not from sendmail, which writes CRLF): rebuilt with CRLF.
      if (!headers.changed && lineIllegal(scan(node.getHeaders()))) headers.changed = true;
    }
    // (mailsplit reports an empty part of a multipart as the CRLF before the next boundary)
    const empty = original.length === 0 || (!node.root && original.equals(CRLF));
    if (!node.multipart && !empty) {
      if (node.rfc822) {
        const inner = await fitForWire(body, capability);
        if ('unsupported' in inner) return { unsupported: `an attached message: ${inner.unsupported}` };
        body = inner.raw;
      } else if (needsReencoding(node, body, capability)) {
        body = await reencode(node, body);
      }
    }
    changed ||= Boolean(headers && headers.changed) || body !== original;
    out.push(node.getHeaders(), body);
  }
  return { raw: Buffer.concat(out), changed };
}

/** Re-encodes one leaf with a 7-bit transfer encoding and a charset that fits, updating its headers. */
async function reencode(node: MimeNode, body: Buffer): Promise<Buffer> {
  const content = decodeBody(body, node.encoding);
  const isText = !node.contentType || node.contentType.startsWith('text/');
  const headers = node.headers;
  if (!headers) return body;
  let encoded: Buffer;
  let encoding: string;
  if (isText && !mostlyBinary(content)) {
    encoded = await qpEncode(content);
    encoding = 'quoted-printable';
  } else {
    encoded = base64Encode(content, body.subarray(-2).equals(CRLF));
    encoding = 'base64';
  }
  if (node.root && !headers.hasHeader('mime-version')) setHeader(headers, 'MIME-Version', '1.0');
  if (isText) {
    const charset = charsetFor(node.charset, content);
    if (!headers.hasHeader('content-type')) setHeader(headers, 'Content-Type', `text/plain; charset=${charset}`);
    else if (charset !== node.charset) node.setCharset(charset);
  }
  setHeader(headers, 'Content-Transfer-Encoding', encoding);
  return encoded;
}

/** Replaces a field in place, or appends it after the others (trace fields stay on top). */
function setHeader(headers: Exclude<MimeNode['headers'], false>, key: string, value: string): void {
  if (headers.hasHeader(key)) headers.update(key, value);
  else headers.add(key, value, headers.lines ? headers.lines.length : 0);
}
