/**
 * The queue as `mailq` shows it: plain data built from spool records, one message at a time, so a
 * listing of a million messages holds one page of records in memory, never the whole queue.
 */
import { messageState, type MessageState } from './states.js';
import { isFinal, type MessageRecord } from './types.js';

export interface QueueEntry {
  id: string;
  size: number;
  /** ISO 8601 arrival time. */
  arrival: string;
  sender: string;
  held: boolean;
  nextAttempt: string | null;
  recipients: Array<{ address: string; status: string; attempts: number; lastError?: string }>;
}

/**
 * What to list. Plain JSON (it crosses the submission socket to the daemon). `from`/`to`: an
 * address (exact, case-insensitive), or a domain (`example.com` or `@example.com`), which also
 * matches its subdomains. `olderThanMs`: received at least this long ago.
 */
export interface QueueFilter {
  from?: string;
  to?: string;
  olderThanMs?: number;
  state?: MessageState;
  limit?: number;
}

export const MESSAGE_STATES: readonly MessageState[] = ['pending', 'deferred', 'held'];

/** A filter as received over the socket (any local user writes there): only well-typed fields are kept. */
export function asQueueFilter(value: unknown): QueueFilter {
  const filter: QueueFilter = {};
  if (typeof value !== 'object' || value === null) return filter;
  const v = value as Record<string, unknown>;
  if (typeof v.from === 'string') filter.from = v.from;
  if (typeof v.to === 'string') filter.to = v.to;
  if (typeof v.olderThanMs === 'number' && Number.isFinite(v.olderThanMs)) filter.olderThanMs = v.olderThanMs;
  if (typeof v.state === 'string' && (MESSAGE_STATES as readonly string[]).includes(v.state)) filter.state = v.state as MessageState;
  if (typeof v.limit === 'number' && Number.isInteger(v.limit) && v.limit >= 0) filter.limit = v.limit;
  return filter;
}

/** Whether `address` is the address `pattern`, or in the domain `pattern` (or a subdomain of it). */
export function addressMatches(address: string, pattern: string): boolean {
  const a = address.toLowerCase();
  const p = pattern.toLowerCase();
  if (p.includes('@') && !p.startsWith('@')) return a === p;
  const domain = p.replace(/^@/, '');
  const at = a.lastIndexOf('@');
  const own = at === -1 ? '' : a.slice(at + 1);
  return own === domain || own.endsWith(`.${domain}`);
}

export function matches(record: MessageRecord, filter: QueueFilter, now: number): boolean {
  if (filter.state && messageState(record) !== filter.state) return false;
  if (filter.olderThanMs !== undefined && now - record.receivedAt < filter.olderThanMs) return false;
  if (filter.from !== undefined && !addressMatches(record.sender, filter.from)) return false;
  if (filter.to !== undefined && !record.recipients.some((r) => !isFinal(r) && addressMatches(r.address, filter.to!))) return false;
  return true;
}

export function queueEntry(r: MessageRecord): QueueEntry {
  return {
    id: r.id,
    size: r.size,
    arrival: new Date(r.receivedAt).toISOString(),
    sender: r.sender,
    held: r.held,
    nextAttempt: r.nextAttemptAt === null ? null : new Date(r.nextAttemptAt).toISOString(),
    recipients: r.recipients
      .filter((rcpt) => !isFinal(rcpt))
      .map((rcpt) => ({ address: rcpt.address, status: rcpt.status, attempts: rcpt.attempts, ...(rcpt.lastReply ? { lastError: rcpt.lastReply } : {}) })),
  };
}

/**
 * The entries of `records` (in queue-id order, which is arrival order: ids start with the arrival
 * time) that pass `filter`, lazily, stopping after `filter.limit`.
 */
export function* queueEntries(records: Iterable<MessageRecord>, filter: QueueFilter = {}, now = Date.now()): Generator<QueueEntry> {
  let left = filter.limit ?? Infinity;
  if (left <= 0) return;
  for (const record of records) {
    if (!matches(record, filter, now)) continue;
    yield queueEntry(record);
    if (--left <= 0) return;
  }
}

/**
 * qshape(1)'s view: per domain, how many recipients (or, by sender, messages) have waited how
 * long. `bucketMinutes` is the first bucket's upper bound; each next one doubles it (qshape's -t
 * and -b, defaults 5 and 10); the last column counts everything older.
 */
export interface QueueShape {
  /** Upper bounds of the buckets, in minutes; the last bucket is "older than the last bound". */
  bounds: number[];
  total: { count: number; buckets: number[] };
  domains: Array<{ domain: string; count: number; buckets: number[] }>;
}

export function queueShape(records: Iterable<MessageRecord>, options: { bySender?: boolean; buckets?: number; bucketMinutes?: number; filter?: QueueFilter }, now = Date.now()): QueueShape {
  const count = options.buckets ?? 10;
  const first = options.bucketMinutes ?? 5;
  const bounds = Array.from({ length: count - 1 }, (_, i) => first * 2 ** i);
  const bucketOf = (receivedAt: number) => {
    const minutes = (now - receivedAt) / 60_000;
    const i = bounds.findIndex((b) => minutes < b);
    return i === -1 ? count - 1 : i;
  };
  const byDomain = new Map<string, number[]>();
  const total = new Array<number>(count).fill(0);
  const add = (domain: string, bucket: number) => {
    let row = byDomain.get(domain);
    if (!row) byDomain.set(domain, (row = new Array<number>(count).fill(0)));
    row[bucket]!++;
    total[bucket]!++;
  };
  for (const record of records) {
    if (options.filter && !matches(record, options.filter, now)) continue;
    const bucket = bucketOf(record.receivedAt);
    if (options.bySender) add(domainOf(record.sender) || 'MAILER-DAEMON', bucket);
    else for (const r of record.recipients) if (!isFinal(r)) add(domainOf(r.address), bucket);
  }
  const sum = (row: number[]) => row.reduce((a, b) => a + b, 0);
  const domains = [...byDomain].map(([domain, buckets]) => ({ domain, count: sum(buckets), buckets })).sort((a, b) => b.count - a.count || a.domain.localeCompare(b.domain));
  return { bounds, total: { count: sum(total), buckets: total }, domains };
}

function domainOf(address: string): string {
  const at = address.lastIndexOf('@');
  return at === -1 ? '' : address.slice(at + 1).toLowerCase();
}
