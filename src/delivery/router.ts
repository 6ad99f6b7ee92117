/**
 * Failover across the configured upstreams, in order, with health tracking. Recipients that an
 * upstream delivered or permanently rejected are settled; those that failed transiently or by
 * configuration move on to the next upstream. An upstream that keeps failing at the connection or
 * configuration level is skipped for a cool-down (doubling up to max_delay), then probed again.
 */
import type { RetryConfig, UpstreamConfig } from '../config/types.js';
import type { OutcomeClass } from '../spool/types.js';
import type { AttemptResult, OutboundMessage, RecipientResult, Upstream } from '../upstreams/types.js';
import { addressMatches } from '../message/address-pattern.js';
import { bufferBody } from '../message/body.js';
import { fitForWire, type WireResult } from '../message/wire.js';
import { classify, RELAY_DENIED, type Classification } from './classify.js';
import { plainTextNotice } from './dsn.js';

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
  /** The upstream could not express the message (not a delivery failure as such). */
  unsupported?: boolean;
  /** The upstream took the sender's NOTIFY request on (it offers DSN): we send no success notice. */
  dsnPassedOn?: boolean;
  /** Earlier upstreams tried for this recipient in this attempt (failover), in order. */
  previous?: Array<{ upstream: string; outcome: OutcomeClass; reply: string }>;
}

interface Entry {
  upstream: Upstream;
  config: UpstreamConfig;
  health: UpstreamHealth;
  /** Consecutive failures of the upstream as a whole (drives the cool-down). */
  downCount: number;
}

const MAX_PROBE_INTERVAL = 5 * 60_000;
const PAUSE_AFTER_FAILURES = 3;

/** A refusal that speaks about this message only (an unverified sender): the upstream itself is fine. */
function isMessageRefusal(outcome: Classification): boolean {
  return outcome.outcome === 'config' && outcome.scope === 'message';
}

function isUpstreamFailure(result: AttemptResult, outcome: Classification): boolean {
  if (outcome.outcome === 'config') return !isMessageRefusal(outcome);
  if (outcome.outcome !== 'transient') return false;
  switch (result.kind) {
    case 'network':
    case 'tls':
      return true;
    case 'smtp':
      // A reply to MAIL or DATA comes from a live server about this message (throttling, policy);
      // only a refusal at connect (421 greeting) or AUTH speaks for the upstream as a whole.
      return result.stage === 'connect' || result.stage === 'auth';
    case 'http':
      return result.status === 429 || result.status >= 500;
    default:
      return false;
  }
}

export class Router {
  private entries: Entry[];

  constructor(
    upstreams: Upstream[],
    configs: UpstreamConfig[],
    private retry: RetryConfig,
    private readonly now: () => number = Date.now,
  ) {
    this.entries = upstreams.map((upstream, i) => ({ upstream, config: configs[i]!, health: freshHealth(upstream), downCount: 0 }));
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
    // A null-sender message (a bounce) is routed as the address it goes out from where <> cannot.
    const routeAs = message.sender === '' && message.bounceFrom ? message.bounceFrom : message.sender;
    const candidates = this.candidates(routeAs);
    if (candidates.length === 0) {
      for (const recipient of message.recipients) {
        outcomes.set(recipient, { outcome: 'config', status: '4.7.0', reply: `no [[upstream]] accepts sender <${routeAs}> (match_from)`, upstream: '-' });
      }
      return outcomes;
    }
    let remaining = message.recipients;
    for (const entry of candidates) {
      if (remaining.length === 0) break;
      const results = await this.sendVia(entry.upstream, message, remaining);
      const next: string[] = [];
      for (const { recipient, result } of results) {
        const classification = withSetupHint(classify(result), result, entry.config);
        const earlier = outcomes.get(recipient);
        const previous = earlier ? [...(earlier.previous ?? []), { upstream: earlier.upstream, outcome: earlier.outcome, reply: earlier.reply }] : undefined;
        outcomes.set(recipient, {
          ...classification,
          previous,
          upstream: entry.upstream.name,
          providerMessageId: result.kind === 'accepted' ? result.providerMessageId : undefined,
          dsnPassedOn: (result.kind === 'accepted' && result.dsnPassedOn) || undefined,
          unsupported: (result.kind === 'unsupported' && !result.final) || undefined,
        });
        // A message this upstream cannot express may still go through a raw-MIME upstream (unless it says bounce now).
        if (classification.outcome === 'transient' || classification.outcome === 'config' || (result.kind === 'unsupported' && !result.final)) next.push(recipient);
      }
      this.recordHealth(
        entry,
        results.map((r) => ({ result: r.result, outcome: outcomes.get(r.recipient)! })),
      );
      remaining = next;
    }
    this.waitForSkipped(routeAs, candidates, outcomes);
    return outcomes;
  }

