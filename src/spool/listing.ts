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

/** Accumulates a QueueShape one message at a time (from the spool, or from a listing the daemon streams). */
export class QueueShaper {
  private readonly count: number;
  private readonly bounds: number[];
  private readonly byDomain = new Map<string, number[]>();
  private readonly total: number[];

  constructor(
    options: { bySender?: boolean; buckets?: number; bucketMinutes?: number },
    private readonly now = Date.now(),
    private readonly bySender = options.bySender ?? false,
  ) {
    this.count = options.buckets ?? 10;
    const first = options.bucketMinutes ?? 5;
    this.bounds = Array.from({ length: this.count - 1 }, (_, i) => first * 2 ** i);
    this.total = new Array<number>(this.count).fill(0);
  }

  /** One message: its arrival, its sender and the recipients still waiting. */
  add(receivedAt: number, sender: string, waiting: Iterable<string>): void {
    const minutes = (this.now - receivedAt) / 60_000;
    const i = this.bounds.findIndex((b) => minutes < b);
    const bucket = i === -1 ? this.count - 1 : i;
    if (this.bySender) this.count1(domainOf(sender) || 'MAILER-DAEMON', bucket);
    else for (const address of waiting) this.count1(domainOf(address), bucket);
  }

  private count1(domain: string, bucket: number): void {
    let row = this.byDomain.get(domain);
    if (!row) this.byDomain.set(domain, (row = new Array<number>(this.count).fill(0)));
    row[bucket]!++;
    this.total[bucket]!++;
  }

  shape(): QueueShape {
    const sum = (row: number[]) => row.reduce((a, b) => a + b, 0);
    const domains = [...this.byDomain].map(([domain, buckets]) => ({ domain, count: sum(buckets), buckets })).sort((a, b) => b.count - a.count || a.domain.localeCompare(b.domain));
    return { bounds: this.bounds, total: { count: sum(this.total), buckets: this.total }, domains };
  }
}

export function queueShape(records: Iterable<MessageRecord>, options: { bySender?: boolean; buckets?: number; bucketMinutes?: number; filter?: QueueFilter }, now = Date.now()): QueueShape {
  const shaper = new QueueShaper(options, now);
  for (const record of records) {
    if (options.filter && !matches(record, options.filter, now)) continue;
    shaper.add(
      record.receivedAt,
      record.sender,
      record.recipients.filter((r) => !isFinal(r)).map((r) => r.address),
    );
  }
  return shaper.shape();
}

function domainOf(address: string): string {
  const at = address.lastIndexOf('@');
  return at === -1 ? '' : address.slice(at + 1).toLowerCase();
}
