/**
 * The delivery loop: finds due messages in the spool, hands each to the router (which tries the
 * upstreams), and records the outcome — recipient states, next attempt, and any DSN — in one
 * spool transaction. Wakes on new mail (the spool's 'accepted' event) and polls the due index so
 * changes made by other processes (`queue retry`, sendmail submissions) are seen within a second.
 */
import { EventEmitter } from 'node:events';
import { DeliveryStateError, SpoolError } from '../errors.js';
import type { Logger } from '../log.js';
import type { RetryConfig } from '../config/types.js';
import type { OpenedBody, Spool } from '../spool/spool.js';
import { assertAllowed, assertEnded, deliveryState, isDue } from '../spool/states.js';
import type { MessageRecord, RecipientState } from '../spool/types.js';
import type { OutboundMessage } from '../upstreams/types.js';
import { dsnMessages, noticeMessages, wantsNotice } from './dsn.js';
import { applyOutcomes, type Applied } from './outcome.js';
import type { RoutedOutcome, Router } from './router.js';

export interface SchedulerSettings {
  retry: RetryConfig;
  hostname: string;
  bounceFrom: string;
  /** Messages delivered in parallel. */
  concurrency: number;
  /** How often to look at the due index when nothing woke us (ms). */
  pollInterval?: number;
  /** Delays between tries to record an outcome (default OUTCOME_RETRY_DELAYS; tests shorten them). */
  outcomeRetryDelays?: number[];
}

/** One recipient's result within an attempt, for observers (metrics): no addresses, no content. */
export interface RecipientAttempt {
  upstream: string;
  outcome: RoutedOutcome['outcome'];
  /** The recipient failed for good with this attempt (permanent, or transient past max_age). */
  bounced: boolean;
}

/** Emitted as 'attempt' after each delivery attempt has been recorded in the spool. */
export interface AttemptEvent {
  /** The message was a notice we generated: a "bounced" recipient here is a dropped bounce. */
  isBounce?: boolean;
  receivedAt: number;
  startedAt: number;
  finishedAt: number;
  recipients: RecipientAttempt[];
}

/**
 * Recording an outcome that failed is retried after these delays (ms), the delivery is not: the
 * message stays "in flight" meanwhile, so it is not picked again. After the last one the spool's
 * fail-stop ends the process (see Spool.commit): a restart re-reads the spool from disk.
 */
export const OUTCOME_RETRY_DELAYS = [250, 1000, 2000, 4000, 8000];

/** After an unexpected delivery failure the message is left alone this long (in memory only). */
export const FAILURE_PAUSE_MS = 60_000;

export class Scheduler extends EventEmitter {
  private readonly inFlight = new Map<string, Promise<void>>();
  /** Messages not to pick before a time, after a failure that would otherwise repeat at once. */
  private readonly notBefore = new Map<string, number>();
  /** Messages an operator action is waiting for or working on: not started meanwhile. */
  private readonly reserved = new Map<string, Promise<unknown>>();
  private running = false;
  private timer: NodeJS.Timeout | undefined;
  private immediate: NodeJS.Immediate | undefined;
  private ticking = false;
  private again = false;
  private paused = false;
  private readonly onAccepted = () => this.wake();
  private readonly onStaleDue = (count: number) => {
    this.log.warn({ event: 'stale-due', count }, `removed ${count} stale due-index entr${count === 1 ? 'y' : 'ies'} (no such message, or not due then)`);
    this.wake();
  };

  constructor(
    private readonly spool: Spool,
    private router: Router,
    private settings: SchedulerSettings,
    private readonly log: Logger,
    /** The time (ms); tests pass a fake clock. Timers still run on real time (pollInterval bounds every wait). */
    private readonly now: () => number = Date.now,
  ) {
    super();
  }

  start(): void {
    this.running = true;
    this.spool.on('accepted', this.onAccepted);
    this.spool.on('stale-due', this.onStaleDue);
    this.wake();
  }

  /** Swap in a new router and settings after a config reload; in-flight deliveries finish on the old one. */
  reconfigure(router: Router, settings: SchedulerSettings): Router {
    const old = this.router;
    this.router = router;
    this.settings = settings;
    this.wake();
    return old;
  }

