/**
 * The operator's changes to the queue (`mailshim queue hold|release|retry|delete|bounce|flush`),
 * in one place for both ways they are applied: by the running daemon (asked over its control
 * socket; it waits for an in-flight attempt of the message to return first, see
 * Scheduler.exclusive), or by the queue command itself when no daemon runs (holding the spool lock).
 */
import type { ActionResult, Spool } from '../spool/spool.js';
import { isQueueId } from '../spool/ids.js';
import type { DsnSettings } from './dsn.js';
import { giveUp } from './giveup.js';

export type QueueAction = { op: 'hold' | 'release' | 'retry' | 'delete' | 'bounce'; id: string } | { op: 'retry-all' };

export interface QueueActionResult {
  result: ActionResult;
  /** retry-all: how many messages were made due. */
  count?: number;
  /** bounce: the recipients given up on, and the DSN's queue id (none for a bounce or the null sender). */
  failed?: string[];
  dsnId?: string;
  /** delete: what was deleted, for the audit line. */
  deleted?: { messageId?: string; sender: string; recipients: string[] };
}

const WITH_ID = new Set(['hold', 'release', 'retry', 'delete', 'bounce']);

/** A QueueAction read from JSON (the control socket), or undefined. */
export function asQueueAction(value: unknown): QueueAction | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const { op, id } = value as { op?: unknown; id?: unknown };
  if (op === 'retry-all') return { op };
  if (typeof op === 'string' && WITH_ID.has(op) && typeof id === 'string' && isQueueId(id)) return { op: op as 'hold', id };
  return undefined;
}

/**
 * The audit record of an applied action: the same fields in the daemon's log (the journal) and in
 * the queue command's stderr. Deleting and bouncing lose mail for good, so they are warnings.
 */
export function auditEntry(action: QueueAction, r: QueueActionResult): { level: 'info' | 'warn'; fields: Record<string, unknown> } {
  const fields = {
    queueId: 'id' in action ? action.id : undefined,
    count: r.count,
    messageId: r.deleted?.messageId,
    from: r.deleted?.sender,
    recipients: r.failed ?? r.deleted?.recipients,
    dsnQueueId: r.dsnId,
  };
  return { level: action.op === 'delete' || action.op === 'bounce' ? 'warn' : 'info', fields };
}

export async function applyQueueAction(spool: Spool, action: QueueAction, settings: DsnSettings, now = Date.now()): Promise<QueueActionResult> {
  switch (action.op) {
    case 'hold':
      return { result: await spool.hold(action.id) };
    case 'release':
      return { result: await spool.release(action.id, now) };
    case 'retry':
      return { result: await spool.retryNow(action.id, now) };
    case 'retry-all':
      return { result: 'done', count: await spool.retryAll(now) };
    case 'delete': {
      const record = await spool.remove(action.id, now);
      if (!record) return { result: 'not-found' };
      return { result: 'done', deleted: { messageId: record.messageId, sender: record.sender, recipients: record.recipients.map((r) => r.address) } };
    }
    case 'bounce': {
      const given = await giveUp(spool, action.id, settings, now);
      if (!given) return { result: 'not-found' };
      return { result: 'done', failed: given.failed, dsnId: given.dsnId };
    }
  }
}
