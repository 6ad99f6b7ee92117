/**
 * The spool's integrity check, run by the daemon before it serves and by `mailshim queue verify`:
 * every record has its body (in LMDB, or its file in bodies/) and the body matches the checksum
 * taken at accept time; every body belongs to a record; the due index and the records agree. (The meta pages and the file length
 * are checked earlier, before LMDB maps the file: see file-check.ts.)
 *
 * A problem with one message is that message's problem: it is held with the reason (never sent
 * as it is) and the rest of the queue is served. Index entries without their record are reported
 * here and left to the scheduler, which skips and removes them. Only a spool that cannot be read
 * at all is fatal.
 */
import type { Spool } from './spool.js';
import { emptyStats, tally } from './stats.js';

export interface MessageProblem {
  id: string;
  problem: string;
}

export interface VerifyReport {
  messages: number;
  bodies: number;
  dueEntries: number;
  /** Records whose body is missing or does not match its checksum. */
  damaged: MessageProblem[];
  /** Bodies no record refers to (left by a crash before 0.1, or a damaged record). */
  orphanBodies: string[];
  /** Due-index entries with no record, or whose time is not the record's next attempt. */
  staleDue: Array<{ at: number; id: string }>;
  /** Records that should be scheduled but have no due-index entry (would never be delivered). */
  unscheduled: string[];
  /** The stored counters (status, /metrics) against this scan: 'missing' on a spool older than them. */
  counters: 'ok' | 'missing' | 'mismatch';
}

export function verifySpool(spool: Spool): VerifyReport {
  const report: VerifyReport = { messages: 0, bodies: 0, dueEntries: 0, damaged: [], orphanBodies: [], staleDue: [], unscheduled: [], counters: 'ok' };
  const scheduled = new Map<string, number>();
  const scanned = emptyStats();
  for (const record of spool.list()) {
    report.messages++;
    tally(scanned, record);
    if (record.nextAttemptAt !== null && !record.held) scheduled.set(record.id, record.nextAttemptAt);
    const problem = record.damaged ?? spool.bodyProblem(record);
    if (problem) report.damaged.push({ id: record.id, problem });
  }
  const due = new Set<string>();
  for (const [at, id] of spool.dueEntries()) {
    report.dueEntries++;
    if (scheduled.get(id) === at) due.add(id);
    else report.staleDue.push({ at, id });
  }
  for (const id of scheduled.keys()) if (!due.has(id)) report.unscheduled.push(id);
  report.counters = spool.countersAgainst(scanned);
  for (const id of spool.bodyIds()) {
    report.bodies++;
    if (!spool.get(id)) report.orphanBodies.push(id);
  }
  return report;
}

export function verifyClean(report: VerifyReport): boolean {
  return report.damaged.length + report.orphanBodies.length + report.staleDue.length + report.unscheduled.length === 0 && report.counters !== 'mismatch';
}

/** Human-readable lines, one per problem, for the CLI and the start-up log. */
export function describeProblems(report: VerifyReport): string[] {
  return [
    ...report.damaged.map((d) => `${d.id}: ${d.problem}`),
    ...report.orphanBodies.map((id) => `${id}: body without a queue record (being accepted right now, or left by a crash; the daemon removes body files at its next start)`),
    ...report.staleDue.map((d) => `${d.id}: due-index entry ${new Date(d.at).toISOString()} does not match any queued message`),
    ...report.unscheduled.map((id) => `${id}: queued but missing from the due index (would never be delivered)`),
    ...(report.counters === 'mismatch' ? ['queue counters (status, /metrics) do not match the messages; the daemon rebuilds them at its next start'] : []),
  ];
}