  get activeRouter(): Router {
    return this.router;
  }

  get inFlightCount(): number {
    return this.inFlight.size;
  }

  /** Stops picking new work and waits (bounded) for in-flight deliveries. Returns how many were left running. */
  async stop(graceMs: number): Promise<number> {
    this.running = false;
    this.spool.off('accepted', this.onAccepted);
    this.spool.off('stale-due', this.onStaleDue);
    clearTimeout(this.timer);
    clearImmediate(this.immediate);
    this.immediate = undefined;
    const all = Promise.allSettled([...this.inFlight.values()]);
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([all, new Promise((resolve) => (timer = setTimeout(resolve, graceMs)))]);
    clearTimeout(timer);
    return this.inFlight.size;
  }

  /**
   * Runs an operator action on message `id` once its in-flight attempt (if any) has returned and
   * its outcome is recorded, and starts no attempt meanwhile. So `queue bounce` or `delete` during
   * a delivery sees the delivery's outcome (a delivered message is simply gone) instead of
   * cancelling mail that arrived.
   */
  async exclusive<T>(id: string, action: () => Promise<T>): Promise<T> {
    const earlier = this.reserved.get(id) ?? Promise.resolve();
    const run = earlier.then(async () => {
      await this.inFlight.get(id); // never rejects: the job catches its own errors
      return await action();
    });
    const settled = run.then(
      () => undefined,
      () => undefined,
    );
    this.reserved.set(id, settled);
    void settled.then(() => {
      if (this.reserved.get(id) === settled) this.reserved.delete(id);
      this.wake();
    });
    return await run;
  }

  isInFlight(id: string): boolean {
    return this.inFlight.has(id);
  }

  /** Messages not to start now: being delivered, reserved by an operator action, or paused after a failure. */
  private busy(): Set<string> {
    return new Set([...this.inFlight.keys(), ...this.reserved.keys(), ...this.notBefore.keys()]);
  }

  wake(): void {
    if (!this.running) return;
    if (this.ticking) {
      this.again = true;
      return;
    }
    // One pending tick however many messages are accepted or finish before it runs (a setImmediate,
    // not a 0 ms timer: no timer-list insertion and removal per message).
    if (this.immediate) return;
    clearTimeout(this.timer);
    this.immediate = setImmediate(() => {
      this.immediate = undefined;
      this.tick();
    });
  }

  private tick(): void {
    if (!this.running) return;
    this.ticking = true;
    this.again = false;
    // Every upstream is cooling down after failing: leave the mail due and wait for the first probe
    // time, rather than failing each message (and writing its outcome) against a dead upstream.
    const pausedUntil = this.router.pausedUntil();
    if ((pausedUntil !== undefined) !== this.paused) {
      this.paused = pausedUntil !== undefined;
      if (pausedUntil !== undefined) this.log.warn({ event: 'paused', until: new Date(pausedUntil).toISOString() }, 'every upstream is failing; delivery paused until the next probe');
      else this.log.info({ event: 'resumed' }, 'delivery resumed');
    }
    // Built once per tick (and kept up to date with what it launches) for both scans below.
    let busy: Set<string> | undefined;
    try {
      const free = pausedUntil === undefined ? this.settings.concurrency - this.inFlight.size : 0;
      if (free > 0) {
        const now = this.now();
        for (const [id, until] of this.notBefore) if (until <= now) this.notBefore.delete(id);
        busy = this.busy();
        for (const id of this.spool.dueIds(now, free, busy)) {
          this.launch(id);
          busy.add(id);
        }
      }
    } catch (error) {
      this.log.error({ err: error }, 'cannot read the spool; retrying');
    } finally {
      this.ticking = false;
    }
    if (this.again) return this.wake();
    const poll = this.settings.pollInterval ?? 1000;
    // Messages being delivered stay in the due index until their outcome is recorded; skip them,
    // or their past due time would make this loop spin.
    const nextDue = pausedUntil !== undefined ? pausedUntil : this.inFlight.size >= this.settings.concurrency ? undefined : this.spool.nextDueAt(busy ?? this.busy());
    const delay = nextDue === undefined ? poll : Math.max(0, Math.min(poll, nextDue - this.now()));
    clearTimeout(this.timer);
    if (this.running) this.timer = setTimeout(() => this.tick(), delay);
  }

