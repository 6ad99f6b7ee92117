/**
 * RFC 3461 DSN parameters at intake: from SMTP (MAIL RET/ENVID, RCPT NOTIFY/ORCPT, parsed by
 * smtp-server) and from sendmail (-N, -R, -V, which apply to every recipient), in the form the
 * spool stores. Values come from local users and clients, so they are checked here, once.
 */
import type { MessageDsn, NotifyKeyword, RecipientDsn } from '../spool/types.js';

/** The message-wide form the sendmail command sends to the daemon (and writes to the maildrop). */
export interface SendmailDsn {
  notify?: NotifyKeyword[];
  ret?: 'FULL' | 'HDRS';
  envid?: string;
}

const KEYWORDS: readonly NotifyKeyword[] = ['NEVER', 'SUCCESS', 'FAILURE', 'DELAY'];
/** RFC 3461 §4.4: ENVID is at most 100 characters; printable ASCII once xtext-decoded. */
const ENVID = /^[\x21-\x7e]{1,100}$/;
const ORCPT = /^[A-Za-z0-9-]+;[\x21-\x7e]{1,500}$/;

/** A NOTIFY list, or undefined when it is not one (NEVER alone, or any of the other three). */
export function parseNotify(value: string | readonly string[]): NotifyKeyword[] | undefined {
  const list = (typeof value === 'string' ? value.split(',') : [...value]).map((v) => v.trim().toUpperCase());
  if (list.length === 0 || !list.every((v): v is NotifyKeyword => (KEYWORDS as readonly string[]).includes(v))) return undefined;
  if (list.includes('NEVER') && list.length > 1) return undefined;
  return [...new Set(list)];
}

/** sendmail -R: "full"/"hdrs" in any case (Sendmail and Postfix accept both). */
export function parseRet(value: string): 'FULL' | 'HDRS' | undefined {
  const upper = value.trim().toUpperCase();
  return upper === 'FULL' || upper === 'HDRS' ? upper : undefined;
}

export function isEnvid(value: string): boolean {
  return ENVID.test(value);
}

/** Checks a SendmailDsn read from the socket or a maildrop file (any local user wrote it). */
export function isSendmailDsn(value: unknown): value is SendmailDsn {
  if (value === undefined) return true;
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const v = value as Record<string, unknown>;
  if (v.notify !== undefined && !(Array.isArray(v.notify) && v.notify.every((n) => typeof n === 'string') && parseNotify(v.notify) !== undefined)) return false;
  if (v.ret !== undefined && (typeof v.ret !== 'string' || parseRet(v.ret) !== v.ret)) return false;
  if (v.envid !== undefined && (typeof v.envid !== 'string' || !isEnvid(v.envid))) return false;
  return true;
}

/** sendmail's message-wide parameters for the final recipient list. */
export function fromSendmail(dsn: SendmailDsn | undefined, recipients: readonly string[]): MessageDsn | undefined {
  if (!dsn || (!dsn.notify && !dsn.ret && !dsn.envid)) return undefined;
  const notify = dsn.notify;
  return {
    ...(dsn.ret ? { ret: dsn.ret } : {}),
    ...(dsn.envid ? { envid: dsn.envid } : {}),
    ...(notify ? { recipients: Object.fromEntries(recipients.map((r) => [r, { notify }])) } : {}),
  };
}

/**
 * `sendmail -bs`: the dialog's MAIL/RCPT parameters in the message-wide form the submission
 * carries (RET, ENVID, and NOTIFY when every recipient gave the same; -N and friends otherwise).
 */
export function sendmailDsnOf(envelope: SmtpEnvelopeDsn, given: SendmailDsn | undefined): SendmailDsn | undefined {
  const dsn = fromSmtp(
    envelope,
    envelope.rcptTo.map((r) => r.address),
  );
  const notifies = new Set(envelope.rcptTo.map((r) => JSON.stringify(dsn?.recipients?.[r.address]?.notify ?? null)));
  const notify = notifies.size === 1 ? dsn?.recipients?.[envelope.rcptTo[0]?.address ?? '']?.notify : undefined;
  const merged: SendmailDsn = { ...given, ...(notify ? { notify } : {}), ...(dsn?.ret ? { ret: dsn.ret } : {}), ...(dsn?.envid ? { envid: dsn.envid } : {}) };
  return Object.keys(merged).length > 0 ? merged : undefined;
}

interface SmtpEnvelopeDsn {
  dsn?: { ret?: string | null; envid?: string | null };
  rcptTo: Array<{ address: string; dsn?: { notify?: string[]; orcpt?: string } }>;
}

/**
 * The parameters of an SMTP transaction, for the final recipients (after aliases). A recipient
 * that an alias replaced keeps the NOTIFY that all the given recipients share, if they share one
 * (cron's NOTIFY=NEVER); ORCPT stays with the address it was given for.
 */
export function fromSmtp(envelope: SmtpEnvelopeDsn, finalRecipients: readonly string[]): MessageDsn | undefined {
  const given = new Map<string, RecipientDsn>();
  for (const r of envelope.rcptTo) {
    const notify = r.dsn?.notify ? parseNotify(r.dsn.notify) : undefined;
    const orcpt = r.dsn?.orcpt && ORCPT.test(r.dsn.orcpt) ? r.dsn.orcpt : undefined;
    given.set(r.address, { ...(notify ? { notify } : {}), ...(orcpt ? { orcpt } : {}) });
  }
  const notifies = new Set([...given.values()].map((d) => JSON.stringify(d.notify ?? null)));
  const shared = notifies.size === 1 ? given.values().next().value?.notify : undefined;
  const recipients: Record<string, RecipientDsn> = {};
  for (const address of finalRecipients) {
    const own = given.get(address) ?? (shared ? { notify: shared } : undefined);
    if (own && (own.notify || own.orcpt)) recipients[address] = own;
  }
  const ret = envelope.dsn?.ret ? parseRet(envelope.dsn.ret) : undefined;
  const envid = envelope.dsn?.envid && isEnvid(envelope.dsn.envid) ? envelope.dsn.envid : undefined;
  if (!ret && !envid && Object.keys(recipients).length === 0) return undefined;
  return { ...(ret ? { ret } : {}), ...(envid ? { envid } : {}), ...(Object.keys(recipients).length > 0 ? { recipients } : {}) };
}
