/**
 * What happens after the provider said yes: provider events (webhooks, polls) matched to the
 * message they are about, and the sender told of a failure the provider reports late.
 *
 * An event is matched by the upstream that reported it, its provider message id (normalised on
 * both sides, src/events/message-id.ts) and its recipient (case-insensitive), against the record
 * the spool retained when the upstream accepted the recipient (events.retention).
 * - hard_bounce, permanent_failure, rejected, suppressed: the recipient is marked failed and one
 *   failure notice (RFC 3464, dsn.ts) goes to the original envelope sender, committed in the SAME
 *   spool transaction as the mark. A repeated event (the same webhook again, another event id, a
 *   replay after a restart) finds the mark and sends nothing. NOTIFY=NEVER, bounces and the null
 *   sender get the mark but no notice, as for any failure.
 * - complaint: history, log and metrics; with events.complaints_to_admin a short notice to
 *   [local] admin (once per recipient). Never a notice to the sender: it would name the complainer.
 * - delivered, deferred, opened: history and metrics only.
 * - Unknown message ids (not ours, or no longer retained): logged at info and counted; the request
 *   is still answered 2xx, so the provider stops retrying it. A recent event with an unknown id
 *   first waits up to UNMATCHED_GRACE_MS while deliveries are in flight: a provider may report a
 *   drop or a bounce within milliseconds of its 2xx, before the outcome that retains the message
 *   is committed.
 * The returned promise resolves only once everything is committed (the listener answers 2xx then).
 */
import { EventEmitter } from 'node:events';
import { randomBytes } from 'node:crypto';
import type { RestUpstreamConfig } from '../config/types.js';
import type { EventSink } from '../events/listener.js';
import { normalizeMessageId } from '../events/message-id.js';
import type { ListSent, SentMessage } from '../events/poll/source.js';
import type { EventType, ProviderEvent } from '../events/types.js';
import type { Logger } from '../log.js';
import { rfc5322Date } from '../message/headers.js';
import type { NewMessage, Spool } from '../spool/spool.js';
import { SENT_EVENTS_LIMIT, type MessageRecord, type RecipientState, type SentRecipient, type SentRecord } from '../spool/types.js';
import { noticeMessages, type DsnSettings } from './dsn.js';

/** Event types that end a recipient: the provider will not deliver it. */
export const FAILURE_EVENTS: ReadonlySet<EventType> = new Set(['hard_bounce', 'permanent_failure', 'rejected', 'suppressed']);

/** How long a recent event with an unknown message id waits for its delivery outcome to be committed. */
export const UNMATCHED_GRACE_MS = 5_000;
/** Events the provider dates older than this are not waited for (a replay, or mail sent elsewhere). */
const RECENT_EVENT_MS = 10 * 60_000;
const GRACE_STEP_MS = 100;

export interface ProviderEventSettings extends DsnSettings {
  /** [local] admin, told of complaints when complaintsToAdmin is on. */
  admin?: string;
  complaintsToAdmin: boolean;
}

/** Emitted as 'recorded' once a batch is committed: for metrics (no addresses). */
export interface RecordedEvents {
  upstream: string;
  events: ProviderEvent[];
  /** Events that matched no retained message. */
  unmatched: number;
  /** Failure notices queued to senders. */
  notices: number;
}

/** One event matched to a retained recipient. */
interface Match {
  event: ProviderEvent;
  address: string;
}

export class ProviderEventRecorder extends EventEmitter {
  constructor(
    private readonly spool: Spool,
    private readonly settings: () => ProviderEventSettings,
    private readonly log: Logger,
    private readonly wait: {
      graceMs?: number;
      /** Delivery attempts in flight (the scheduler's): with none, no outcome can be pending and nothing is waited for. */
      inFlight?: () => number;
    } = {},
  ) {
    super();
  }

  /** The EventSink the webhook listener (and pollers) hand verified events to. */
  readonly sink: EventSink = (upstream, events) => this.record(upstream, events);

