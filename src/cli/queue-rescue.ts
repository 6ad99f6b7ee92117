/**
 * `mailshim queue verify` and `mailshim queue dump --raw DIR`: check the spool, and copy every
 * message out of it in a form standard tools read without LMDB — `<id>.eml` (the message as it
 * would be sent, with our Received header) and `<id>.json` (envelope and state). To re-inject a
 * message: `sendmail -f "$(jq -r .sender ID.json)" $(jq -r '.pending[]' ID.json) < ID.eml`.
 */
import { closeSync, fsyncSync, mkdirSync, openSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { bodyProblem } from '../spool/checksum.js';
import { messageState } from '../spool/states.js';
import { describeProblems, verifyClean, verifySpool } from '../spool/verify.js';
import { CommandError, EXIT } from './exit.js';
import type { QueueContext } from './queue.js';

/** Exit 0 when the spool is consistent, 65 (EX_DATAERR) when any problem is listed. */
export function verify(ctx: QueueContext, json: boolean): number {
  const report = verifySpool(ctx.spool);
  const clean = verifyClean(report);
  if (json) {
    ctx.out.write(JSON.stringify({ ok: clean, ...report }, null, 2) + '\n');
  } else {
    ctx.out.write(`${ctx.spool.path}: ${report.messages} message(s), ${report.bodies} bodies, ${report.dueEntries} due-index entries\n`);
    for (const line of describeProblems(report)) ctx.out.write(`  ${line}\n`);
    ctx.out.write(
      clean ? 'spool OK\n' : `spool has problems: ${describeProblems(report).length}; damaged messages are held and never sent as they are (\`mailshim queue dump --raw DIR\` copies them out)\n`,
    );
  }
  return clean ? EXIT.OK : EXIT.DATA_PROBLEM;
}

function writeNew(file: string, data: string | Buffer): void {
  let fd: number;
  try {
    fd = openSync(file, 'wx', 0o600); // never overwrite: a rescue must not clobber an earlier one
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') throw new CommandError(EXIT.CANT_CREATE, `${file} exists; dump into an empty directory`);
    throw error;
  }
  try {
    const bytes = typeof data === 'string' ? Buffer.from(data) : data;
    for (let written = 0; written < bytes.length;) written += writeSync(fd, bytes, written);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

export function dumpRaw(ctx: QueueContext, dir: string): number {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  let count = 0;
  let damaged = 0;
  for (const record of ctx.spool.list()) {
    const body = ctx.spool.body(record.id);
    const problem = record.damaged ?? bodyProblem(record.bodyCrc32, body, record.size);
    if (problem) damaged++;
    const envelope = {
      id: record.id,
      sender: record.sender,
      pending: record.recipients.filter((r) => r.status === 'pending' || r.status === 'deferred').map((r) => r.address),
      recipients: record.recipients.map((r) => ({ address: r.address, status: r.status, attempts: r.attempts, lastReply: r.lastReply })),
      state: messageState(record),
      receivedAt: new Date(record.receivedAt).toISOString(),
      messageId: record.messageId,
      origin: record.origin,
      isBounce: record.isBounce,
      size: record.size,
      bodyCrc32: record.bodyCrc32,
      body: body ? `${record.id}.eml` : null,
      problem: problem ?? null,
    };
    if (body) writeNew(join(dir, `${record.id}.eml`), body);
    writeNew(join(dir, `${record.id}.json`), JSON.stringify(envelope, null, 2) + '\n');
    count++;
  }
  ctx.out.write(`${count} message(s) written to ${dir}${damaged ? `; ${damaged} damaged (see "problem" in their .json)` : ''}\n`);
  return EXIT.OK;
}
