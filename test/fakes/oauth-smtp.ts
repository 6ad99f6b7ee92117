/**
 * A loopback SMTP submission server that accepts only SASL XOAUTH2 with a bearer token the token
 * fake issued for that user and scope, like smtp.office365.com and smtp.gmail.com:
 * - Exchange Online: https://learn.microsoft.com/exchange/client-developer/legacy-protocols/how-to-authenticate-an-imap-pop-smtp-application-by-using-oauth
 *   (base64("user=" user "^Aauth=Bearer " token "^A^A"); a refused token is "535 5.7.3
 *   Authentication unsuccessful"; the mailbox must be the MAIL FROM).
 * - Gmail: https://developers.google.com/gmail/imap/xoauth2-protocol (a refused token gets a 334
 *   challenge with base64 JSON {status, schemes, scope}; the client answers with an empty line and
 *   the server replies 535 5.7.8).
 * smtp-server decodes the XOAUTH2 initial response and calls onAuth with method "XOAUTH2".
 */
import { SMTPServer } from 'smtp-server';
import { adaptSmtpServer } from '../../src/intake/smtp-server-adapter.js';
import { SmtpReply } from '../../src/intake/smtp-replies.js';

adaptSmtpServer();

export interface OAuthSmtpMessage {
  user: string;
  sender: string;
  recipients: string[];
  raw: Buffer;
}

export interface OAuthSmtp {
  port: number;
  messages: OAuthSmtpMessage[];
  /** AUTH attempts: the user and whether the token was accepted. */
  auths: Array<{ user: string; ok: boolean; method: string }>;
  /** Connections the server has seen close. */
  closed: number;
  waitFor(count: number, timeoutMs?: number): Promise<OAuthSmtpMessage[]>;
  waitForClosed(count: number, timeoutMs?: number): Promise<void>;
  close(): Promise<void>;
}

export async function startOAuthSmtp(options: { style: 'exchange' | 'gmail'; scope: string; valid: (token: string, user: string) => boolean; socketTimeout?: number }): Promise<OAuthSmtp> {
  const messages: OAuthSmtpMessage[] = [];
  const auths: OAuthSmtp['auths'] = [];
  const waiters: Array<() => void> = [];
  const server = new SMTPServer({
    authMethods: ['XOAUTH2'],
    allowInsecureAuth: true, // loopback test without TLS; the upstream's `tls = "none"` override
    hideENHANCEDSTATUSCODES: false,
    disableReverseLookup: true,
    logger: false,
    ...(options.socketTimeout ? { socketTimeout: options.socketTimeout } : {}),
    onClose() {
      self.closed++;
      for (const wake of waiters.splice(0)) wake();
    },
    onAuth(auth, _session, callback) {
      const user = auth.username ?? '';
      const ok = auth.method === 'XOAUTH2' && typeof auth.accessToken === 'string' && options.valid(auth.accessToken, user);
      auths.push({ user, ok, method: auth.method });
      if (ok) return callback(null, { user });
      if (options.style === 'gmail') return callback(null, { data: { status: '401', schemes: 'bearer', scope: options.scope } });
      callback(new SmtpReply(535, '5.7.3', 'Authentication unsuccessful [SN4PR0501CA0054.namprd05.prod.outlook.com]'));
    },
    onMailFrom(address, session, callback) {
      if (address.address.toLowerCase() !== String(session.user).toLowerCase()) {
        return callback(new SmtpReply(554, '5.7.60', 'SMTP; Client does not have permissions to send as this sender'));
      }
      callback();
    },
    onData(stream, session, callback) {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => {
        messages.push({
          user: String(session.user),
          sender: session.envelope.mailFrom ? session.envelope.mailFrom.address : '',
          recipients: session.envelope.rcptTo.map((r) => r.address),
          raw: Buffer.concat(chunks),
        });
        for (const wake of waiters.splice(0)) wake();
        callback(null, `2.0.0 OK <${messages.length}@fake> [Hostname=fake.prod.outlook.com]`);
      });
    },
  });
  server.on('error', () => {});
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const wait = async (done: () => boolean, what: string, timeoutMs: number) => {
    const deadline = Date.now() + timeoutMs;
    while (!done()) {
      if (Date.now() > deadline) throw new Error(`oauth smtp: timed out waiting for ${what}`);
      await new Promise<void>((resolve) => {
        waiters.push(resolve);
        setTimeout(resolve, 200);
      });
    }
  };
  const self: OAuthSmtp = {
    port: (server.server.address() as { port: number }).port,
    messages,
    auths,
    closed: 0,
    waitForClosed: (count, timeoutMs = 15_000) => wait(() => self.closed >= count, `${count} closed connection(s)`, timeoutMs),
    async waitFor(count, timeoutMs = 15_000) {
      await wait(() => messages.length >= count, `${count} message(s)`, timeoutMs);
      return messages;
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
  return self;
}
