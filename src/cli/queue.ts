/**
 * `mailshim queue show|retry|hold|release|delete|flush|bounce`. Reading is safe any time (LMDB
 * readers see a consistent snapshot). Changes go through the running daemon, or are written here
 * under the spool lock when no daemon runs: see change().
 */
import { createInterface } from 'node:readline/promises';
import type { Config } from '../config/types.js';
import { ControlClient } from '../control/client.js';
import { applyQueueAction, auditEntry, type QueueAction, type QueueActionResult } from '../delivery/queue-actions.js';
import { ControlError, SpoolError } from '../errors.js';
import type { Logger } from '../log.js';
import { splitHeaders } from '../message/headers.js';
import { isQueueId } from '../spool/ids.js';
import { lockSpool } from '../spool/lock.js';
import type { ActionResult, Spool } from '../spool/spool.js';
import { messageState } from '../spool/states.js';
import type { MessageRecord, SentRecipient, SentRecord } from '../spool/types.js';
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
  const now = ctx.now?.() ?? Date.now();
  // Delivered through an upstream that returned a provider id: retained for provider events (events.retention).
  const sent = ctx.spool.sentRecord(checkId(id), now);
  if (sent && !ctx.spool.get(sent.id)) return showSent(ctx, sent, format, now);
  const record = mustExist(ctx, id);
  const body = ctx.spool.body(record.id);
  if (format === 'raw') {
    if (!body) throw new CommandError(EXIT.SPOOL_IO, `${record.id}: message body missing from the spool`);
    ctx.out.write(body);
    return;
  }
  const headers = body ? splitHeaders(body).header.replace(/\r\n/g, '\n').replace(/\n+$/, '') : '';
  if (format === 'json') {
    // tokenKey holds the submitter's idempotency token, a secret: not printed.
    ctx.out.write(JSON.stringify({ ...record, tokenKey: undefined, state: messageState(record), headers, ...(sent ? { sent: sent.recipients } : {}) }, null, 2) + '\n');
    return;
  }
  const next =
    record.nextAttemptAt === null
      ? record.held
        ? 'held: not scheduled'
        : 'not scheduled'
      : record.nextAttemptAt <= now
        ? 'due now'
        : `${iso(record.nextAttemptAt)} (in ${formatAge(record.nextAttemptAt - now)})`;
  const origin = [
    record.origin.protocol,
    record.origin.client && `from ${record.origin.client}`,
    record.origin.helo && `(helo ${record.origin.helo})`,
    record.origin.user && `user ${record.origin.user}`,
  ]
    .filter(Boolean)
    .join(' ');
  const lines = [
    `Queue ID:     ${record.id}`,
    `State:        ${messageState(record)}${record.isBounce ? ' (a bounce we generated)' : ''}`,
    ...(record.damaged ? [`Damaged:      ${record.damaged} (held, never sent as it is; see mailshim queue verify)`] : []),
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
    const accepted = sent?.recipients.find((s) => s.address === r.address);
    if (accepted) lines.push(...providerEventLines(accepted));
  }
  lines.push('Headers:', ...headers.split('\n').map((l) => `  ${l}`));
  ctx.out.write(lines.join('\n') + '\n');
}

/** What a provider reported about a recipient after accepting it. */
function providerEventLines(r: SentRecipient): string[] {
  const lines = r.events.map((e) => `      ${iso(e.at)}  ${r.upstream}  event ${e.type}${e.status ? ` ${e.status}` : ''}${e.reason ? `  ${e.reason}` : ''}`);
  if (r.failedAt !== undefined)
    lines.push(`      ${iso(r.failedAt)}  failed after acceptance: ${r.noticeQueued ? 'notice queued to the sender' : 'no notice (NOTIFY=NEVER, a bounce, or the null sender)'}`);
  return lines;
}

