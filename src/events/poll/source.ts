/**
 * What one provider's pull API module supplies to the Poller (poller.ts): how far back each round
 * re-reads for late events, and how to fetch the events of a time window. The Poller owns the
 * cursor, the dedupe of what it already handed on, the schedule and the error handling.
 */
import type { RestUpstreamConfig } from '../../config/types.js';
import type { ProviderEvent } from '../types.js';

/** A message we handed to this upstream: what per-message lookups (Resend) ask about. */
export interface SentMessage {
  providerMessageId: string;
  recipients: string[];
}

/** The messages delivered through `upstream` (by name) since `sinceMs` (Unix ms). */
export type ListSent = (upstream: string, sinceMs: number) => Iterable<SentMessage>;

export interface PollWindow {
  /** Unix ms, inclusive (already widened by the source's overlap). */
  from: number;
  /** Unix ms, exclusive: the time the round started. */
  until: number;
}

export interface PollContext<C extends RestUpstreamConfig = RestUpstreamConfig> {
  upstream: C;
  window: PollWindow;
  /** GET an API URL; the parsed JSON of a 2xx answer, else throws PollFailure (fetch.ts). */
  getJson: (url: string, headers: Record<string, string>) => Promise<unknown>;
  /** Waits (between per-message lookups); rejects once the poller is stopped. */
  pause: (ms: number) => Promise<void>;
  listSent: ListSent;
}

export interface PollResult {
  events: ProviderEvent[];
  /**
   * The round stopped at its page bound before reaching the end of the window. `through` is the
   * time up to which every event was read (ascending APIs), so the next round resumes there; without
   * it the next round reads the same window again.
   */
  truncated?: { through?: number };
}

export interface PollSource<C extends RestUpstreamConfig = RestUpstreamConfig> {
  /** How far before the previous round's end each round starts again: events the provider records late. */
  overlapMs: number;
  fetch(context: PollContext<C>): Promise<PollResult>;
}
