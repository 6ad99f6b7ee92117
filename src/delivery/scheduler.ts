/**
 * The delivery loop: finds due messages in the spool, hands each to the router (which tries the
 * upstreams), and records the outcome — recipient states, next attempt, and any DSN — in one
 * spool transaction. Wakes on new mail (the spool's 'accepted' event) and polls the due index so
 * changes made by other processes (`queue retry`, sendmail submissions) are seen within a second.
 */
import { EventEmitter } from 'node:events';
import { SpoolError } from '../errors.js';
import type { Logger } from '../log.js';
import type { RetryConfig } from '../config/types.js';
import { bodyProblem } from '../spool/checksum.js';
import type { Spool } from '../spool/spool.js';
import type { MessageRecord, RecipientState } from '../spool/types.js';
import { dsnMessages } from './dsn.js';
import { applyOutcomes } from './outcome.js';
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

  /** Ids the loop must not start: being delivered, or reserved by an operator action. */
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
    clearTimeout(this.timer);
    this.timer = setTimeout(() => void this.tick(), 0);
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
    try {
      const free = pausedUntil === undefined ? this.settings.concurrency - this.inFlight.size : 0;
      if (free > 0) {
        const now = Date.now();
        for (const [id, until] of this.notBefore) if (until <= now) this.notBefore.delete(id);
        const ids = this.spool.dueIds(now, free, this.busy());
        for (const id of ids) {
          const job = this.deliver(id)
            .catch((error: unknown) => {
              this.notBefore.set(id, Date.now() + FAILURE_PAUSE_MS);
              this.log.error({ err: error, queueId: id }, `delivery failed unexpectedly; message stays queued, next try in ${FAILURE_PAUSE_MS / 1000} s at the earliest`);
            })
            .finally(() => {
              this.inFlight.delete(id);
              this.wake();
            });
          this.inFlight.set(id, job);
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
    const nextDue =
      pausedUntil !== undefined ? pausedUntil : this.inFlight.size >= this.settings.concurrency ? undefined : this.spool.nextDueAt(this.busy());
    const delay = nextDue === undefined ? poll : Math.max(0, Math.min(poll, nextDue - Date.now()));
    clearTimeout(this.timer);
    if (this.running) this.timer = setTimeout(() => this.tick(), delay);
  }

  private async deliver(id: string): Promise<void> {
    const record = this.spool.get(id);
    const raw = this.spool.body(id);
    if (!record || record.held) return;
    // Never send a damaged copy: a body that no longer matches its accept-time checksum is held.
    const damaged = bodyProblem(record.bodyCrc32, raw, record.size);
    if (damaged || !raw) {
      await this.spool.quarantine(id, damaged ?? 'message body missing from the spool');
      this.log.error({ event: 'spool-damaged', queueId: id, problem: damaged }, `${id}: ${damaged}; message held, not delivered (see mailshim queue verify)`);
      return;
    }
    const recipients = record.recipients.filter((r) => r.status === 'pending' || r.status === 'deferred').map((r) => r.address);
    if (recipients.length === 0) return;
    const started = Date.now();
    const router = this.router;
    const outcomes = await router.deliver({ id, sender: record.sender, recipients, raw, messageId: record.messageId });
    const now = Date.now();
    const retry = this.settings.retry;
    let newlyFailed: RecipientState[] = [];
    const updated = await this.recordOutcome(id, () =>
      this.spool.update(
        id,
        (current) => {
          const applied = applyOutcomes(current, outcomes, retry, now);
          newlyFailed = applied.newlyFailed;
          return applied.record;
        },
        (next) => dsnMessages(next, newlyFailed, raw, this.settings, now),
      ),
    );
    const bounced = new Set(newlyFailed.map((r) => r.address));
    this.logAttempt(record, outcomes, started, now, updated?.record.nextAttemptAt ?? null, updated?.inserted ?? [], bounced);
    if (!updated) this.log.warn({ queueId: id }, 'message was removed while it was being delivered');
    const event: AttemptEvent = {
      receivedAt: record.receivedAt,
      startedAt: started,
      finishedAt: now,
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
        const delay = (this.settings.outcomeRetryDelays ?? OUTCOME_RETRY_DELAYS)[attempt];
        if (delay === undefined) {
          const failure = new SpoolError('ESPOOLSYNC', `cannot record the outcome of delivering ${id} after ${attempt + 1} tries: ${(error as Error).message}`, { cause: error });
          this.spool.failStop?.(failure);
          throw failure;
        }
        if (!this.running) throw error; // shutting down: the message stays queued as it was
        this.log.error({ err: error, event: 'outcome-not-recorded', queueId: id, retryInMs: delay }, `${id}: cannot record the delivery outcome; retrying the spool write in ${delay} ms (the message is not sent again meanwhile)`);
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
      const fields = { event: 'failover', queueId: record.id, messageId: record.messageId, from: record.sender, recipients: g.recipients, upstream: g.upstream, result: g.outcome, reply: g.reply, next: g.next };
      if (g.outcome === 'config') this.log.error(fields, `upstream ${g.upstream} rejects our configuration: ${g.reply} — trying ${g.next}; fix the config and reload`);
      else this.log.warn(fields, `upstream ${g.upstream} failed (${g.outcome}): ${g.reply} — trying ${g.next}`);
    }
  }

  private logAttempt(
    record: MessageRecord,
    outcomes: Map<string, RoutedOutcome>,
    started: number,
    now: number,
    nextAttemptAt: number | null,
    dsnIds: string[],
    bounced: ReadonlySet<string>,
  ): void {
    this.logFailovers(record, outcomes);
    // One line per (upstream, result, reply) group: usually one line per attempt. A transient
    // failure past max_age is not "deferred" but given up: logged as result "expired".
    const groups = new Map<string, { outcome: RoutedOutcome; result: string; recipients: string[] }>();
    for (const [recipient, outcome] of outcomes) {
      const result = outcome.outcome === 'transient' && bounced.has(recipient) ? 'expired' : outcome.outcome;
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
      if (outcome.outcome === 'config') {
        this.log.error(fields, `upstream ${outcome.upstream} rejects our configuration: ${outcome.reply} — mail is held, fix the config and reload`);
      } else if (outcome.outcome === 'delivered') {
        this.log.info(fields, 'delivered');
      } else {
        this.log.warn(fields, result === 'permanent' ? 'bounced' : result === 'expired' ? 'given up: max_age expired' : 'deferred');
      }
    }
  }
}