  /**
   * Starts an attempt: the message is in flight (in `inFlight`) before deliver() reads it, and
   * leaves that state when the attempt ends (outcome recorded, or abandoned: it stays as stored).
   * An attempt that fails — an illegal state transition included — is logged at error level and
   * the message stays queued as it was, paused for FAILURE_PAUSE_MS (in memory only).
   */
  private launch(id: string): void {
    if (this.inFlight.has(id)) throw new DeliveryStateError(id, 'in-flight', 'start');
    const job = Promise.resolve()
      .then(() => this.deliver(id))
      .catch((error: unknown) => {
        this.notBefore.set(id, this.now() + FAILURE_PAUSE_MS);
        const illegal = error instanceof DeliveryStateError;
        this.log.error(
          { err: error, queueId: id, event: illegal ? 'illegal-state' : 'delivery-error' },
          `${illegal ? 'delivery-state bug' : 'delivery failed unexpectedly'}; message stays queued, next try in ${FAILURE_PAUSE_MS / 1000} s at the earliest`,
        );
      })
      .finally(() => {
        this.inFlight.delete(id);
        this.wake();
      });
    this.inFlight.set(id, job);
  }

  private async deliver(id: string): Promise<void> {
    const record = this.spool.get(id);
    if (!record) return; // deleted since it was found due
    const state = deliveryState(record);
    if (!isDue(state, this.now()))
      throw new DeliveryStateError(id, state.name === 'pending' || state.name === 'deferred' ? `${state.name}, due at ${new Date(state.dueAt).toISOString()}` : state.name, 'start');
    assertAllowed(id, state, 'start');
    // Never send a damaged copy: a body that is missing, or no longer matches its accept-time size
    // and checksum, is held. A body file is checked as it is streamed (body-files.ts): a mismatch
    // fails the stream before its end, so no upstream completes the message, and it is held after.
    const body = this.spool.openBody(record);
    if ('problem' in body) return this.holdDamaged(id, body.problem);
    try {
      await this.attempt(id, record, body);
    } finally {
      body.close();
    }
    if (body.damage) await this.holdDamaged(id, body.damage);
  }

  private async holdDamaged(id: string, problem: string): Promise<void> {
    await this.spool.quarantine(id, problem);
    this.log.error({ event: 'spool-damaged', queueId: id, problem }, `${id}: ${problem}; message held, not delivered (see mailshim queue verify)`);
  }

