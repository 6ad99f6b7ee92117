/**
 * Exit codes of the operator commands (queue, status, install, test-upstream), documented in
 * docs/operations.md. Scripts may rely on them: sysexits.h values for errors, plus 1 for
 * "understood, but nothing was done" (a declined confirmation, a held message).
 */
import { ControlError, MailshimError, SpoolError } from '../errors.js';
import { EX } from './sysexits.js';

export const EXIT = {
  OK: EX.OK,
  NOTHING_DONE: 1,
  USAGE: EX.USAGE,
  NO_SUCH_MESSAGE: EX.NOINPUT,
  DAEMON_DOWN: EX.UNAVAILABLE,
  SOFTWARE: EX.SOFTWARE,
  SPOOL_IO: EX.IOERR,
  TIMEOUT: EX.TEMPFAIL,
  NO_PERMISSION: EX.NOPERM,
  CONFIG: EX.CONFIG,
  /** `queue verify` found problems. */
  DATA_PROBLEM: EX.DATAERR,
  CANT_CREATE: EX.CANTCREAT,
  /** The spool file is damaged (as `serve` exits). */
  SPOOL_DAMAGED: EX.TEMPFAIL,
} as const;

/** An operator command ending with a message on stderr and a documented exit code. */
export class CommandError extends MailshimError {
  constructor(
    readonly exitCode: number,
    message: string,
  ) {
    super('ECOMMAND', message);
  }
}

export function exitCodeOf(error: unknown): number {
  if (error instanceof CommandError) return error.exitCode;
  if (error instanceof ControlError) return error.code === 'EDAEMONDOWN' ? EXIT.DAEMON_DOWN : EXIT.SOFTWARE;
  const errno = (error as NodeJS.ErrnoException | undefined)?.code ?? ((error as Error | undefined)?.cause as NodeJS.ErrnoException | undefined)?.code;
  if (errno === 'EACCES' || errno === 'EPERM' || /permission denied/i.test((error as Error | undefined)?.message ?? '')) return EXIT.NO_PERMISSION;
  if (error instanceof SpoolError) return error.code === 'ESPOOLDAMAGED' ? EXIT.SPOOL_DAMAGED : EXIT.SPOOL_IO;
  if (error instanceof MailshimError && error.code === 'ECONFIG') return EXIT.CONFIG;
  return EXIT.SOFTWARE;
}

/** "3d4h", "12m5s", "40s": compact ages for tables. */
export function formatAge(ms: number): string {
  let s = Math.max(0, Math.round(ms / 1000));
  const parts: string[] = [];
  for (const [unit, size] of [
    ['d', 86_400],
    ['h', 3600],
    ['m', 60],
  ] as const) {
    if (s >= size) {
      parts.push(`${Math.floor(s / size)}${unit}`);
      s %= size;
    }
  }
  if (s > 0 || parts.length === 0) parts.push(`${s}s`);
  return parts.slice(0, 2).join('');
}
