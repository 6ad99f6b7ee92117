/**
 * The daemon's side of spool integrity: the check before serving, and the fail-stop.
 */
import { join } from 'node:path';
import { pino } from 'pino';
import { SpoolError } from '../errors.js';
import type { Logger } from '../log.js';
import type { FailStop, Spool } from './spool.js';
import { fsyncPath } from './fsync.js';
import { describeProblems, verifySpool } from './verify.js';

/** Disk held back for delivery bookkeeping when something else fills the disk (see reserve.ts); at most 1/8 of the file system. */
export const SPOOL_RESERVE_BYTES = 8 * 1024 * 1024;

/**
 * Exit code of the fail-stop (EX_IOERR): the spool's disk failed an fsync or kept refusing to
 * record deliveries. systemd's Restart=on-failure restarts the daemon, which re-verifies the spool.
 */
export const EXIT_FAILSTOP = 74;

/**
 * Verifies the spool before the daemon serves. A spool that cannot be read throws ESPOOLDAMAGED
 * (`serve` exits 75); a damaged message is held with the reason and logged, and the rest is served.
 */
export async function checkSpoolAtStart(spool: Spool, log: Logger): Promise<void> {
  syncSpoolAtStart(spool);
  let report;
  try {
    report = verifySpool(spool);
  } catch (error) {
    throw new SpoolError('ESPOOLDAMAGED', `spool at ${spool.path} cannot be read: ${(error as Error).message}`, { cause: error });
  }
  for (const { id, problem } of report.damaged) {
    if ((await spool.quarantine(id, problem)) === 'done') {
      log.error({ event: 'spool-damaged', queueId: id, problem }, `${id}: ${problem}; message held, not delivered (see mailshim queue verify)`);
    }
  }
  if (report.counters !== 'ok') {
    const stats = await spool.rebuildCounters();
    const level = report.counters === 'mismatch' ? 'warn' : 'info';
    log[level](
      { event: 'spool-counters-rebuilt', reason: report.counters, messages: stats.messages },
      `queue counters ${report.counters === 'mismatch' ? 'did not match the messages' : 'were not built yet'}: rebuilt from a scan`,
    );
  }
  // Only now, with the spool open and every record read: body files no record names (a crash
  // between a body file and its record's commit, or between a removal and the unlink) go.
  const orphans = new Set(spool.removeOrphanBodyFiles());
  if (orphans.size > 0) log.info({ event: 'spool-orphan-bodies', removed: [...orphans] }, `removed ${orphans.size} body file(s) that no queue record names (left by an interrupted accept or removal)`);
  const other = describeProblems({ ...report, damaged: [], orphanBodies: report.orphanBodies.filter((id) => !orphans.has(id)), counters: 'ok' });
  for (const problem of other) log.warn({ event: 'spool-verify', problem }, problem);
  log.info(
    { event: 'spool-verified', messages: report.messages, damaged: report.damaged.length, otherProblems: other.length },
    `spool verified: ${report.messages} message(s), ${report.damaged.length} damaged`,
  );
}

/**
 * Makes what the spool file holds durable before anything in it is trusted. A daemon that died
 * between a commit and its fsync (kill -9, the OOM killer, a fail-stop) leaves committed pages in
 * the page cache only: readable, so the maildrop importer would take a token found there as proof
 * that the submission is queued and delete the maildrop copy, and a power cut would then lose both.
 * When the disk refuses the fsync the daemon does not start (ESPOOLSYNC, exit 74).
 *
 * Limit: after a failed writeback Linux may mark the pages clean, so an fsync that succeeds here
 * cannot prove that pages an earlier process failed to write reached the disk; a disk that fails
 * fsync needs an operator (status is CRITICAL, the fail-stop's fatal line names it).
 */
export function syncSpoolAtStart(spool: Spool): void {
  const file = join(spool.path, 'queue.mdb');
  try {
    fsyncPath(file);
  } catch (error) {
    throw new SpoolError('ESPOOLSYNC', `cannot sync ${file} to disk before serving (${(error as Error).message}); not trusting the spool`, { cause: error });
  }
}

/**
 * One fatal log line, flushed, then exit — synchronously, so no reply (a 250 or a 451) is sent
 * for the commit that failed. See Spool.commit for why the process must not carry on.
 */
export function failStopHandler(log: Logger): FailStop {
  return (error) => {
    log.fatal({ event: 'fail-stop', err: error, exitCode: EXIT_FAILSTOP }, `spool storage failed, stopping so the spool is re-read from disk: ${error.message}`);
    try {
      (log as unknown as Record<symbol, { flushSync?: () => void } | undefined>)[pino.symbols.streamSym]?.flushSync?.();
    } catch {
      /* the line is best effort; the exit is not */
    }
    process.exit(EXIT_FAILSTOP);
  };
}
