/**
 * The sendmail-compatible entry: `sendmail`, `mailq`, `newaliases` and `mailshim sendmail ...`.
 *
 * Hot path: cron runs this once per job, so only the modules a plain submission needs are
 * imported statically (flag parser, the small config reader, header helpers, the socket client);
 * -bs, -bp, -bi and the maildrop fallback are imported on demand, and yargs, pino, lmdb and
 * nodemailer's transport are never loaded here. bench/sendmail-startup.mjs measures it.
 */
import { readSync } from 'node:fs';
import { configPath } from '../config/document.js';
import { loadClientConfig, type ClientConfig } from '../config/local.js';
import { MailshimError, SubmitError } from '../errors.js';
import { parseSendmailArgs, type SendmailArgs } from '../sendmail/args.js';
import { normalizeInput } from '../sendmail/message.js';
import { commandLineRecipients, invoker, submitMessage } from '../sendmail/submission.js';
import { control } from '../sendmail/submit.js';
import { EX, SUBMIT_EXIT } from './sysexits.js';

/**
 * The message on stdin, read with plain blocking read(2) calls: process.stdin (a stream, and for
 * a pipe a socket) costs more of a cron job's start-up than the read itself. Reads fill a buffer
 * before the next is allocated: a pipe whose writer is slower than this answers a line per read,
 * and a buffer per read would hold 64 KiB per line. A stdin its opener left non-blocking answers
 * EAGAIN when it has nothing yet; the rest is then read as a stream.
 */
export async function readStdin(): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let buffer = Buffer.allocUnsafe(64 * 1024);
  let used = 0;
  for (;;) {
    if (used === buffer.length) {
      chunks.push(buffer);
      buffer = Buffer.allocUnsafe(buffer.length);
      used = 0;
    }
    let got: number;
    try {
      got = readSync(0, buffer, used, buffer.length - used, null);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EAGAIN') throw error;
      chunks.push(buffer.subarray(0, used));
      for await (const rest of process.stdin) chunks.push(rest as Buffer);
      return Buffer.concat(chunks);
    }
    if (got === 0) break;
    used += got;
  }
  chunks.push(buffer.subarray(0, used));
  return Buffer.concat(chunks);
}

/** -bs: the dialog from src/sendmail/, loaded on demand (it pulls in smtp-server). */
async function smtpMode(config: ClientConfig, args: SendmailArgs): Promise<number> {
  const end = await (await import('../sendmail/smtp-dialog.js')).smtpDialog(config, args, invoker());
  const code = end === 'done' ? EX.OK : EX.IOERR;
  // stdin may stay open after QUIT: exit once everything written has reached stdout.
  process.stdout.write('', () => process.exit(code));
  return code;
}

async function dispatch(args: SendmailArgs, config: ClientConfig): Promise<number> {
  switch (args.mode) {
    case 'deliver': {
      const normalized = normalizeInput(await readStdin(), args.ignoreDots);
      await submitMessage(config, invoker(), { args, recipients: commandLineRecipients(args), normalized });
      return EX.OK;
    }
    case 'smtp':
      return await smtpMode(config, args);
    case 'queue-list':
      if (args.summary) return await (await import('./mailq.js')).mailqSummary(config);
      return await (await import('./mailq.js')).mailq(config, args.json);
    case 'newaliases':
      return await (await import('./newaliases.js')).newaliases(config);
    case 'run-queue': {
      const reply = await control(config, { op: 'flush' });
      if (!reply) throw new SubmitError('ETEMPFAIL', 'the mailshim daemon is not running; start it to run the queue');
      if (!reply.ok) throw new SubmitError(reply.code, reply.error);
      if (args.verbose) process.stdout.write(`mailshim: ${String(reply.due)} deferred message(s) due now\n`);
      return EX.OK;
    }
  }
}

/** Runs one invocation and returns the sysexits code; every failure is one line on stderr. */
export async function sendmail(argv: readonly string[], invokedAs: string): Promise<number> {
  try {
    const args = parseSendmailArgs(argv, invokedAs);
    const config = loadClientConfig(configPath(undefined));
    return await dispatch(args, config);
  } catch (error) {
    if (error instanceof SubmitError) {
      process.stderr.write(`${invokedAs}: ${error.message}\n`);
      return SUBMIT_EXIT[error.code] ?? EX.SOFTWARE;
    }
    if (error instanceof MailshimError && error.code === 'ECONFIG') {
      process.stderr.write(`${invokedAs}: ${error.message.replace(/\n/g, '; ')}\n`);
      return EX.CONFIG;
    }
    process.stderr.write(`${invokedAs}: internal error: ${(error as Error)?.stack ?? String(error)}\n`);
    return EX.SOFTWARE;
  }
}

/** For bin/sendmail, bin/mailq, bin/newaliases. */
export function run(argv: readonly string[], invokedAs: string): void {
  void sendmail(argv, invokedAs).then((code) => {
    process.exitCode = code;
  });
}
