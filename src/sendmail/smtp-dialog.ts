/**
 * `sendmail -bs`: an SMTP dialog on stdin/stdout (used by some MUAs and by inetd-style setups).
 * smtp-server drives the protocol over a duplex of stdin and stdout; each message goes through
 * the same header completion and submission as the plain mode, and its 250 is sent only once
 * the message is on disk. smtp-server insists on user@domain in MAIL/RCPT, so local names are
 * written `root@localhost` (or @<hostname>); they then go through the aliases like `sendmail root`.
 */
import { Duplex, PassThrough, Writable } from 'node:stream';
import type { Socket } from 'node:net';
import { SMTPServer, type SMTPServerSession } from 'smtp-server';
import type { ClientConfig } from '../config/local.js';
import { SubmitError } from '../errors.js';
import { checkEnvelopeAddress, SmtpReply } from '../intake/smtp-replies.js';
import { adaptSmtpServer } from '../intake/smtp-server-adapter.js';
import { sendmailDsnOf } from '../intake/dsn-params.js';
import type { SendmailArgs } from './args.js';
import { submitMessage, type Invoker } from './submission.js';

const REPLIES: Record<string, [number, string]> = {
  EUSAGE: [501, '5.5.4'],
  EDATAERR: [554, '5.6.0'],
  ENOUSER: [550, '5.1.1'],
  ECANTCREAT: [451, '4.3.0'],
  ETEMPFAIL: [451, '4.3.0'],
  ECONFIG: [451, '4.3.5'],
};

function toReply(error: unknown): SmtpReply {
  if (error instanceof SubmitError) {
    const [code, enhanced] = REPLIES[error.code] ?? [451, '4.3.0'];
    return new SmtpReply(code, enhanced, error.message);
  }
  return new SmtpReply(451, '4.3.0', 'Local error in processing');
}

/** How the dialog ended: QUIT or end of input (`done`), or a broken stdin/stdout (`io-error`). */
export type DialogEnd = 'done' | 'io-error';

/** Runs the dialog until QUIT or the end of stdin; the caller exits the process (stdin may stay open). */
export async function smtpDialog(config: ClientConfig, args: SendmailArgs, who: Invoker): Promise<DialogEnd> {
  adaptSmtpServer();
  // A caller may pipe the whole dialog and close stdin at once: EOF ends the session only once
  // every command already read has been answered (as Postfix's sendmail -bs), never mid-DATA.
  // smtp-server's command parser is a Writable fed from stdin: its 'finish' comes once every
  // command it was given has been handled (its write callbacks wait for each reply).
  let pending = 0;
  let inputDone = false;
  let settle: (() => void) | undefined;
  const settleIfIdle = () => {
    if (inputDone && pending === 0) settle?.();
  };
  const server = new SMTPServer({
    name: config.hostname,
    banner: 'mailshim (sendmail -bs)',
    size: config.maxMessageSize,
    maxRecipients: config.maxRecipients,
    authOptional: true,
    disabledCommands: ['AUTH', 'STARTTLS'],
    hideSTARTTLS: true,
    // RFC 3461 parameters are honoured like the command line's -N/-R/-V.
    hideDSN: false,
    // Enhanced status codes like the listener (and Postfix's smtpd behind its sendmail -bs).
    hideENHANCEDSTATUSCODES: false,
    disableReverseLookup: true,
    logger: false,
    onMailFrom(address, _session, callback) {
      try {
        if (address.address !== '') address.address = checkEnvelopeAddress(address.address, 'sender');
        callback();
      } catch (error) {
        callback(error as Error);
      }
    },
    onRcptTo(address, _session, callback) {
      try {
        address.address = checkEnvelopeAddress(address.address, 'recipient', false);
        callback();
      } catch (error) {
        callback(error as Error);
      }
    },
    onData(stream, session: SMTPServerSession, callback) {
      const chunks: Buffer[] = [];
      stream.on('data', (chunk: Buffer) => chunks.push(chunk));
      stream.on('end', () => {
        if (stream.sizeExceeded) return callback(new SmtpReply(552, '5.3.4', 'Message too big'));
        const sender = session.envelope.mailFrom ? session.envelope.mailFrom.address : '';
        const recipients = session.envelope.rcptTo.map((r) => r.address);
        // smtp-server hands over the dot-unstuffed CRLF message; -t and -i make no sense in a dialog,
        // and -v's "queued as" note would land in the middle of the dialog on stdout (the reply says it).
        const perMessage: SendmailArgs = { ...args, sender, readRecipients: false, verbose: false, dsn: sendmailDsnOf(session.envelope, args.dsn) };
        pending++;
        submitMessage(config, who, { args: perMessage, recipients, normalized: Buffer.concat(chunks) })
          .then(
            (id) => callback(null, id ? `2.0.0 Ok: queued as ${id}` : '2.0.0 Ok: queued in the maildrop'),
            (error: unknown) => callback(toReply(error)),
          )
          .finally(() => {
            pending--;
            settleIfIdle();
          });
      });
    },
  });
  // stdin is connected only once the greeting is out: smtp-server drops "early talkers", and a
  // caller piping a whole dialog at once is normal for -bs.
  const input = new PassThrough();
  let greeted = false;
  const output = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      process.stdout.write(chunk, () => callback());
      if (!greeted) {
        greeted = true;
        process.stdin.pipe(input);
      }
    },
  });
  const io = Duplex.from({ readable: input, writable: output });
  // smtp-server arms idle timers through the socket API; a pipe has none, the caller owns the lifetime.
  Object.assign(io, { readyState: 'open', setTimeout: () => io, setKeepAlive: () => io, setNoDelay: () => io });
  // smtp-server's greeting timer is unref'd and stdin is not read yet: hold the process open.
  const keepAlive = setInterval(() => undefined, 60_000);
  return await new Promise<DialogEnd>((resolve) => {
    settle = () => resolve('done');
    io.on('finish', () => resolve('done')); // QUIT: smtp-server ended its side
    io.on('end', () => {
      // stdin closed: answer what was read first
      const connection = [...server.connections][0] as { _parser?: NodeJS.WritableStream & { writableFinished: boolean } } | undefined;
      const parser = connection?._parser;
      const done = () => {
        inputDone = true;
        settleIfIdle();
      };
      if (!parser || parser.writableFinished) done();
      else parser.once('finish', done);
    });
    io.on('error', () => resolve('io-error'));
    server.connect(io as unknown as Socket, { remoteAddress: '127.0.0.1', remotePort: 0, localAddress: '127.0.0.1', localPort: 0 });
  }).finally(() => clearInterval(keepAlive));
}
