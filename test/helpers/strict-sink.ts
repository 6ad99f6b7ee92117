/**
 * A strict SMTP sink written for checking what a client *declares*: it advertises the extensions
 * a test asks for and holds the client to them as RFC 1870 (SIZE), RFC 6152 (8BITMIME), RFC 6531
 * (SMTPUTF8) and RFC 3461 (DSN) require of a client — an 8-bit body without BODY=8BITMIME, a
 * parameter for an extension not advertised, or a declared SIZE over the limit is refused the way
 * Postfix's smtpd refuses it. Records every command line.
 */
import { createServer, type Server, type Socket } from 'node:net';

export interface SinkOptions {
  /** EHLO keywords to advertise, e.g. ["SIZE 1000", "8BITMIME", "DSN"]. */
  extensions: string[];
  /** Answer STARTTLS with 220, then hang up when the ClientHello arrives (a middlebox killing the handshake). */
  resetOnStarttls?: boolean;
  /** The reply to AUTH (advertise "AUTH PLAIN LOGIN" in extensions), e.g. "530 5.7.0 Must issue a STARTTLS command first". */
  authReply?: string;
}

export interface SinkTransaction {
  mail: string;
  rcpt: string[];
  data?: Buffer;
}

export interface StrictSink {
  port: number;
  commands: string[];
  transactions: SinkTransaction[];
  close(): Promise<void>;
}

/** MAIL FROM parameter → the EHLO keyword that must have been advertised for it. */
const MAIL_PARAMS: Record<string, string> = { SIZE: 'SIZE', BODY: '8BITMIME', SMTPUTF8: 'SMTPUTF8', RET: 'DSN', ENVID: 'DSN' };

function params(line: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const token of line
    .replace(/^[A-Z ]+:\s*<[^>]*>\s*/i, '')
    .split(/\s+/)
    .filter(Boolean)) {
    const [key, value = ''] = token.split('=');
    out.set(key!.toUpperCase(), value);
  }
  return out;
}

export async function startStrictSink(options: SinkOptions): Promise<StrictSink> {
  const commands: string[] = [];
  const transactions: SinkTransaction[] = [];
  const sockets = new Set<Socket>();
  const advertised = new Set(options.extensions.map((e) => e.split(' ')[0]!.toUpperCase()));
  const sizeLimit = Number(options.extensions.find((e) => /^SIZE /i.test(e))?.split(' ')[1] ?? 0);
  const server: Server = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
    let buffer = Buffer.alloc(0);
    let current: SinkTransaction | undefined;
    let inData = false;
    const say = (line: string) => socket.write(line + '\r\n');
    say('220 sink ESMTP');
    socket.on('data', (chunk: Buffer) => {
      buffer = Buffer.concat([buffer, chunk]);
      for (;;) {
        if (inData) {
          const end = buffer.indexOf('\r\n.\r\n');
          if (end === -1) return;
          const body = buffer.subarray(0, end + 2);
          buffer = buffer.subarray(end + 5);
          inData = false;
          const declared8bit = params(current!.mail).get('BODY') === '8BITMIME';
          if (!declared8bit && body.some((b) => b > 0x7f)) say('554 5.6.0 8-bit data without BODY=8BITMIME');
          else {
            current!.data = body;
            say('250 2.0.0 Ok: queued as SINK' + transactions.length);
          }
          current = undefined;
          continue;
        }
        const eol = buffer.indexOf('\r\n');
        if (eol === -1) return;
        const line = buffer.subarray(0, eol).toString('utf8');
        buffer = buffer.subarray(eol + 2);
        commands.push(line);
        const verb = line.slice(0, 4).toUpperCase();
        if (verb === 'EHLO') {
          const lines = ['sink', ...options.extensions, ...(options.resetOnStarttls ? ['STARTTLS'] : [])];
          lines.forEach((l, i) => say(`250${i === lines.length - 1 ? ' ' : '-'}${l}`));
        } else if (verb === 'STAR' && options.resetOnStarttls) {
          say('220 2.0.0 Ready to start TLS');
          // Hang up once the client's ClientHello arrives: mid-handshake, as a middlebox would.
          socket.removeAllListeners('data');
          socket.once('data', () => socket.destroy());
          return;
        } else if (verb === 'AUTH' && options.authReply) {
          say(options.authReply);
        } else if (verb === 'MAIL') {
          const p = params(line);
          const unknown = [...p.keys()].find((k) => !MAIL_PARAMS[k] || !advertised.has(MAIL_PARAMS[k]));
          if (unknown) say(`555 5.5.4 Unsupported option: ${unknown}`);
          else if (sizeLimit && Number(p.get('SIZE') ?? 0) > sizeLimit) say('552 5.3.4 Message size exceeds fixed limit');
          else {
            current = { mail: line, rcpt: [] };
            transactions.push(current);
            say('250 2.1.0 Ok');
          }
        } else if (verb === 'RCPT') {
          const p = params(line);
          if ((p.has('NOTIFY') || p.has('ORCPT')) && !advertised.has('DSN')) say('555 5.5.4 Unsupported option: NOTIFY');
          else if (!current) say('503 5.5.1 Error: need MAIL command');
          else {
            current.rcpt.push(line);
            say('250 2.1.5 Ok');
          }
        } else if (verb === 'DATA') {
          if (!current || current.rcpt.length === 0) say('554 5.5.1 Error: no valid recipients');
          else {
            inData = true;
            say('354 End data with <CR><LF>.<CR><LF>');
          }
        } else if (verb === 'RSET') {
          current = undefined;
          say('250 2.0.0 Ok');
        } else if (verb === 'QUIT') {
          say('221 2.0.0 Bye');
          socket.end();
          return;
        } else say('250 2.0.0 Ok');
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const port = (server.address() as { port: number }).port;
  return {
    port,
    commands,
    transactions,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
