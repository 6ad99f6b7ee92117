/** Shared pieces of the REST provider end-to-end tests: the rich test message, submission, configs. */
import assert from 'node:assert/strict';
import nodemailer from 'nodemailer';
import { relayConfig } from './config.js';

/** A 1x1 PNG and a tiny PDF: real bytes, so base64 round trips are checked. */
export const PNG = Buffer.from('iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==', 'base64');
export const PDF = Buffer.from('%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n2 0 obj<</Type/Pages/Kids[]/Count 0>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n', 'latin1');

export const RICH = {
  from: { address: 'alice@example.org', name: 'Alice Example' },
  to: { address: 'bob@example.net', name: 'Bob Builder' },
  /** In the To header but not an envelope recipient: must not be delivered to. */
  headerOnly: 'dave@example.net',
  cc: { address: 'carol@example.com', name: 'Carol Cc' },
  /** Envelope-only recipient: a Bcc. */
  bcc: 'erin@example.net',
  replyTo: 'replies@example.org',
  subject: 'Quarterly report — Q3 ✓',
  text: 'Hello Bob,\nthe report is attached.\n',
  html: '<p>Hello Bob,</p><p><img src="cid:logo@example.org" alt="logo"></p>',
  cid: 'logo@example.org',
  headers: { 'X-Report-Id': 'Q3-2026', 'List-Unsubscribe': '<mailto:unsub@example.org>', 'In-Reply-To': '<prev@example.org>', References: '<prev@example.org>' },
};

export interface Built {
  raw: Buffer;
  envelope: { from: string; to: string[] };
  messageId: string;
  subject: string;
}

/** The rich message: text + html + inline image (cid) + PDF + Reply-To + Cc + envelope-only Bcc. */
export async function buildMessage(options: { tag: string; inline?: boolean; threading?: boolean; extraHeaders?: Record<string, string> }): Promise<Built> {
  const messageId = `<${options.tag}@example.org>`;
  const headers: Record<string, string> = { ...RICH.headers, ...options.extraHeaders };
  if (options.threading === false) {
    delete headers['In-Reply-To'];
    delete headers.References;
    delete headers['List-Unsubscribe'];
  }
  const subject = `${RICH.subject} ${options.tag}`;
  // nodemailer's stream transport only composes the MIME (no network).
  const composer = nodemailer.createTransport({ streamTransport: true, buffer: true, newline: 'windows' });
  const info = await composer.sendMail({
    from: RICH.from,
    to: [RICH.to, RICH.headerOnly],
    cc: [RICH.cc],
    replyTo: RICH.replyTo,
    subject,
    text: RICH.text,
    html: options.inline === false ? '<p>Hello Bob,</p>' : RICH.html,
    messageId,
    headers,
    attachments: [
      ...(options.inline === false ? [] : [{ filename: 'logo.png', content: PNG, contentType: 'image/png', cid: RICH.cid }]),
      { filename: 'report.pdf', content: PDF, contentType: 'application/pdf' },
    ],
  });
  return { raw: info.message as Buffer, messageId, subject, envelope: { from: RICH.from.address, to: [RICH.to.address, RICH.cc.address, RICH.bcc] } };
}

/** Submits over SMTP to the daemon with an explicit envelope; resolves with the queue id. */
export async function submit(port: number, message: { raw: Buffer | string; envelope: { from: string; to: string[] } }): Promise<string> {
  const transport = nodemailer.createTransport({ host: '127.0.0.1', port, secure: false, ignoreTLS: true });
  try {
    const info = await transport.sendMail({ envelope: message.envelope, raw: message.raw });
    const id = /queued as ([0-9A-Z]+)/.exec(info.response)?.[1];
    assert.ok(id, `queue id in ${info.response}`);
    return id;
  } finally {
    transport.close();
  }
}

/** A relay config whose upstreams are the given [[upstream]] TOML blocks. */
export function restConfig(spool: string, upstreams: string, retry?: { initial?: string; max?: string; age?: string }): string {
  return relayConfig({ spool, upstreams, retry }).replace('max_recipients = 5', 'max_recipients = 100');
}

/** What arrived is our Received: header followed by exactly the bytes the client submitted. */
export function assertRawUntouched(received: Buffer, submitted: Buffer): void {
  assert.equal(received.subarray(0, 10).toString(), 'Received: ', 'starts with our Received: header');
  assert.ok(received.subarray(received.length - submitted.length).equals(submitted), 'the submitted bytes arrive unchanged');
}

export const normalise = (text: unknown) => String(text).replace(/\r\n/g, '\n').trimEnd();