  private async attempt(id: string, record: MessageRecord, body: OpenedBody): Promise<void> {
    const recipients = record.recipients.filter((r) => r.status === 'pending' || r.status === 'deferred').map((r) => r.address);
    if (recipients.length === 0) return;
    const started = this.now();
    const router = this.router;
    const outcomes = await router.deliver({
      id,
      sender: record.sender,
      recipients,
      body,
      messageId: record.messageId,
      dsn: outboundDsn(record),
      isBounce: record.isBounce,
      bounceFrom: this.settings.bounceFrom,
    });
    const now = this.now();
    const retry = this.settings.retry;
    const dsnSettings = { ...this.settings, delayWarning: retry.delayWarning, maxAge: retry.maxAge };
    let applied: Applied | undefined;
    let delayed: RecipientState[] = [];
    // The whole body only when a notice quotes it (read inside the outcome's transaction, once).
    let quoted: { raw: Buffer | undefined } | undefined;
    const original = () => (quoted ??= { raw: this.spool.body(id) }).raw;
    const updated = await this.recordOutcome(id, () =>
      this.spool.update(
        id,
        (current) => {
          assertAllowed(id, deliveryState(current, this.inFlight.has(id)), 'outcome');
          applied = applyOutcomes(current, outcomes, retry, now);
          // A record held meanwhile stays held (its outcome is still recorded: forgetting a delivery would send it twice).
          if (!current.held) assertEnded(id, deliveryState(applied.record), 'outcome');
          delayed = markDelayed(applied.record, retry.delayWarning ?? 0, now);
          return applied.record;
        },
        (next) => {
          // A success notice only where the upstream did not take the NOTIFY request on (Postfix: "relayed").
          const succeeded = applied!.newlyDelivered.filter((r) => !outcomes.get(r.address)?.dsnPassedOn);
          return [
            ...dsnMessages(next, applied!.newlyFailed, original, dsnSettings, now),
            ...noticeMessages(next, 'success', succeeded, original, dsnSettings, now),
            ...noticeMessages(next, 'delay', delayed, original, dsnSettings, now),
          ];
        },
      ),
    );
    const newlyFailed = applied?.newlyFailed ?? [];
    const bounced = new Set(newlyFailed.map((r) => r.address));
    this.logAttempt(record, outcomes, started, now, updated?.record.nextAttemptAt ?? null, updated?.inserted ?? [], bounced);
    if (!updated) this.log.warn({ queueId: id }, 'message was removed while it was being delivered');
    if (record.isBounce && newlyFailed.length > 0) {
      // The notice itself could not be delivered anywhere: nothing is left to tell the sender.
      this.log.error(
        { event: 'bounce-dropped', queueId: id, to: newlyFailed.map((r) => r.address), reply: newlyFailed[0]!.lastReply },
        `a delivery status notice could not be delivered through any upstream and is dropped: ${newlyFailed[0]!.lastReply ?? ''}`,
      );
    }
    const event: AttemptEvent = {
      receivedAt: record.receivedAt,
      startedAt: started,
      finishedAt: now,
      isBounce: record.isBounce,
      recipients: [...outcomes].map(([address, o]) => ({ upstream: o.upstream, outcome: o.outcome, bounced: bounced.has(address) })),
    };
    this.emit('attempt', event);
  }

