/**
 * Failover across the configured upstreams, in order, with health tracking. Recipients that an
 * upstream delivered or permanently rejected are settled; those that failed transiently or by
 * configuration move on to the next upstream. An upstream that keeps failing at the connection or
 * configuration level is skipped for a cool-down (doubling up to max_delay), then probed again.
 */
import type { RetryConfig, UpstreamConfig } from '../config/types.js';
import type { OutcomeClass } from '../spool/types.js';
import type { OutboundMessage, RecipientResult, Upstream } from '../upstreams/types.js';
import { addressMatches } from '../message/address-pattern.js';
import { classify, type Classification } from './classify.js';

export interface UpstreamHealth {
  name: string;
  type: string;
  consecutiveFailures: number;
  lastSuccessAt: number | null;
  lastErrorAt: number | null;
  lastError: string | null;
  lastErrorClass: OutcomeClass | null;
  coolDownUntil: number | null;
}

export interface RoutedOutcome extends Classification {
  upstream: string;
  providerMessageId?: string;
}

interface Entry {
  upstream: Upstream;
  config: UpstreamConfig;
  health: UpstreamHealth;
}

export class Router {
  private entries: Entry[];

  constructor(
    upstreams: Upstream[],
    configs: UpstreamConfig[],
    private retry: RetryConfig,
    private readonly now: () => number = Date.now,
  ) {
    this.entries = upstreams.map((upstream, i) => ({ upstream, config: configs[i]!, health: freshHealth(upstream) }));
  }

  get names(): string[] {
    return this.entries.map((e) => e.upstream.name);
  }

  health(): UpstreamHealth[] {
    return this.entries.map((e) => ({ ...e.health }));
  }

  /** Any upstream currently failing because of our own configuration. */
  configErrors(): UpstreamHealth[] {
    return this.health().filter((h) => h.lastErrorClass === 'config' && h.consecutiveFailures > 0);
  }

  /** Upstreams that may carry this sender's mail, in order, cooling-down ones last-resort only. */
  private candidates(sender: string): Entry[] {
    const matching = this.entries.filter((e) => addressMatches(e.config.matchFrom, sender));
    const now = this.now();
    const ready = matching.filter((e) => !e.health.coolDownUntil || e.health.coolDownUntil <= now);
    if (ready.length > 0 || matching.length === 0) return ready;
    // Everything is cooling down: probe the one that will recover first rather than stall.
    return [matching.reduce((a, b) => ((a.health.coolDownUntil ?? 0) <= (b.health.coolDownUntil ?? 0) ? a : b))];
  }

  async deliver(message: OutboundMessage): Promise<Map<string, RoutedOutcome>> {
    const outcomes = new Map<string, RoutedOutcome>();
    const candidates = this.candidates(message.sender);
    if (candidates.length === 0) {
      for (const recipient of message.recipients) {
        outcomes.set(recipient, { outcome: 'config', status: '4.7.0', reply: `no [[upstream]] accepts sender <${message.sender}> (match_from)`, upstream: '-' });
      }
      return outcomes;
    }
    let remaining = message.recipients;
    for (const entry of candidates) {
      if (remaining.length === 0) break;
      let results: RecipientResult[];
      try {
        results = await entry.upstream.send({ ...message, recipients: remaining });
      } catch (error) {
        // An upstream must not throw; if one does, treat it as a transient failure, never a loss.
        results = remaining.map((recipient) => ({ recipient, result: { kind: 'network', errorCode: 'EUPSTREAM', message: (error as Error).message } }));
      }
      const next: string[] = [];
      for (const { recipient, result } of results) {
        const classification = classify(result);
        outcomes.set(recipient, {
          ...classification,
          upstream: entry.upstream.name,
          providerMessageId: result.kind === 'accepted' ? result.providerMessageId : undefined,
        });
        // A message this upstream cannot express may still go through a raw-MIME upstream.
        if (classification.outcome === 'transient' || classification.outcome === 'config' || result.kind === 'unsupported') next.push(recipient);
      }
      this.recordHealth(entry, results.map((r) => outcomes.get(r.recipient)!));
      remaining = next;
    }
    return outcomes;
  }

  private recordHealth(entry: Entry, outcomes: Classification[]): void {
    const health = entry.health;
    const now = this.now();
    if (outcomes.some((o) => o.outcome === 'delivered' || o.outcome === 'permanent')) {
      health.consecutiveFailures = 0;
      health.lastSuccessAt = now;
      health.coolDownUntil = null;
      health.lastErrorClass = null;
      return;
    }
    const failure = outcomes.find((o) => o.outcome === 'config') ?? outcomes[0];
    if (!failure) return;
    health.consecutiveFailures++;
    health.lastErrorAt = now;
    health.lastError = failure.reply;
    health.lastErrorClass = failure.outcome;
    const coolDown = Math.min(this.retry.maxDelay, this.retry.initialDelay * 2 ** Math.min(health.consecutiveFailures - 1, 20));
    health.coolDownUntil = now + coolDown;
  }

  /** After a reload or `queue retry`: forget failures so every upstream is tried again. */
  resetHealth(): void {
    for (const entry of this.entries) entry.health = freshHealth(entry.upstream);
  }

  async close(): Promise<void> {
    await Promise.all(this.entries.map((e) => e.upstream.close()));
  }
}

function freshHealth(upstream: Upstream): UpstreamHealth {
  return {
    name: upstream.name,
    type: upstream.type,
    consecutiveFailures: 0,
    lastSuccessAt: null,
    lastErrorAt: null,
    lastError: null,
    lastErrorClass: null,
    coolDownUntil: null,
  };
}
