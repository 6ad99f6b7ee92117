/**
 * The daemon's side of spool integrity: the check before serving, and the fail-stop.
 */
import { pino } from 'pino';
import { SpoolError } from '../errors.js';
import type { Logger } from '../log.js';
import type { FailStop, Spool } from './spool.js';
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
  const other = describeProblems({ ...report, damaged: [] });
  for (const problem of other) log.warn({ event: 'spool-verify', problem }, problem);
  log.info(
    { event: 'spool-verified', messages: report.messages, damaged: report.damaged.length, otherProblems: other.length },
    `spool verified: ${report.messages} message(s), ${report.damaged.length} damaged`,
  );
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
