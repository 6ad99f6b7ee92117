/**
 * `poll = true` on a REST upstream: every poll_interval, fetch the provider's events from its pull
 * API and hand them to the same EventSink the webhook listener uses. For hosts that cannot receive
 * webhooks (an office relay behind NAT); it needs no [events] section.
 *
 * Each round reads the window [previous round's start − the source's overlap, now): providers record
 * events late (Mailgun documents up to half an hour), so windows overlap, and events already handed
 * on are remembered (by the provider's event id, else type + message id + recipient) and not handed
 * on again. The sink's own durable dedupe covers restarts. The first round after start looks back
 * INITIAL_LOOKBACK_MS. A round never touches delivery: it runs on its own timer, and a slow or
 * failing provider only delays the next round.
 *
 * Failures, classified like deliveries: 401/403 is a configuration problem (logged as an error each
 * round, `mailshim status` shows it); 429/5xx/network is transient (Retry-After honoured, else
 * exponential backoff from poll_interval up to an hour); the window is kept, so nothing is skipped.
 */
import type { Logger } from 'pino';
import type { RestUpstreamConfig } from '../../config/types.js';
import { MAX_RETRY_AFTER_MS } from '../../upstreams/rest/http.js';
import type { EventSink } from '../listener.js';
import type { ProviderEvent } from '../types.js';
import { getJson, PollFailure } from './fetch.js';
import type { ListSent, PollSource } from './source.js';

/** How far back the first round after start (or after poll is turned on) reads. */
export const INITIAL_LOOKBACK_MS = 24 * 3_600_000;
/** The widest window a round reads (after a long outage): within every provider's retention (SparkPost keeps 10 days). */
export const MAX_WINDOW_MS = 7 * 24 * 3_600_000;
const MAX_BACKOFF_MS = 3_600_000;
const MAX_REMEMBERED = 100_000;

export type PollState = 'starting' | 'ok' | 'failing' | 'config-error';

export interface PollStatus {
  upstream: string;
  type: string;
  state: PollState;
  intervalMs: number;
  lastSuccessAt: number | null;
  lastErrorAt: number | null;
  lastError: string | null;
  consecutiveFailures: number;
  /** Events handed to the sink since start. */
  events: number;
}

export interface PollerOptions {
  upstream: RestUpstreamConfig & { poll: { intervalMs: number } };
  source: PollSource;
  sink: EventSink;
  listSent: ListSent;
  log: Logger;
  /** Tests: the clock. */
  now?: () => number;
}

export function eventKey(e: ProviderEvent): string {
  return e.eventId ?? `${e.type}:${e.providerMessageId}:${e.recipient}`;
}

export class Poller {
  private upstream: PollerOptions['upstream'];
  /**
   * Start of the next window: before the overlap, or exactly (`exact`) where a page-bounded
   * ascending read stopped, so that catching up makes progress. Undefined until a round succeeds.
   */
  private cursor: { at: number; exact: boolean } | undefined;
  /** Event keys already handed on → when (insertion order = age). */
  private readonly handed = new Map<string, number>();
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<number> | undefined;
  private readonly stopper = new AbortController();
  private readonly status: Omit<PollStatus, 'upstream' | 'type' | 'intervalMs'> = { state: 'starting', lastSuccessAt: null, lastErrorAt: null, lastError: null, consecutiveFailures: 0, events: 0 };
  private readonly now: () => number;

  constructor(private readonly options: PollerOptions) {
    this.upstream = options.upstream;
    this.now = options.now ?? Date.now;
  }

  get name(): string {
    return this.upstream.name;
  }

  /** A reload: new credentials, endpoint or interval; the cursor and memory of handed-on events stay. */
  update(upstream: PollerOptions['upstream']): void {
    this.upstream = upstream;
  }

  snapshot(): PollStatus {
    return { upstream: this.upstream.name, type: this.upstream.type, intervalMs: this.upstream.poll.intervalMs, ...this.status };
  }

  /** Starts the schedule: the first round right away. */
  start(): void {
    this.schedule(0);
  }

  private schedule(delayMs: number): void {
    if (this.stopper.signal.aborted) return;
    this.timer = setTimeout(() => {
      this.running = this.round();
      void this.running.then((next) => {
        this.running = undefined;
        this.schedule(next);
      });
    }, delayMs);
    this.timer.unref();
  }

