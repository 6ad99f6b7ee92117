/**
 * A token bucket: `count` tokens per `perMs`, refilled continuously, holding at most `count`
 * (so a quiet period allows a burst of `count`, never more). Used per client IP by the SMTP
 * listener's rate_limit (intake/limits.ts) and per upstream by the REST/OAuth rate_limit
 * (upstreams/rest/limiter.ts). Time is passed in, so callers and tests own the clock.
 */
import type { Rate } from './config/units.js';

export class TokenBucket {
  private tokens: number;
  /** When the bucket was last refilled (ms, the caller's clock). */
  private at: number;

  constructor(
    private readonly rate: Rate,
    now: number,
  ) {
    this.tokens = rate.count;
    this.at = now;
  }

  private refill(now: number): void {
    // A clock that goes backwards adds nothing (and takes nothing away).
    if (now > this.at) this.tokens = Math.min(this.rate.count, this.tokens + ((now - this.at) * this.rate.count) / this.rate.perMs);
    this.at = Math.max(this.at, now);
  }

  /** Takes one token when there is one; false (and nothing taken) when the bucket is empty. */
  take(now: number): boolean {
    this.refill(now);
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }

  /** Milliseconds until take() can succeed (0: now). */
  waitMs(now: number): number {
    this.refill(now);
    return this.tokens >= 1 ? 0 : Math.ceil(((1 - this.tokens) * this.rate.perMs) / this.rate.count);
  }

  /** Full again by `now` (an idle bucket, which a per-key table may forget: a new one starts full). */
  isFull(now: number): boolean {
    this.refill(now);
    return this.tokens >= this.rate.count;
  }
}
