/**
 * The sendmail-compatible entry: `sendmail`, `mailq`, `newaliases` and `mailshim sendmail ...`.
 *
 * Hot path: cron runs this once per job, so only the modules a plain submission needs are
 * imported statically (flag parser, the small config reader, header helpers, the socket client);
 * -bs, -bp, -bi and the maildrop fallback are imported on demand, and yargs, pino, lmdb and
 * nodemailer's transport are never loaded here. bench/sendmail-startup.mjs measures it.
 */
import { userInfo } from 'node:os';
import { configPath } from '../config/document.js';
import { loadClientConfig, type ClientConfig } from '../config/local.js';
import { MailshimError, SubmitError } from '../errors.js';
import { parseAddressList } from '../message/addresses.js';
import { parseSendmailArgs, type SendmailArgs } from '../sendmail/args.js';
import { normalizeInput, prepareMessage } from '../sendmail/message.js';
import { control, submit } from '../sendmail/submit.js';
import { newQueueId, newSubmitToken } from '../spool/ids.js';
import { EX, SUBMIT_EXIT } from './sysexits.js';

export interface Invoker {
  user: string;
  uid: number;
}

export function invoker(): Invoker {
  const uid = process.getuid?.() ?? -1;
  try {
    return { user: userInfo().username, uid };
  } catch {
    return { user: `uid${uid}`, uid }; // no passwd entry (containers)
  }
}

async function readStdin(): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/** Addresses given on the command line: each argument is an RFC 5322 address list, read exactly like a -t header. */
function commandLineRecipients(args: SendmailArgs): string[] {
  return args.recipients.flatMap((a) => parseAddressList(a).map((m) => m.address));
}

export interface MessageInput {
  args: SendmailArgs;
  /** Envelope recipients besides -t's (command line or RCPT TO). */
  recipients: string[];
  normalized: Buffer;
}

/** Header completion, -t, then submission; shared by the plain mode and -bs. Returns the queue id (undefined: in the maildrop). */
export async function submitMessage(config: ClientConfig, who: Invoker, input: MessageInput): Promise<string | undefined> {
  const { args } = input;
  if (input.normalized.length > config.maxMessageSize) throw new SubmitError('EDATAERR', `message too big (limit ${config.maxMessageSize} bytes)`);
  const sender = args.sender ?? who.user;
  const prepared = prepareMessage(input.normalized, { readRecipients: args.readRecipients, sender: sender || who.user, fullName: args.fullName, hostname: config.hostname, uniqueId: newQueueId() });
  const recipients = [...input.recipients, ...prepared.headerRecipients];
  if (recipients.length === 0) {
    throw new SubmitError('EUSAGE', args.readRecipients ? 'no recipients found in To, Cc or Bcc' : 'no recipients given (name them, or use -t)');
  }
  const result = await submit(config, { token: newSubmitToken(), sender, recipients, user: who.user, uid: who.uid, bytes: prepared.bytes });
  for (const note of result.notes) process.stderr.write(`sendmail: ${note}\n`);
  if (args.verbose) {
    const how = result.via === 'daemon' ? 'by the daemon' : `in the maildrop (${result.reason})`;
    process.stdout.write(result.id ? `mailshim: queued as ${result.id} ${how}\n` : `mailshim: queued ${how}; the daemon assigns the queue id when it starts\n`);
  }
  return result.id;
}

async function dispatch(args: SendmailArgs, config: ClientConfig): Promise<number> {
  switch (args.mode) {
    case 'deliver': {
      const normalized = normalizeInput(await readStdin(), args.ignoreDots);
      await submitMessage(config, invoker(), { args, recipients: commandLineRecipients(args), normalized });
      return EX.OK;
    }
    case 'smtp':
      return await (await import('./sendmail-smtp.js')).smtpDialog(config, args, invoker());
    case 'queue-list':
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
