/**
 * Reads a delivery status notification with mailparser: a multipart/report (RFC 3464) as built by
 * src/delivery/dsn.ts, or the plain-text form JSON-only upstreams carry (plainTextNotice), whose
 * delivery report travels inline under a "----- Delivery report -----" line. The report's fields
 * (RFC 3464 §2.2, §2.3: header-style fields, per-message block then one block per recipient) are
 * parsed by mailparser too, block by block.
 */
import { simpleParser, type ParsedMail } from 'mailparser';

export interface DeliveryStatus {
  mail: ParsedMail;
  /** Per-message fields (lower-case names). */
  message: Map<string, string>;
  /** Per-recipient fields, one map per recipient. */
  recipients: Array<Map<string, string>>;
  /** The returned original headers (or message), as text. */
  headers: string;
}

async function fields(block: string): Promise<Map<string, string>> {
  const parsed = await simpleParser(Buffer.from(`${block.trim()}\r\n\r\n`));
  const out = new Map<string, string>();
  for (const line of parsed.headerLines)
    out.set(
      line.key,
      line.line
        .slice(line.line.indexOf(':') + 1)
        .trim()
        .replace(/\s*\r?\n\s+/g, ' '),
    );
  return out;
}

async function report(text: string): Promise<Pick<DeliveryStatus, 'message' | 'recipients'>> {
  const blocks = text
    .replace(/\r\n/g, '\n')
    .split(/\n[ \t]*\n/)
    .filter((b) => b.trim() !== '');
  const [first, ...rest] = await Promise.all(blocks.map(fields));
  return { message: first ?? new Map<string, string>(), recipients: rest };
}

export async function deliveryStatus(raw: Buffer | string): Promise<DeliveryStatus> {
  const mail = await simpleParser(typeof raw === 'string' ? Buffer.from(raw) : raw);
  // mailparser hands the message/delivery-status part over as text after the explanation; the
  // plain-text notice has it inline under its own heading. Either way it starts at Reporting-MTA.
  const text = (mail.text ?? '').replace(/\r\n/g, '\n');
  const start = text.search(/^Reporting-MTA:/m);
  if (start === -1) throw new Error(`no delivery report in:\n${text}`);
  const end = text.indexOf('\n----- ', start);
  const returned = mail.attachments.find((a) => a.contentType === 'text/rfc822-headers' || a.contentType === 'message/rfc822');
  const headers = returned?.content.toString('utf8') ?? (end === -1 ? '' : text.slice(end));
  return { mail, ...(await report(text.slice(start, end === -1 ? undefined : end))), headers };
}

/** The same for a notice an upstream received as JSON text fields (the plain-text notice's body). */
export function deliveryStatusOfText(text: string): Promise<DeliveryStatus> {
  return deliveryStatus(`Content-Type: text/plain; charset=utf-8\r\n\r\n${text}`);
}
