/** Config and message pieces for the m365 / gmail upstream tests (fakes: test/fakes/microsoft.ts, google.ts, oauth-smtp.ts). */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseConfig } from '../../src/config/load.js';
import type { OAuthUpstreamConfig } from '../../src/config/types.js';
import { restConfig } from './rest.js';

export interface M365Keys {
  url: string;
  tenant: string;
  clientId: string;
  /** client_secret_file contents, or a certificate pair. */
  secret?: string;
  certificate?: { certFile: string; keyFile: string };
  via?: 'graph' | 'smtp';
  smtpPort?: number;
  extra?: string;
}

/** The keys that point an upstream at the fakes: API and token endpoint, and the loopback SMTP server without TLS. */
function fakeTargets(url: string, tokenPath: string, smtpPort = 1, extra = ''): string {
  return `endpoint = "${url}"
token_endpoint = "${url}${tokenPath}"
host = "127.0.0.1"
port = ${smtpPort}
tls = "none"
timeout = "5s"
${extra}`;
}

export function m365Upstream(dir: string, k: M365Keys, name = 'm365'): string {
  let credential = '';
  if (k.secret !== undefined) {
    const file = join(dir, `${name}.secret`);
    writeFileSync(file, `${k.secret}\n`, { mode: 0o600 });
    credential = `client_secret_file = ${JSON.stringify(file)}`;
  } else if (k.certificate) {
    credential = `certificate_file = ${JSON.stringify(k.certificate.certFile)}\nprivate_key_file = ${JSON.stringify(k.certificate.keyFile)}`;
  }
  return `[[upstream]]
name = "${name}"
type = "m365"
tenant = "${k.tenant}"
client_id = "${k.clientId}"
${credential}
via = "${k.via ?? 'graph'}"
send_as = "scanner@contoso.com"
mailbox_domains = ["contoso.com"]
${fakeTargets(k.url, `/${k.tenant}/oauth2/v2.0/token`, k.smtpPort, k.extra)}`;
}

export function gmailUpstream(k: { url: string; file: string; via?: 'api' | 'smtp'; smtpPort?: number; extra?: string }, name = 'gworkspace'): string {
  return `[[upstream]]
name = "${name}"
type = "gmail"
service_account_file = ${JSON.stringify(k.file)}
via = "${k.via ?? 'api'}"
send_as = "scanner@example.com"
${fakeTargets(k.url, '/token', k.smtpPort, k.extra)}`;
}

/** The parsed [[upstream]] (through the real config loader). */
export function oauthConfig(dir: string, upstream: string): OAuthUpstreamConfig {
  const config = parseConfig(restConfig(join(dir, 'spool'), upstream), join(dir, 'mailshim.toml'), {});
  return config.upstreams[0] as OAuthUpstreamConfig;
}

/** A plain scanner-style message: From the mailbox, To the envelope recipients, CRLF, with an 8-bit-safe base64 attachment. */
export function scannerMessage(from: string, to: string[], tag: string, bodyBytes = 0): Buffer {
  const pdf = Buffer.alloc(bodyBytes, 0x41).toString('base64').replace(/.{76}/g, '$&\r\n');
  return Buffer.from(
    [
      `From: Scanner <${from}>`,
      `To: ${to.join(', ')}`,
      `Subject: Scan ${tag}`,
      `Message-ID: <${tag}@scanner.lan>`,
      'Date: Fri, 27 Nov 2026 10:00:00 +0000', // complete, so intake adds nothing (it adds a missing Date:, as Postfix does)
      'MIME-Version: 1.0',
      'Content-Type: multipart/mixed; boundary="b1"',
      '',
      '--b1',
      'Content-Type: text/plain; charset=utf-8',
      'Content-Transfer-Encoding: 8bit',
      '',
      `Scanned document ${tag} — grüße.`,
      '--b1',
      'Content-Type: application/pdf; name="scan.pdf"',
      'Content-Transfer-Encoding: base64',
      '',
      pdf || 'JVBERi0xLjQK',
      '--b1--',
      '',
    ].join('\r\n'),
  );
}

/** The body (after the header block) of a message. */
export function bodyOf(raw: Buffer): Buffer {
  return raw.subarray(raw.indexOf('\r\n\r\n') + 4);
}
