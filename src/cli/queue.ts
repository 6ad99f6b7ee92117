/**
 * `mailshim queue show|retry|hold|release|delete|flush|bounce`. Safe while the daemon runs: every
 * change is a spool transaction (LMDB serialises writers across processes), and the daemon's
 * scheduler polls the due index, so it sees a retry or release within a second.
 */
import { createInterface } from 'node:readline/promises';
import type { Config } from '../config/types.js';
import { ControlClient } from '../control/client.js';
import { giveUp } from '../delivery/giveup.js';
import type { Logger } from '../log.js';
import { splitHeaders } from '../message/headers.js';
import { isQueueId } from '../spool/ids.js';
import { messageState, type ActionResult, type Spool } from '../spool/spool.js';
import type { MessageRecord } from '../spool/types.js';
import { CommandError, EXIT, formatAge } from './exit.js';

export interface QueueContext {
  config: Config;
  spool: Spool;
  /** Audit log (JSON lines on stderr): operator actions that change the queue. */
  log: Logger;
  out: NodeJS.WritableStream;
  now?: () => number;
}

function checkId(id: string): string {
  const upper = id.toUpperCase();
  if (!isQueueId(upper)) throw new CommandError(EXIT.USAGE, `"${id}" is not a queue id (16 characters, as printed by mailq)`);
  return upper;
}

function mustExist(ctx: QueueContext, id: string): MessageRecord {
  const record = ctx.spool.get(checkId(id));
  if (!record) throw new CommandError(EXIT.NO_SUCH_MESSAGE, `${id}: no such message in the queue (delivered, bounced or deleted?)`);
  return record;
}

function iso(ms: number): string {
  return new Date(ms).toISOString();
}

export function showMessage(ctx: QueueContext, id: string, format: 'text' | 'json' | 'raw'): void {
  const record = mustExist(ctx, id);
  const body = ctx.spool.body(record.id);
  if (format === 'raw') {
    if (!body) throw new CommandError(EXIT.SPOOL_IO, `${record.id}: message body missing from the spool`);
    ctx.out.write(body);
    return;
  }
  const headers = body ? splitHeaders(body).header.replace(/\r\n/g, '\n').replace(/\n+$/, '') : '';
  if (format === 'json') {
    ctx.out.write(JSON.stringify({ ...record, state: messageState(record), headers }, null, 2) + '\n');
    return;
  }
  const now = ctx.now?.() ?? Date.now();
  const next = record.nextAttemptAt === null ? (record.held ? 'held: not scheduled' : 'not scheduled') : record.nextAttemptAt <= now ? 'due now' : `${iso(record.nextAttemptAt)} (in ${formatAge(record.nextAttemptAt - now)})`;
  const origin = [record.origin.protocol, record.origin.client && `from ${record.origin.client}`, record.origin.helo && `(helo ${record.origin.helo})`, record.origin.user && `user ${record.origin.user}`].filter(Boolean).join(' ');
  const lines = [
    `Queue ID:     ${record.id}`,
    `State:        ${messageState(record)}${record.isBounce ? ' (a bounce we generated)' : ''}`,
    `Next attempt: ${next}`,
    `Received:     ${iso(record.receivedAt)} (${formatAge(now - record.receivedAt)} ago) via ${origin}`,
    `Size:         ${record.size} bytes`,
    `Message-ID:   ${record.messageId ?? '(none)'}`,
    `Sender:       <${record.sender}>`,
    `Attempts:     ${record.attempts}`,
    'Recipients:',
  ];
  for (const r of record.recipients) {
    lines.push(`  <${r.address}>  ${r.status}, ${r.attempts} attempt(s)${r.upstream ? `, last via ${r.upstream}` : ''}`);
    if (r.lastReply) lines.push(`      last reply: ${r.lastReply}`);
    for (const h of r.history) lines.push(`      ${iso(h.at)}  ${h.upstream}  ${h.outcome}  ${h.reply}`);
  }
  lines.push('Headers:', ...headers.split('\n').map((l) => `  ${l}`));
  ctx.out.write(lines.join('\n') + '\n');
}