  /**
   * Records an attempt's outcome, retrying the spool write (never the delivery) a bounded number
   * of times. Once the upstream has the message, forgetting that would send it again — in a tight
   * loop before this existed (issue 10). If the spool still refuses, stop the process: the spool's
   * own fail-stop when it has one (the daemon), otherwise the error goes to the caller.
   */
  private async recordOutcome<T>(id: string, write: () => Promise<T>): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await write();
      } catch (error) {
        if (error instanceof DeliveryStateError) throw error; // a bug, not the disk: another try would fail the same way
        const delay = (this.settings.outcomeRetryDelays ?? OUTCOME_RETRY_DELAYS)[attempt];
        if (delay === undefined) {
          const failure = new SpoolError('ESPOOLSYNC', `cannot record the outcome of delivering ${id} after ${attempt + 1} tries: ${(error as Error).message}`, { cause: error });
          this.spool.failStop?.(failure);
          throw failure;
        }
        if (!this.running) throw error; // shutting down: the message stays queued as it was
        this.log.error(
          { err: error, event: 'outcome-not-recorded', queueId: id, retryInMs: delay },
          `${id}: cannot record the delivery outcome; retrying the spool write in ${delay} ms (the message is not sent again meanwhile)`,
        );
        await new Promise((resolve) => setTimeout(resolve, delay));
      }
    }
  }

  /** Upstreams that failed before another took the message: still worth an alert (config) or a warning. */
  private logFailovers(record: MessageRecord, outcomes: Map<string, RoutedOutcome>): void {
    const groups = new Map<string, { upstream: string; outcome: string; reply: string; next: string; recipients: string[] }>();
    for (const [recipient, outcome] of outcomes) {
      for (const [i, earlier] of (outcome.previous ?? []).entries()) {
        const next = outcome.previous?.[i + 1]?.upstream ?? outcome.upstream;
        const key = `${earlier.upstream}\u0000${earlier.outcome}\u0000${earlier.reply}\u0000${next}`;
        const group = groups.get(key) ?? { ...earlier, next, recipients: [] };
        group.recipients.push(recipient);
        groups.set(key, group);
      }
    }
    for (const g of groups.values()) {
      const fields = {
        event: 'failover',
        queueId: record.id,
        messageId: record.messageId,
        from: record.sender,
        recipients: g.recipients,
        upstream: g.upstream,
        result: g.outcome,
        reply: g.reply,
        next: g.next,
      };
      if (g.outcome === 'config') this.log.error(fields, `upstream ${g.upstream} rejects our configuration: ${g.reply} — trying ${g.next}; fix the config and reload`);
      else this.log.warn(fields, `upstream ${g.upstream} failed (${g.outcome}): ${g.reply} — trying ${g.next}`);
    }
  }

  private logAttempt(record: MessageRecord, outcomes: Map<string, RoutedOutcome>, started: number, now: number, nextAttemptAt: number | null, dsnIds: string[], bounced: ReadonlySet<string>): void {
    this.logFailovers(record, outcomes);
    // One line per (upstream, result, reply) group: usually one line per attempt. A transient
    // failure past max_age is not "deferred" but given up: logged as result "expired".
    const groups = new Map<string, { outcome: RoutedOutcome; result: string; recipients: string[] }>();
    for (const [recipient, outcome] of outcomes) {
      const result = (outcome.outcome === 'transient' || outcome.outcome === 'config') && bounced.has(recipient) ? 'expired' : outcome.outcome;
      const key = `${outcome.upstream}\u0000${result}\u0000${outcome.reply}`;
      const group = groups.get(key) ?? { outcome, result, recipients: [] };
      group.recipients.push(recipient);
      groups.set(key, group);
    }
    for (const { outcome, result, recipients } of groups.values()) {
      const fields = {
        event: 'delivery',
        queueId: record.id,
        messageId: record.messageId,
        from: record.sender,
        recipients,
        upstream: outcome.upstream,
        result,
        status: result === 'expired' ? '4.4.7' : outcome.status,
        reply: outcome.reply,
        providerMessageId: outcome.providerMessageId,
        attempt: record.attempts + 1,
        delayMs: now - record.receivedAt,
        durationMs: now - started,
        nextAttemptAt: result === 'transient' || result === 'config' ? (nextAttemptAt === null ? undefined : new Date(nextAttemptAt).toISOString()) : undefined,
        dsnQueueIds: dsnIds.length > 0 && outcome.outcome !== 'delivered' ? dsnIds : undefined,
      };
      if (result === 'config' && outcome.scope === 'message') {
        this.log.error(fields, `upstream ${outcome.upstream} refuses this message: ${outcome.reply} — the message stays deferred (other mail flows); fix the sender setup, or it bounces at max_age`);
      } else if (result === 'config') {
        this.log.error(fields, `upstream ${outcome.upstream} rejects our configuration: ${outcome.reply} — mail stays deferred until the config is fixed and reloaded`);
      } else if (outcome.outcome === 'delivered') {
        this.log.info(fields, 'delivered');
      } else {
        this.log.warn(fields, result === 'permanent' ? 'bounced' : result === 'expired' ? 'given up: max_age expired' : 'deferred');
      }
    }
  }
}

/** The record's RFC 3461 parameters, as the upstream passes them on. */
function outboundDsn(record: MessageRecord): OutboundMessage['dsn'] {
  const recipients: Record<string, { notify?: RecipientState['notify']; orcpt?: string }> = {};
  for (const r of record.recipients) if (r.notify || r.orcpt) recipients[r.address] = { notify: r.notify, orcpt: r.orcpt };
  if (!record.dsnRet && !record.envid && Object.keys(recipients).length === 0) return undefined;
  return { ret: record.dsnRet, envid: record.envid, recipients };
}

/**
 * delay_warning_time: recipients still deferred once the message is that old get one "delayed"
 * notice each (if they did not ask for NOTIFY without DELAY); marks them so it is sent once.
 */
function markDelayed(record: MessageRecord, delayWarning: number, now: number): RecipientState[] {
  if (delayWarning <= 0 || now - record.receivedAt < delayWarning) return [];
  const due = record.recipients.filter((r) => r.status === 'deferred' && !r.delayNotified && wantsNotice(r, 'delay'));
  for (const r of due) r.delayNotified = true;
  return due;
}
