/**
 * `mailshim queue summary`: the queue's shape, like Postfix's qshape(1): per recipient domain (or
 * sender domain with --sender), how many are waiting and for how long. One streaming pass over
 * the spool; only the per-domain counters are kept.
 */
import { queueShape, type QueueShape } from '../spool/listing.js';
import type { QueueContext } from './queue.js';

export function formatShape(shape: QueueShape, top = Infinity): string {
  const header = ['', 'T', ...shape.bounds.map(String), `${shape.bounds[shape.bounds.length - 1] ?? 0}+`];
  const rows = [['TOTAL', String(shape.total.count), ...shape.total.buckets.map(String)], ...shape.domains.slice(0, top).map((d) => [d.domain, String(d.count), ...d.buckets.map(String)])];
  const width = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === 0 ? c.padStart(width[0]!) : c.padStart(width[i]!))).join(' ');
  return [line(header), ...rows.map(line)].join('\n') + '\n';
}

export function summary(ctx: QueueContext, options: { bySender: boolean; buckets: number; bucketMinutes: number; top: number }): number {
  const shape = queueShape(ctx.spool.list(), options, ctx.now?.() ?? Date.now());
  ctx.out.write(formatShape(shape, options.top));
  return 0;
}
