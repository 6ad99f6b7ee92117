/**
 * Reads a delivery status notification the way a mail client or a bounce processor would, with
 * parsers we did not write: mailparser for the message (headers, addresses, the explanation) and
 * mailsplit for its MIME parts, so tests check fields instead of matching bytes. The
 * message/delivery-status body (RFC 3464 §2.1: header-style blocks, one per message and one per
 * recipient) is read block by block with mailsplit's header parser.
 */
import { once } from 'node:events';
import mailsplit from '@zone-eu/mailsplit';
import libqp from 'libqp';
import { simpleParser, type ParsedMail } from 'mailparser';

export interface DsnPart {
  contentType: string;
  /** Content-Type parameters other than the type itself, as written (lower-case names). */
  header: string;
  encoding: string | false;
  /** The body, transfer-decoded. */
  body: Buffer;
}

export interface ParsedDsn {
  mail: ParsedMail;
  /** multipart/report's report-type parameter. */
  reportType: string | undefined;
  /** The report's top-level parts, in order. */
  parts: DsnPart[];
  /** The explanation for people (first part), decoded. */
  human: string;
  /** The per-message fields (lower-case names). */
  perMessage: Record<string, string>;
  /** One record of fields per recipient, in order (lower-case names). */
  recipients: Array<Record<string, string>>;
  /** The third part: the returned headers or message. */
  returned: DsnPart | undefined;
}

export async function parseDsn(raw: Buffer): Promise<ParsedDsn> {
  const mail = await simpleParser(raw, { skipHtmlToText: true, skipTextToHtml: true, skipImageLinks: true });
  const contentType = mail.headers.get('content-type') as { value: string; params: Record<string, string> } | undefined;
  const parts = await topLevelParts(raw);
  const report = parts.find((p) => /^message\/(global-)?delivery-status$/.test(p.contentType));
  const blocks = report
    ? report.body
        .toString('utf8')
        .split(/\r?\n\r?\n/)
        .filter((b) => b.trim() !== '')
        .map(fields)
    : [];
  return {
    mail,
    reportType: contentType?.value === 'multipart/report' ? contentType.params['report-type'] : undefined,
    parts,
    human: parts[0]?.body.toString(/charset=("?)utf-8\1/i.test(parts[0].header) ? 'utf8' : 'latin1') ?? '',
    perMessage: blocks[0] ?? {},
    recipients: blocks.slice(1),
    returned: parts[2],
  };
}

/** A header-style block as field → value (unfolded, trimmed); a repeated field keeps its first value. */
function fields(block: string): Record<string, string> {
  const result: Record<string, string> = {};
  for (const { key, line } of new mailsplit.Headers(Buffer.from(block + '\r\n', 'utf8')).getList()) {
    // mailsplit keeps header bytes as latin1; the report is UTF-8 (message/global-delivery-status).
    result[key] ??= Buffer.from(line.slice(line.indexOf(':') + 1), 'latin1')
      .toString('utf8')
      .replace(/\r?\n[ \t]+/g, ' ')
      .trim();
  }
  return result;
}

async function topLevelParts(raw: Buffer): Promise<DsnPart[]> {
  type Node = InstanceType<typeof mailsplit.MimeNode>;
  const nodes: Array<{ node: Node; body: Buffer[] }> = [];
  const splitter = new mailsplit.Splitter({ ignoreEmbedded: true, maxHeadSize: 64 * raw.length + 1024 });
  splitter.on('data', (chunk: { type: string; value?: Buffer }) => {
    if (chunk.type === 'node') nodes.push({ node: chunk as unknown as Node, body: [] });
    else if (chunk.type === 'body') nodes[nodes.length - 1]!.body.push(chunk.value!);
  });
  const done = once(splitter, 'end');
  splitter.end(raw);
  await done;
  const root = nodes[0]?.node;
  return nodes
    .filter(({ node }) => node.parentNode === root && node !== root)
    .map(({ node, body }) => ({
      contentType: String(node.contentType),
      header: node.headers ? node.headers.get('content-type').join(' ') : '',
      encoding: node.encoding,
      body: decode(Buffer.concat(body), node.encoding),
    }));
}

function decode(body: Buffer, encoding: string | false): Buffer {
  if (encoding === 'base64') return Buffer.from(body.toString('latin1'), 'base64');
  if (encoding === 'quoted-printable') return libqp.decode(body.toString('latin1'));
  return body;
}
