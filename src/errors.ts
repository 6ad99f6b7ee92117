/** Typed errors shared across modules: every failure carries a stable code. */
export class MailshimError extends Error {
  constructor(
    readonly code: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** The configuration file (or a secret it names) is unreadable or invalid. */
export class ConfigError extends MailshimError {
  constructor(
    message: string,
    readonly problems: string[] = [message],
  ) {
    super('ECONFIG', message);
  }
}

/** The spool could not durably store or update a message. */
export class SpoolError extends MailshimError {
  constructor(
    /**
     * ESPOOLDAMAGED: the spool file is unreadable or inconsistent (start-up check, exit 75).
     * ESPOOLSYNC: a commit became visible but its fsync failed; the process must stop (see spool.ts).
     * EIDEXISTS: an insert found its id taken (never an overwrite). ELOCKED: another process holds the spool.
     */
    code: 'ESPOOLFULL' | 'ESPOOLIO' | 'ENOTFOUND' | 'ESPOOLBUSY' | 'ESPOOLDAMAGED' | 'ESPOOLSYNC' | 'EIDEXISTS' | 'ELOCKED' | 'EACCES',
    message: string,
    options?: { cause?: unknown },
  ) {
    super(code, message, options);
  }
}

/**
 * A sendmail-style submission failed. The code maps one-to-one to a sysexits code
 * (cli/sysexits.ts) and to an SMTP reply for `sendmail -bs`.
 */
export type SubmitErrorCode = 'EUSAGE' | 'EDATAERR' | 'ENOUSER' | 'ECANTCREAT' | 'ETEMPFAIL' | 'ECONFIG' | 'ENOPERM';

export class SubmitError extends MailshimError {
  declare readonly code: SubmitErrorCode;
  constructor(code: SubmitErrorCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
  }
}

/** The running daemon could not be asked (not running, socket unreachable, bad answer). */
export class ControlError extends MailshimError {
  constructor(code: 'EDAEMONDOWN' | 'ECONTROL', message: string, options?: { cause?: unknown }) {
    super(code, message, options);
  }
}

/** Password checks are saturated: the client should try again later (SMTP 454 4.7.0). */
export class AuthBusyError extends MailshimError {
  constructor(message: string) {
    super('EAUTHBUSY', message);
  }
}

/**
 * A delivery-state transition the state table (spool/states.ts) does not allow: delivering a held
 * message, releasing one that is not held, an outcome for a message not in flight. Always a bug:
 * the change is not made (the message stays queued as it was) and the error is logged.
 */
export class DeliveryStateError extends MailshimError {
  declare readonly code: 'EILLEGALSTATE';
  constructor(
    readonly queueId: string,
    readonly state: string,
    readonly event: string,
    /** 'from': the event may not happen in `state`; 'to': it may not end in `state`. */
    readonly side: 'from' | 'to' = 'from',
  ) {
    super('EILLEGALSTATE', side === 'from' ? `${queueId}: illegal delivery-state transition: ${event} while ${state}` : `${queueId}: illegal delivery-state transition: ${event} may not end ${state}`);
  }
}
