/** sysexits.h exit codes, as sendmail callers and scripts expect them. */
export const EX = {
  OK: 0,
  USAGE: 64,
  DATAERR: 65,
  NOINPUT: 66,
  NOUSER: 67,
  UNAVAILABLE: 69,
  SOFTWARE: 70,
  OSERR: 71,
  CANTCREAT: 73,
  IOERR: 74,
  TEMPFAIL: 75,
  NOPERM: 77,
  CONFIG: 78,
} as const;

/** The exit code for each SubmitError code. */
export const SUBMIT_EXIT: Record<string, number> = {
  EUSAGE: EX.USAGE,
  EDATAERR: EX.DATAERR,
  ENOUSER: EX.NOUSER,
  ECANTCREAT: EX.CANTCREAT,
  ETEMPFAIL: EX.TEMPFAIL,
  ECONFIG: EX.CONFIG,
  ENOPERM: EX.NOPERM,
};