  /**
   * One upstream's attempt. A null-sender message goes out from <> where the upstream can send
   * that (SMTP), else from bounce_from (REST APIs need a verified sender). A notice we generated
   * that the upstream cannot express (a JSON API has no field for message/delivery-status) is sent
   * again through the same upstream as the plain-text version of the same notice.
   */
  private async sendVia(upstream: Upstream, message: OutboundMessage, recipients: string[]): Promise<RecipientResult[]> {
    const sender = message.sender === '' && !upstream.acceptsNullSender && message.bounceFrom ? message.bounceFrom : message.sender;
    const results = await safeSend(upstream, { ...message, sender, recipients });
    const unsupported = message.isBounce ? results.filter((r) => r.result.kind === 'unsupported').map((r) => r.recipient) : [];
    const plain = unsupported.length > 0 ? plainTextNotice(await message.body.buffer()) : undefined;
    if (!plain) return results;
    const again = new Map((await safeSend(upstream, { ...message, sender, recipients: unsupported, body: bufferBody(plain) })).map((r) => [r.recipient, r]));
    return results.map((r) => again.get(r.recipient) ?? r);
  }

  /**
   * A recipient that every tried upstream found unexpressible is only bounced when no other
   * upstream could carry it: if a matching upstream was skipped for its cool-down, wait for it.
   */
  private waitForSkipped(sender: string, tried: Entry[], outcomes: Map<string, RoutedOutcome>): void {
    const skipped = this.entries.filter((e) => !tried.includes(e) && addressMatches(e.config.matchFrom, sender));
    if (skipped.length === 0) return;
    for (const [recipient, outcome] of outcomes) {
      if (outcome.unsupported) {
        outcomes.set(recipient, {
          ...outcome,
          outcome: 'transient',
          status: '4.3.0',
          reply: `${outcome.reply} — waiting for upstream ${skipped.map((e) => e.upstream.name).join(', ')} (cooling down)`,
        });
      }
    }
  }

  /**
   * Health, as `status` shows it, records the last attempt's failure whatever its cause. The
   * cool-down (skip this upstream, and pause delivery when all are down) is only for failures of
   * the upstream as a whole — no connection, TLS, a refusal at connect or AUTH, HTTP 429/5xx, our
   * configuration — not for a reply about one message or mailbox (greylisting, throttling a
   * sender, an unverified sender), which the message's own backoff handles.
   */
  private recordHealth(entry: Entry, attempts: Array<{ result: AttemptResult; outcome: Classification }>): void {
    const health = entry.health;
    const now = this.now();
    // An upstream that refuses one message's sender has answered: it is healthy, and never paused for it.
    const failed = attempts.filter(({ outcome }) => outcome.outcome === 'transient' || (outcome.outcome === 'config' && !isMessageRefusal(outcome)));
    if (failed.length < attempts.length || attempts.length === 0) {
      health.consecutiveFailures = 0;
      health.lastSuccessAt = now;
      health.coolDownUntil = null;
      health.lastErrorClass = null;
      entry.downCount = 0;
      return;
    }
    const failure = (failed.find((a) => a.outcome.outcome === 'config') ?? failed[0]!).outcome;
    health.consecutiveFailures++;
    health.lastErrorAt = now;
    health.lastError = failure.reply;
    health.lastErrorClass = failure.outcome;
    if (!attempts.some(({ result, outcome }) => isUpstreamFailure(result, outcome))) return;
    entry.downCount++;
    // Probe a failed upstream at least every MAX_PROBE_INTERVAL, however long max_delay is.
    const coolDown = Math.min(this.retry.maxDelay, MAX_PROBE_INTERVAL, this.retry.initialDelay * 2 ** Math.min(entry.downCount - 1, 20));
    // A provider that said when to come back (Retry-After, rate-limit reset) is left alone until
    // then; when it said so for a rate limit, exactly until then, not for our own longer backoff.
    const askedFor = Math.max(0, ...attempts.map((a) => a.outcome.retryAfterMs ?? 0));
    const rateLimitedOnly = failed.every(({ result }) => result.kind === 'http' && result.status === 429 && result.retryAfterMs !== undefined);
    health.coolDownUntil = now + (rateLimitedOnly && askedFor > 0 ? askedFor : Math.max(coolDown, askedFor));
  }