  /** Stops the schedule and any request in flight; resolves once a running round has ended. */
  async stop(): Promise<void> {
    this.stopper.abort();
    clearTimeout(this.timer);
    await this.running;
  }

  /** One round; resolves with the delay before the next one. Never rejects. */
  async round(): Promise<number> {
    const { source, log } = this.options;
    const upstream = this.upstream;
    const interval = upstream.poll.intervalMs;
    const started = this.now();
    const since = this.cursor?.at ?? started - INITIAL_LOOKBACK_MS;
    const from = this.cursor?.exact ? since : since - source.overlapMs;
    const window = { from: Math.max(from, started - MAX_WINDOW_MS), until: started };
    const signal = this.stopper.signal;
    try {
      const result = await source.fetch({
        upstream,
        window,
        getJson: (url, headers) => getJson(url, headers, upstream.timeout, signal),
        pause: (ms) => pause(ms, signal),
        listSent: this.options.listSent,
      });
      if (signal.aborted) return interval;
      const fresh = dedupe(result.events.filter((e) => !this.handed.has(eventKey(e))));
      if (fresh.length > 0) await this.options.sink(upstream, fresh);
      for (const e of fresh) this.remember(eventKey(e), started);
      this.status.events += fresh.length;
      if (result.truncated) {
        log.warn({ event: 'poll-truncated', upstream: upstream.name }, `${upstream.name}: more events than one polling round reads; the rest follow in the next rounds`);
        const through = result.truncated.through;
        this.cursor = through !== undefined ? { at: through, exact: true } : { at: since, exact: this.cursor?.exact ?? false };
      } else {
        this.cursor = { at: started, exact: false };
      }
      if (this.status.state !== 'ok') log.info({ event: 'poll-ok', upstream: upstream.name }, `${upstream.name}: polling for events works`);
      Object.assign(this.status, { state: 'ok', lastSuccessAt: this.now(), consecutiveFailures: 0 });
      log.debug(
        { event: 'poll', upstream: upstream.name, from: new Date(window.from).toISOString(), fetched: result.events.length, handed: fresh.length },
        `${upstream.name}: polled ${result.events.length} event(s), ${fresh.length} new`,
      );
      return result.truncated ? Math.min(interval, 10_000) : interval;
    } catch (error) {
      if (signal.aborted) return interval;
      return this.failed(error, interval);
    }
  }

  private failed(error: unknown, interval: number): number {
    const { log } = this.options;
    const name = this.upstream.name;
    const failure = error instanceof PollFailure ? error : undefined;
    const message = error instanceof Error ? error.message : String(error);
    this.status.consecutiveFailures += 1;
    this.status.lastErrorAt = this.now();
    this.status.lastError = message;
    const n = this.status.consecutiveFailures;
    if (failure?.failureClass === 'config') {
      this.status.state = 'config-error';
      log.error({ event: 'poll-config-error', upstream: name, status: failure.status, err: message }, `${name}: polling for events refused — check the API key and its permissions: ${message}`);
      return interval;
    }
    this.status.state = 'failing';
    const backoff = Math.min(interval * 2 ** (n - 1), Math.max(interval, MAX_BACKOFF_MS));
    const delay = failure?.retryAfterMs !== undefined ? Math.min(Math.max(failure.retryAfterMs, 1000), MAX_RETRY_AFTER_MS) : backoff;
    log.warn(
      { event: 'poll-failed', upstream: name, status: failure?.status, class: failure?.failureClass ?? 'sink', retryInMs: delay, err: message },
      `${name}: polling for events failed (${n} in a row), next try in ${Math.round(delay / 1000)} s: ${message}`,
    );
    return delay;
  }

  private remember(key: string, at: number): void {
    this.handed.delete(key);
    this.handed.set(key, at);
    // Forget what can no longer reappear: older than the widest window a round reads, or beyond the cap.
    const horizon = at - MAX_WINDOW_MS;
    for (const [k, when] of this.handed) {
      if (when >= horizon && this.handed.size <= MAX_REMEMBERED) break;
      this.handed.delete(k);
    }
  }
}

/** The same event twice in one answer (overlapping pages) goes on once. */
function dedupe(events: ProviderEvent[]): ProviderEvent[] {
  const seen = new Set<string>();
  return events.filter((e) => {
    const key = eventKey(e);
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

function pause(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(new PollFailure('transient', 'stopped'));
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(new PollFailure('transient', 'stopped'));
    };
    signal.addEventListener('abort', onAbort, { once: true });
  });
}