/** `queue show` of a message no longer queued but retained for provider events: envelope, history, events, headers. */
function showSent(ctx: QueueContext, sent: SentRecord, format: 'text' | 'json' | 'raw', now: number): void {
  const headers = sent.headers.replace(/\r\n/g, '\n').replace(/\n+$/, '');
  if (format === 'raw') throw new CommandError(EXIT.NO_SUCH_MESSAGE, `${sent.id}: delivered; only its headers are retained (queue show ${sent.id})`);
  const until = sent.retainedAt + (ctx.config.events?.retention ?? 0);
  if (format === 'json') {
    ctx.out.write(JSON.stringify({ ...sent, state: 'delivered', retainedUntil: iso(until), headers }, null, 2) + '\n');
    return;
  }
  const lines = [
    `Queue ID:     ${sent.id}`,
    `State:        delivered, no longer queued (kept for provider events until ${iso(until)})${sent.isBounce ? ' (a bounce we generated)' : ''}`,
    `Received:     ${iso(sent.receivedAt)} (${formatAge(now - sent.receivedAt)} ago)`,
    `Size:         ${sent.size} bytes`,
    `Message-ID:   ${sent.messageId ?? '(none)'}`,
    `Sender:       <${sent.sender}>`,
    'Recipients:',
  ];
  for (const r of sent.recipients) {
    lines.push(`  <${r.address}>  ${r.failedAt === undefined ? 'delivered' : 'failed'}: accepted by ${r.upstream} at ${iso(r.acceptedAt)}, provider id ${r.providerMessageId}`);
    for (const h of r.history) lines.push(`      ${iso(h.at)}  ${h.upstream}  ${h.outcome}  ${h.reply}`);
    lines.push(...providerEventLines(r));
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
 * Applies a queue change. While the daemon runs it goes through the control socket: the daemon
 * applies it after the message's in-flight attempt (if any) returns, and logs it. Only when no
 * daemon answers is the spool written here, holding the spool lock for that moment, so a daemon
 * cannot start meanwhile (it waits for the lock for a few seconds) and two writers never meet.
 * Every change is also written to stderr as a JSON line (the operator's own audit trail).
 */
async function change(ctx: QueueContext, action: QueueAction, message: string): Promise<QueueActionResult> {
  const result = await applyAnywhere(ctx, action);
  if (result.result === 'done') {
    const { level, fields } = auditEntry(action, result);
    ctx.log[level]({ event: `queue-${action.op}`, ...fields }, message);
  }
  return result;
}

async function applyAnywhere(ctx: QueueContext, action: QueueAction): Promise<QueueActionResult> {
  try {
    return await new ControlClient(ctx.config.control.socket, DAEMON_TIMEOUT_MS).queue(action);
  } catch (error) {
    if (!(error instanceof ControlError && error.code === 'EDAEMONDOWN')) throw error;
  }
  let lock;
  try {
    lock = await lockSpool(ctx.config.spool.path, `queue ${action.op}`);
  } catch (error) {
    if (!(error instanceof SpoolError && error.code === 'ELOCKED')) throw error;
    throw new CommandError(EXIT.TIMEOUT, `${error.message}, but no daemon answers on ${ctx.config.control.socket}; try again in a moment (is it starting?)`);
  }
  try {
    return await applyQueueAction(ctx.spool, action, { hostname: ctx.config.hostname, bounceFrom: ctx.config.bounceFrom }, ctx.now?.() ?? Date.now());
  } finally {
    lock.release();
  }
}

/** How long a queue command waits for the daemon: it answers once the message's current attempt returned. */
const DAEMON_TIMEOUT_MS = 10 * 60_000;

export async function retry(ctx: QueueContext, id: string | undefined, all: boolean): Promise<number> {
  if (all === (id !== undefined)) throw new CommandError(EXIT.USAGE, 'name one queue id, or --all');
  if (all) {
    const { count } = await change(ctx, { op: 'retry-all' }, 'operator: retry all');
    ctx.out.write(`${count ?? 0} message(s) scheduled for immediate delivery\n`);
    return EXIT.OK;
  }
  const queueId = checkId(id!);
  const { result } = await change(ctx, { op: 'retry', id: queueId }, 'operator: retry');
  return report(ctx, queueId, result, 'scheduled for immediate delivery', 'is held; run `mailshim queue release` to deliver it', EXIT.NOTHING_DONE);
}

export async function hold(ctx: QueueContext, id: string): Promise<number> {
  const queueId = checkId(id);
  const { result } = await change(ctx, { op: 'hold', id: queueId }, 'operator: hold');
  return report(ctx, queueId, result, 'held', 'already held', EXIT.OK);
}

export async function release(ctx: QueueContext, id: string): Promise<number> {
  const queueId = checkId(id);
  const { result } = await change(ctx, { op: 'release', id: queueId }, 'operator: release');
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
  const { result } = await change(ctx, { op: 'delete', id: record.id }, 'operator: message deleted without delivery or bounce');
  if (result !== 'done') throw new CommandError(EXIT.NO_SUCH_MESSAGE, `${record.id}: no such message in the queue (delivered or bounced meanwhile)`);
  ctx.out.write(`${record.id}: deleted\n`);
  return EXIT.OK;
}

export async function bounce(ctx: QueueContext, id: string): Promise<number> {
  const queueId = mustExist(ctx, id).id;
  const done = await change(ctx, { op: 'bounce', id: queueId }, 'operator: gave up on message');
  if (done.result !== 'done') throw new CommandError(EXIT.NO_SUCH_MESSAGE, `${queueId}: no such message in the queue (delivered or bounced meanwhile)`);
  const failed = done.failed ?? [];
  ctx.out.write(`${queueId}: gave up on ${failed.length} recipient(s); ${done.dsnId ? `bounce queued as ${done.dsnId}` : 'no bounce (null sender or itself a bounce)'}\n`);
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
  await change(ctx, { op: 'retry-all' }, 'operator: flush');
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