  async record(upstream: RestUpstreamConfig, events: ProviderEvent[], now = Date.now()): Promise<void> {
    await this.awaitOutcomes(upstream, events, now);
    const byMessage = new Map<string, Match[]>();
    let unmatched = 0;
    for (const event of events) {
      const sent = this.spool.sentFor(upstream.name, event.providerMessageId, now);
      const recipient = sent && matchRecipient(sent, upstream, event);
      const fields = {
        event: 'provider-event',
        upstream: upstream.name,
        type: event.type,
        providerMessageId: event.providerMessageId,
        recipient: event.recipient,
        reason: event.reason,
        status: event.status,
      };
      if (!sent || !recipient) {
        unmatched++;
        this.log.info(
          { ...fields, matched: false },
          `${upstream.name}: ${event.type} for ${event.recipient} (${event.providerMessageId}): no such message retained (not sent through here, or older than events.retention); ignored`,
        );
        continue;
      }
      this.log.info({ ...fields, queueId: sent.id, matched: true }, `${upstream.name}: ${event.type} for ${event.recipient} (${event.providerMessageId}, queue id ${sent.id})`);
      const list = byMessage.get(sent.id) ?? [];
      list.push({ event, address: recipient.address });
      byMessage.set(sent.id, list);
    }
    let notices = 0;
    for (const [id, matches] of byMessage) notices += await this.apply(upstream, id, matches, now);
    this.emit('recorded', { upstream: upstream.name, events, unmatched, notices } satisfies RecordedEvents);
  }

  /**
   * SendGrid's "dropped", Postmark's inactive-recipient bounce and the like can arrive within
   * milliseconds of the provider's 2xx, before the delivery outcome that retains the message is
   * committed: recent events with an unknown id wait for it (polling the index, at most graceMs,
   * and only while a delivery attempt is in flight) instead of being answered 200 and lost.
   */
  private async awaitOutcomes(upstream: RestUpstreamConfig, events: ProviderEvent[], now: number): Promise<void> {
    const unknown = (e: ProviderEvent) => !this.spool.sentFor(upstream.name, e.providerMessageId);
    let waiting = events.filter((e) => (e.at === undefined || now - e.at.getTime() < RECENT_EVENT_MS) && unknown(e));
    const inFlight = this.wait.inFlight ?? (() => 1);
    const deadline = Date.now() + (this.wait.graceMs ?? UNMATCHED_GRACE_MS);
    while (waiting.length > 0 && inFlight() > 0 && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, GRACE_STEP_MS));
      waiting = waiting.filter(unknown);
    }
  }

  /** Records one message's events and the notices they call for, in one spool transaction. Returns the failure notices queued. */
  private async apply(upstream: RestUpstreamConfig, id: string, matches: Match[], now: number): Promise<number> {
    const settings = this.settings();
    let notices: NewMessage[] = [];
    const failed: Array<{ address: string; notice: number | undefined; reason: string }> = [];
    let complaints: string[] = [];
    const updated = await this.spool.updateSent(
      id,
      (sent) => {
        notices = [];
        failed.length = 0;
        complaints = [];
        for (const { event, address } of matches) {
          const recipient = sent.recipients.find((r) => r.address === address)!;
          if (!addNote(recipient, event, now)) continue;
          if (FAILURE_EVENTS.has(event.type) && recipient.failedAt === undefined) {
            recipient.failedAt = now;
            const state = failedState(recipient, upstream, event, now);
            const notice = noticeMessages(asMessageRecord(sent), 'failure', [state], () => Buffer.from(sent.headers, 'latin1'), settings, now);
            recipient.noticeQueued = notice.length > 0;
            failed.push({ address, notice: notice.length > 0 ? notices.length : undefined, reason: state.lastReply! });
            notices.push(...notice);
          } else if (event.type === 'complaint' && recipient.complainedAt === undefined) {
            recipient.complainedAt = now;
            complaints.push(address);
            if (settings.complaintsToAdmin && settings.admin) notices.push(complaintNotice(sent, recipient, upstream, event, settings, settings.admin, now));
          }
        }
        return sent;
      },
      () => notices,
    );
    if (!updated) return 0;
    for (const f of failed) {
      const dsn = f.notice === undefined ? undefined : updated.inserted[f.notice];
      this.log.warn(
        { event: 'provider-bounce', queueId: id, upstream: upstream.name, recipient: f.address, reply: f.reason, dsnQueueIds: dsn ? [dsn] : undefined },
        dsn
          ? `${id}: ${upstream.name} reports <${f.address}> failed after accepting it: ${f.reason}; notice queued to the sender`
          : `${id}: ${upstream.name} reports <${f.address}> failed after accepting it: ${f.reason}; no notice (NOTIFY=NEVER, a bounce, or the null sender)`,
      );
    }
    for (const address of complaints) {
      this.log.warn(
        { event: 'provider-complaint', queueId: id, upstream: upstream.name, recipient: address },
        `${id}: <${address}> reported the message as spam (${upstream.name}); the sender is not told`,
      );
    }
    return failed.filter((f) => f.notice !== undefined).length;
  }
}