function report(ctx: QueueContext, id: string, result: ActionResult, done: string, unchanged: string, unchangedExit: number): number {
  if (result === 'not-found') throw new CommandError(EXIT.NO_SUCH_MESSAGE, `${id}: no such message in the queue`);
  ctx.out.write(`${id}: ${result === 'done' ? done : unchanged}\n`);
  return result === 'done' ? EXIT.OK : unchangedExit;
}

/**
 * Records an operator action: a JSON line on stderr, and the same entry in the daemon's log (the
 * journal) when it runs, so deletions and bounces are traceable after the terminal is gone.
 */
async function audit(ctx: QueueContext, level: 'info' | 'warn', fields: { event: string; [key: string]: unknown }, message: string): Promise<void> {
  ctx.log[level](fields, message);
  await new ControlClient(ctx.config.control.socket, 2000).audit({ ...fields, operatorUid: process.getuid?.() }).catch(() => undefined);
}

/** Tell a running daemon to look now and forget upstream cool-downs; fine if it is not running. */
async function nudgeDaemon(ctx: QueueContext): Promise<void> {
  await new ControlClient(ctx.config.control.socket, 2000).flush().catch(() => undefined);
}

export async function retry(ctx: QueueContext, id: string | undefined, all: boolean): Promise<number> {
  if (all === (id !== undefined)) throw new CommandError(EXIT.USAGE, 'name one queue id, or --all');
  if (all) {
    const count = await ctx.spool.retryAll(ctx.now?.() ?? Date.now());
    await audit(ctx, 'info', { event: 'queue-retry', all: true, count }, 'operator: retry all');
    await nudgeDaemon(ctx);
    ctx.out.write(`${count} message(s) scheduled for immediate delivery\n`);
    return EXIT.OK;
  }
  const queueId = checkId(id!);
  const result = await ctx.spool.retryNow(queueId, ctx.now?.() ?? Date.now());
  if (result === 'done') {
    await audit(ctx, 'info', { event: 'queue-retry', queueId }, 'operator: retry');
    await nudgeDaemon(ctx);
  }
  return report(ctx, queueId, result, 'scheduled for immediate delivery', 'is held; run `mailshim queue release` to deliver it', EXIT.NOTHING_DONE);
}

export async function hold(ctx: QueueContext, id: string): Promise<number> {
  const queueId = checkId(id);
  const result = await ctx.spool.hold(queueId);
  if (result === 'done') await audit(ctx, 'info', { event: 'queue-hold', queueId }, 'operator: hold');
  return report(ctx, queueId, result, 'held', 'already held', EXIT.OK);
}

export async function release(ctx: QueueContext, id: string): Promise<number> {
  const queueId = checkId(id);
  const result = await ctx.spool.release(queueId, ctx.now?.() ?? Date.now());
  if (result === 'done') {
    await audit(ctx, 'info', { event: 'queue-release', queueId }, 'operator: release');
    await nudgeDaemon(ctx);
  }
  return report(ctx, queueId, result, 'released, due now', 'was not held', EXIT.OK);
}

async function confirm(question: string, input: NodeJS.ReadableStream & { isTTY?: boolean }, output: NodeJS.WritableStream): Promise<boolean> {
  if (!input.isTTY) throw new CommandError(EXIT.USAGE, 'refusing to delete without confirmation: stdin is not a terminal; pass --yes');
  const rl = createInterface({ input, output });
  try {
    return /^y(es)?$/i.test((await rl.question(question)).trim());
  } finally {
    rl.close();
  }
}

