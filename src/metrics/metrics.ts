/**
 * Prometheus metrics (prom-client, on a private registry). Fed by events — the spool's
 * 'accepted' and the scheduler's 'attempt' — so intake and delivery never call into metrics.
 * Labels are upstream names, origins and outcome classes only: never addresses or content.
 */
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { AttemptEvent } from '../delivery/scheduler.js';
import type { SpoolCounts } from '../spool/spool.js';

export interface MetricsSources {
  /** Queue depth, read at scrape time. */
  counts(): SpoolCounts;
  /** Upstream name → consecutive failures, read at scrape time. */
  upstreamFailures(): Array<{ name: string; consecutiveFailures: number }>;
  /** Storage problems (disk full, failed writes) that make `status` CRITICAL, read at scrape time. */
  spoolProblems(): number;
}

const LATENCY_BUCKETS = [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 14400, 86400];

export class Metrics {
  readonly registry = new Registry();
  private readonly accepted: Counter<'origin'>;
  private readonly delivered: Counter<'upstream'>;
  private readonly deferred: Counter<'upstream'>;
  private readonly bounced: Counter<'upstream'>;
  private readonly bouncesDropped: Counter;
  private readonly errors: Counter<'upstream' | 'class'>;
  private readonly attemptDuration: Histogram<'upstream'>;
  private readonly deliveryDelay: Histogram<'upstream'>;
  private readonly providerEvents: Counter<'upstream' | 'type'>;
  private readonly providerEventsUnmatched: Counter<'upstream'>;

  constructor(sources: MetricsSources) {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry, prefix: 'mailshim_' });
    this.accepted = new Counter({ name: 'mailshim_messages_accepted_total', help: 'Messages committed to the spool, by origin (esmtp, sendmail, dsn)', labelNames: ['origin'], registers });
    this.delivered = new Counter({ name: 'mailshim_recipients_delivered_total', help: 'Recipients handed over to an upstream', labelNames: ['upstream'], registers });
    this.deferred = new Counter({
      name: 'mailshim_recipients_deferred_total',
      help: 'Recipient attempts that will be retried (transient or configuration failure)',
      labelNames: ['upstream'],
      registers,
    });
    this.bounced = new Counter({ name: 'mailshim_recipients_bounced_total', help: 'Recipients given up (permanent failure or max_age expiry)', labelNames: ['upstream'], registers });
    this.bouncesDropped = new Counter({ name: 'mailshim_bounces_dropped_total', help: 'Delivery status notices that no upstream could deliver (the sender was not told)', registers });
    this.errors = new Counter({
      name: 'mailshim_upstream_errors_total',
      help: 'Failed recipient attempts by upstream and class (transient, permanent, config)',
      labelNames: ['upstream', 'class'],
      registers,
    });
    this.attemptDuration = new Histogram({
      name: 'mailshim_delivery_attempt_duration_seconds',
      help: 'Duration of one delivery attempt',
      labelNames: ['upstream'],
      buckets: LATENCY_BUCKETS,
      registers,
    });
    this.deliveryDelay = new Histogram({ name: 'mailshim_delivery_delay_seconds', help: 'Time from acceptance to successful delivery', labelNames: ['upstream'], buckets: LATENCY_BUCKETS, registers });
    this.providerEvents = new Counter({
      name: 'mailshim_provider_events_total',
      help: 'Provider events (verified webhooks and polls) by upstream and type (hard_bounce, complaint, delivered, …)',
      labelNames: ['upstream', 'type'],
      registers,
    });
    this.providerEventsUnmatched = new Counter({
      name: 'mailshim_provider_events_unmatched_total',
      help: 'Provider events for no retained message (not sent through here, or older than events.retention)',
      labelNames: ['upstream'],
      registers,
    });
    new Gauge({
      name: 'mailshim_queue_messages',
      help: 'Messages in the queue by state (pending, deferred, held)',
      labelNames: ['state'],
      registers,
      collect() {
        const counts = sources.counts();
        for (const [state, n] of Object.entries(counts.byState)) this.set({ state }, n);
      },
    });
    new Gauge({
      name: 'mailshim_queue_oldest_message_age_seconds',
      help: 'Age of the oldest queued message (0 when the queue is empty)',
      registers,
      collect() {
        const oldest = sources.counts().oldestReceivedAt;
        this.set(oldest === null ? 0 : Math.max(0, (Date.now() - oldest) / 1000));
      },
    });
    new Gauge({
      name: 'mailshim_spool_problems',
      help: 'Spool storage problems now (disk full, reserve in use, failed write); 0 = healthy',
      registers,
      collect() {
        this.set(sources.spoolProblems());
      },
    });
    new Gauge({
      name: 'mailshim_upstream_consecutive_failures',
      help: 'Consecutive failed attempts per upstream (0 = healthy)',
      labelNames: ['upstream'],
      registers,
      collect() {
        for (const u of sources.upstreamFailures()) this.set({ upstream: u.name }, u.consecutiveFailures);
      },
    });
  }

  onAccepted(origin: string): void {
    this.accepted.inc({ origin });
  }

  onProviderEvents(upstream: string, events: Array<{ type: string }>, unmatched = 0): void {
    for (const e of events) this.providerEvents.inc({ upstream, type: e.type });
    if (unmatched > 0) this.providerEventsUnmatched.inc({ upstream }, unmatched);
  }

  onAttempt(event: AttemptEvent): void {
    const upstreams = new Set<string>();
    for (const r of event.recipients) {
      upstreams.add(r.upstream);
      if (r.outcome === 'delivered') {
        this.delivered.inc({ upstream: r.upstream });
        this.deliveryDelay.observe({ upstream: r.upstream }, (event.finishedAt - event.receivedAt) / 1000);
        continue;
      }
      this.errors.inc({ upstream: r.upstream, class: r.outcome });
      if (r.bounced && event.isBounce) this.bouncesDropped.inc();
      if (r.bounced) this.bounced.inc({ upstream: r.upstream });
      else this.deferred.inc({ upstream: r.upstream });
    }
    for (const upstream of upstreams) this.attemptDuration.observe({ upstream }, (event.finishedAt - event.startedAt) / 1000);
  }

  text(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}