/**
 * Providers whose events name the email but not which of its recipients they are about (Resend
 * reports the email's To list): an event is attributed only when the id covers one recipient.
 */
const RECIPIENT_NOT_REPORTED: ReadonlySet<string> = new Set(['resend']);

/**
 * The messages the spool retained as accepted by an upstream since a time, one entry per provider
 * id with its recipients: for pollers of per-message status APIs (Resend).
 */
export function listSent(spool: Spool): ListSent {
  return (upstream, sinceMs) => {
    const byId = new Map<string, SentMessage>();
    for (const r of spool.sentSince(upstream, sinceMs)) {
      const entry = byId.get(r.providerMessageId) ?? { providerMessageId: r.providerMessageId, recipients: [] };
      entry.recipients.push(r.address);
      byId.set(r.providerMessageId, entry);
    }
    return byId.values();
  };
}

/** The retained recipient `event` is about: same upstream, same provider id, same address (case-insensitive). */
function matchRecipient(sent: SentRecord, upstream: RestUpstreamConfig, event: ProviderEvent): SentRecipient | undefined {
  const address = event.recipient.toLowerCase();
  const covered = sent.recipients.filter((r) => r.upstream === upstream.name && normalizeMessageId(upstream.type, r.providerMessageId) === event.providerMessageId);
  if (RECIPIENT_NOT_REPORTED.has(upstream.type) && covered.length !== 1) return undefined;
  return covered.find((r) => r.address.toLowerCase() === address);
}

/** Adds the event to the recipient's history, capped; false when the same provider event id is already there. */
function addNote(recipient: SentRecipient, event: ProviderEvent, now: number): boolean {
  if (event.eventId !== undefined && recipient.events.some((e) => e.eventId === event.eventId && e.type === event.type)) return false;
  recipient.events.push({
    at: event.at?.getTime() ?? now,
    type: event.type,
    ...(event.reason ? { reason: event.reason.slice(0, 1000) } : {}),
    ...(event.status ? { status: event.status.slice(0, 100) } : {}),
    ...(event.eventId ? { eventId: event.eventId.slice(0, 200) } : {}),
  });
  if (recipient.events.length > SENT_EVENTS_LIMIT) recipient.events.splice(0, recipient.events.length - SENT_EVENTS_LIMIT);
  return true;
}

/** The provider's diagnostic as a DSN Diagnostic-Code ("smtp; 550 …" from SES loses its type prefix: buildDsn adds it). */
function diagnostic(upstream: RestUpstreamConfig, event: ProviderEvent): string {
  // DSN fields are ASCII: the " — " that joins a provider's diagnostic parts becomes " - ".
  const reason = event.reason
    ?.replace(/^smtp;\s*/i, '')
    .replace(/ \u2014 /g, ' - ')
    .trim();
  const words = event.type.replace('_', ' ');
  if (!reason) return `${upstream.name} reported a ${words} after accepting the message${event.status ? ` (${event.status})` : ''}`;
  return /^\d{3}\b/.test(reason) || !event.status || reason.includes(event.status) ? reason : `${event.status} ${reason}`;
}