  /**
   * When every upstream is cooling down, the time the first one may be probed again: the
   * scheduler waits until then instead of failing each new message against a dead upstream.
   */
  pausedUntil(): number | undefined {
    const now = this.now();
    let earliest = Infinity;
    for (const entry of this.entries) {
      const until = entry.health.coolDownUntil;
      // One failed attempt among many successes is noise; pause only for an upstream that keeps failing.
      if (!until || until <= now || entry.downCount < PAUSE_AFTER_FAILURES) return undefined;
      earliest = Math.min(earliest, until);
    }
    return Number.isFinite(earliest) ? earliest : undefined;
  }

  /** After a reload or `queue retry`: forget failures so every upstream is tried again. */
  resetHealth(): void {
    for (const entry of this.entries) {
      entry.health = freshHealth(entry.upstream);
      entry.downCount = 0;
    }
  }

  async close(): Promise<void> {
    await Promise.all(this.entries.map((e) => e.upstream.close()));
  }
}

/**
 * A relay or authentication refusal from an SMTP upstream we send to without a `username` says
 * what is missing, in the log line, `status` and `queue show` alike.
 */
function withSetupHint(c: Classification, result: AttemptResult, config: UpstreamConfig): Classification {
  if (c.outcome !== 'config' || config.type !== 'smtp' || config.username !== undefined || result.kind !== 'smtp') return c;
  if (!RELAY_DENIED.test(result.text) && ![530, 534, 535, 538].includes(result.code)) return c;
  return { ...c, reply: `${c.reply} (no username is configured for upstream ${config.name}: set username and password)` };
}

/**
 * Sends through one upstream, the message fitted to what it can carry (message/wire.ts) from the
 * stored bytes. A body known to be wire-clean (7-bit, legal lines: no fitting can change it) goes
 * as it is, unread, so a spooled body file is streamed by the upstream. For 'if-offered' (SMTP:
 * 8BITMIME is known per session) the session asks for the form it can carry once it has seen the
 * server's EHLO; each form is fitted once, on demand, so a message costs one MIME pass whichever
 * it is (a form that is unsupported comes back as the result).
 */
async function safeSend(upstream: Upstream, message: OutboundMessage): Promise<RecipientResult[]> {
  try {
    const wire = upstream.wire;
    if (!wire || message.body.wireClean) return await upstream.send(message);
    if (wire.eightBit === 'if-offered') {
      const forms = new Map<boolean, Promise<WireResult>>();
      const fit = async (eightBit: boolean) => fitForWire(await message.body.buffer(), { eightBit });
      const fitFor = (eightBit: boolean) => forms.get(eightBit) ?? forms.set(eightBit, fit(eightBit)).get(eightBit)!;
      return await upstream.send({ ...message, fitFor });
    }
    const fitted = await fitForWire(await message.body.buffer(), { eightBit: wire.eightBit });
    if ('unsupported' in fitted) return message.recipients.map((recipient) => ({ recipient, result: { kind: 'unsupported', text: fitted.unsupported } }));
    return await upstream.send({ ...message, body: bufferBody(fitted.raw) });
  } catch (error) {
    // An upstream must not throw; if one does, treat it as a transient failure, never a loss.
    return message.recipients.map((recipient) => ({ recipient, result: { kind: 'network', errorCode: 'EUPSTREAM', message: (error as Error).message } }));
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
