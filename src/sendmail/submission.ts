/**
 * One message from the sendmail command to the spool: header completion, -t, the size limit,
 * then submission (daemon socket, or the maildrop). Shared by the plain mode and the -bs dialog;
 * src/cli/sendmail.ts only parses flags, reads stdin and maps errors to exit codes.
 */
import { userInfo } from 'node:os';
import type { ClientConfig } from '../config/local.js';
import { SubmitError } from '../errors.js';
import { parseAddressList } from '../message/addresses.js';
import { newQueueId, newSubmitToken } from '../spool/ids.js';
import type { SendmailArgs } from './args.js';
import { prepareMessage } from './message.js';
import { submit } from './submit.js';

/** Who runs sendmail: the message's owner in the queue, and the default envelope sender. */
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

/** Addresses given on the command line: each argument is an RFC 5322 address list, read exactly like a -t header. */
export function commandLineRecipients(args: SendmailArgs): string[] {
  return args.recipients.flatMap((a) => parseAddressList(a).map((m) => m.address));
}

export interface MessageInput {
  args: SendmailArgs;
  /** Envelope recipients besides -t's (command line or RCPT TO). */
  recipients: string[];
  normalized: Buffer;
}

/** Header completion, -t, then submission. Returns the queue id (undefined: in the maildrop). */
export async function submitMessage(config: ClientConfig, who: Invoker, input: MessageInput): Promise<string | undefined> {
  const { args } = input;
  if (input.normalized.length > config.maxMessageSize) throw new SubmitError('EDATAERR', `message too big (limit ${config.maxMessageSize} bytes)`);
  const sender = args.sender ?? who.user;
  const prepared = prepareMessage(input.normalized, { readRecipients: args.readRecipients, sender: sender || who.user, fullName: args.fullName, hostname: config.hostname, uniqueId: newQueueId() });
  const recipients = [...input.recipients, ...prepared.headerRecipients];
  if (recipients.length === 0) {
    throw new SubmitError('EUSAGE', args.readRecipients ? 'no recipients found in To, Cc or Bcc' : 'no recipients given (name them, or use -t)');
  }
  const result = await submit(config, { token: newSubmitToken(), sender, recipients, user: who.user, uid: who.uid, bytes: prepared.bytes, dsn: args.dsn });
  for (const note of result.notes) process.stderr.write(`sendmail: ${note}\n`);
  if (args.verbose) {
    const how = result.via === 'daemon' ? 'by the daemon' : `in the maildrop (${result.reason})`;
    process.stdout.write(result.id ? `mailshim: queued as ${result.id} ${how}\n` : `mailshim: queued ${how}; the daemon assigns the queue id when it starts\n`);
  }
  return result.id;
}