/** RFC 3463 status for the notice: the provider's enhanced code when it gives a permanent one, else 5.0.0. */
function failureStatus(event: ProviderEvent): string {
  return /\b5\.\d{1,3}\.\d{1,3}\b/.exec(`${event.status ?? ''} ${event.reason ?? ''}`)?.[0] ?? '5.0.0';
}

/** The recipient as dsn.ts reports a failure. */
function failedState(recipient: SentRecipient, upstream: RestUpstreamConfig, event: ProviderEvent, now: number): RecipientState {
  return {
    address: recipient.address,
    ...(recipient.notify ? { notify: recipient.notify } : {}),
    ...(recipient.orcpt ? { orcpt: recipient.orcpt } : {}),
    status: 'failed',
    attempts: recipient.history.length,
    lastAttemptAt: event.at?.getTime() ?? now,
    lastReply: diagnostic(upstream, event),
    dsnStatus: failureStatus(event),
    upstream: upstream.name,
    providerMessageId: recipient.providerMessageId,
    history: recipient.history,
  };
}

/** The retained message in the shape dsn.ts reads. Only its headers were kept, so RET=FULL cannot be honoured: headers are returned. */
function asMessageRecord(sent: SentRecord): MessageRecord {
  return {
    id: sent.id,
    sender: sent.sender,
    recipients: [],
    receivedAt: sent.receivedAt,
    size: sent.size,
    ...(sent.messageId ? { messageId: sent.messageId } : {}),
    origin: { protocol: 'smtp' },
    isBounce: sent.isBounce,
    ...(sent.envid ? { envid: sent.envid } : {}),
    held: false,
    nextAttemptAt: null,
    attempts: 0,
  };
}

/** One line, printable ASCII, bounded: the values come from a provider and from the message. */
function line(text: string, max = 300): string {
  return text
    .replace(/[\r\n]+/g, ' ')
    .replace(/[^\x20-\x7e]/g, '?')
    .slice(0, max);
}

/** A plain-text notice to [local] admin that a recipient complained (events.complaints_to_admin). */
function complaintNotice(sent: SentRecord, recipient: SentRecipient, upstream: RestUpstreamConfig, event: ProviderEvent, settings: ProviderEventSettings, admin: string, now: number): NewMessage {
  const text = [
    `From: Mail Delivery System <${settings.bounceFrom}>`,
    `To: <${admin}>`,
    `Subject: Spam complaint from ${line(recipient.address)}`,
    `Date: ${rfc5322Date(new Date(now))}`,
    `Message-ID: <${sent.id}.${randomBytes(4).toString('hex')}.complaint@${settings.hostname}>`,
    'Auto-Submitted: auto-generated',
    'MIME-Version: 1.0',
    'Content-Type: text/plain; charset=us-ascii',
    '',
    `This is the mail system at host ${settings.hostname}.`,
    '',
    `${upstream.name} reports that <${line(recipient.address)}> marked this message as spam${event.reason ? ` (${line(event.reason, 200)})` : ''}.`,
    'The sender was not told: that would reveal who complained.',
    '',
    `Queue ID:            ${sent.id}`,
    `Sender:              <${line(sent.sender)}>`,
    `Message-ID:          ${line(sent.messageId ?? '(none)')}`,
    `Provider message id: ${line(recipient.providerMessageId)}`,
    '',
    'Headers of the message:',
    '',
    ...sent.headers
      .split(/\r?\n/)
      .filter((l) => l !== '')
      .map((l) => `  ${line(l, 998)}`),
    '',
  ].join('\r\n');
  return { envelope: { sender: '', recipients: [admin] }, bytes: Buffer.from(text, 'latin1'), meta: { origin: { protocol: 'dsn' }, isBounce: true } };
}