export async function remove(ctx: QueueContext, id: string, yes: boolean, input: NodeJS.ReadableStream & { isTTY?: boolean } = process.stdin): Promise<number> {
  const record = mustExist(ctx, id);
  const open = record.recipients.filter((r) => r.status !== 'delivered' && r.status !== 'failed').length;
  if (!yes && !(await confirm(`Delete ${record.id} from <${record.sender}> (${open} undelivered recipient(s)) without a bounce? [y/N] `, input, process.stderr))) {
    ctx.out.write(`${record.id}: not deleted\n`);
    return EXIT.NOTHING_DONE;
  }
  const removed = await ctx.spool.remove(record.id);
  if (!removed) throw new CommandError(EXIT.NO_SUCH_MESSAGE, `${record.id}: no such message in the queue (delivered meanwhile?)`);
  await audit(
    ctx,
    'warn',
    { event: 'queue-delete', queueId: record.id, messageId: record.messageId, from: record.sender, recipients: record.recipients.map((r) => r.address) },
    'operator: message deleted without delivery or bounce',
  );
  ctx.out.write(`${record.id}: deleted\n`);
  return EXIT.OK;
}

export async function bounce(ctx: QueueContext, id: string): Promise<number> {
  const queueId = mustExist(ctx, id).id;
  const result = await giveUp(ctx.spool, queueId, { hostname: ctx.config.hostname, bounceFrom: ctx.config.bounceFrom }, ctx.now?.() ?? Date.now());
  if (!result) throw new CommandError(EXIT.NO_SUCH_MESSAGE, `${queueId}: no such message in the queue (delivered meanwhile?)`);
  await audit(ctx, 'warn', { event: 'queue-bounce', queueId, recipients: result.failed, dsnQueueId: result.dsnId }, 'operator: gave up on message');
  if (result.dsnId) await nudgeDaemon(ctx);
  ctx.out.write(`${queueId}: gave up on ${result.failed.length} recipient(s); ${result.dsnId ? `bounce queued as ${result.dsnId}` : 'no bounce (null sender or itself a bounce)'}\n`);
  return EXIT.OK;
}

export interface FlushOptions {
  wait: boolean;
  timeoutMs: number;
  /** Progress output: a redrawn bar on a terminal, a line per change otherwise. */
  progress: NodeJS.WritableStream & { isTTY?: boolean };
  pollMs?: number;
}

function bar(done: number, total: number, width = 30): string {
  const filled = total === 0 ? width : Math.round((done / total) * width);
  return `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}]`;
}

/** Counts messages that a flush waits for: everything not held. */
function waiting(spool: Spool): number {
  const counts = spool.counts();
  return counts.messages - counts.byState.held;
}

export async function flush(ctx: QueueContext, options: FlushOptions): Promise<number> {
  const scheduled = await ctx.spool.retryAll(ctx.now?.() ?? Date.now());
  await audit(ctx, 'info', { event: 'queue-flush', count: scheduled }, 'operator: flush');
  await nudgeDaemon(ctx);
  const held = ctx.spool.counts().byState.held;
  const total = waiting(ctx.spool);
  ctx.out.write(`flush: ${total} message(s) to deliver${held ? `, ${held} held (not flushed)` : ''}\n`);
  if (!options.wait) return EXIT.OK;
  const deadline = Date.now() + options.timeoutMs;
  const tty = options.progress.isTTY === true;
  let last = -1;
  for (;;) {
    const left = waiting(ctx.spool);
    if (left !== last) {
      const line = `${bar(total - Math.min(left, total), total)} ${left} left`;
      options.progress.write(tty ? `\r${line}` : `${line}\n`);
      last = left;
    }
    if (left === 0) {
      if (tty) options.progress.write('\n');
      ctx.out.write('flush: queue drained\n');
      return EXIT.OK;
    }
    if (Date.now() >= deadline) {
      if (tty) options.progress.write('\n');
      throw new CommandError(EXIT.TIMEOUT, `flush: timed out with ${left} message(s) still queued; see \`mailshim status\` and \`mailshim queue show ID\``);
    }
    await new Promise((resolve) => setTimeout(resolve, options.pollMs ?? 250));
  }
}
