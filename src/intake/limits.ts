/** Per-client-IP bookkeeping for a listener: concurrent connections, message rate, failed AUTH lockout. */
import type { Rate } from '../config/units.js';
import { TokenBucket } from '../token-bucket.js';

export class ConnectionCounter {
  private readonly counts = new Map<string, number>();

  /** Counts a new connection; false when the IP already has `max` open. */
  open(ip: string, max: number): boolean {
    const current = this.counts.get(ip) ?? 0;
    if (current >= max) return false;
    this.counts.set(ip, current + 1);
    return true;
  }

  close(ip: string): void {
    const current = this.counts.get(ip) ?? 0;
    if (current <= 1) this.counts.delete(ip);
    else this.counts.set(ip, current - 1);
  }
}

/** A token bucket per IP: `count` messages per window. */
export class RateLimiter {
  private readonly buckets = new Map<string, TokenBucket>();

  constructor(private readonly rate: Rate) {}

  take(ip: string, now = Date.now()): boolean {
    let bucket = this.buckets.get(ip);
    if (!bucket) {
      if (this.buckets.size >= 10_000) this.prune(now);
      bucket = new TokenBucket(this.rate, now);
      this.buckets.set(ip, bucket);
    }
    return bucket.take(now);
  }

  /** Forgets full buckets: a new one starts full, so nothing changes for those IPs. */
  private prune(now: number): void {
    for (const [ip, bucket] of this.buckets) if (bucket.isFull(now)) this.buckets.delete(ip);
  }
}

/** After `limit` failed AUTH attempts an IP is refused for `lockMs`. */
export class AuthLockout {
  private readonly failures = new Map<string, { count: number; until: number }>();

  constructor(
    private readonly limit = 5,
    private readonly lockMs = 15 * 60_000,
  ) {}

  isLocked(ip: string, now = Date.now()): boolean {
    const entry = this.failures.get(ip);
    if (!entry) return false;
    if (entry.count >= this.limit && entry.until > now) return true;
    if (entry.until <= now) this.failures.delete(ip);
    return false;
  }

  /** Records a failure; true when this one locks the IP. */
  fail(ip: string, now = Date.now()): boolean {
    const entry = this.failures.get(ip) ?? { count: 0, until: 0 };
    entry.count++;
    entry.until = now + this.lockMs;
    this.failures.set(ip, entry);
    return entry.count === this.limit;
  }

  succeed(ip: string): void {
    this.failures.delete(ip);
  }
}

/**
 * Per-session error limits for AUTH, after Postfix's smtpd_soft_error_limit (10),
 * smtpd_error_sleep_time (1s) and smtpd_hard_error_limit (20): once a session has had `soft`
 * failed or deferred AUTH attempts, each further answer waits `sleepMs`; at `hard` the session is
 * closed with 421. A guesser that is answered 454 (checks busy) or 535 can then send no more than
 * one attempt a second per session, instead of flooding the event loop that ordinary mail needs.
 */
export class SessionErrorLimit {
  private readonly errors = new Map<string, number>();

  constructor(
    readonly soft = 10,
    readonly hard = 20,
    readonly sleepMs = 1000,
  ) {}

  /** Counts one error of the session; what to do before answering it. */
  error(session: string): 'answer' | 'sleep' | 'close' {
    const count = (this.errors.get(session) ?? 0) + 1;
    this.errors.set(session, count);
    if (count >= this.hard) return 'close';
    return count > this.soft ? 'sleep' : 'answer';
  }

  forget(session: string): void {
    this.errors.delete(session);
  }
}
