/**
 * Per-upstream admission: at most `max_concurrency` requests in flight and, when `rate_limit` is
 * set, a token bucket of `count` requests per window (refilled continuously). Callers wait in
 * FIFO order; nothing is dropped. When the provider answers 429 with a reset time, `holdUntil`
 * stops every further request of this upstream until then (and no longer), so one rate-limited
 * answer does not turn into a burst of them for the messages behind it.
 */
import type { Rate } from '../../config/units.js';
import { TokenBucket } from '../../token-bucket.js';

export class Limiter {
  private active = 0;
  private readonly waiting: Array<() => void> = [];
  private readonly bucket: TokenBucket | undefined;
  private rateChain: Promise<void> = Promise.resolve();
  private heldUntil = 0;

  constructor(
    private readonly maxConcurrency: number,
    rate?: Rate,
    private readonly now: () => number = Date.now,
  ) {
    this.bucket = rate ? new TokenBucket(rate, now()) : undefined;
  }

  async run<T>(task: () => Promise<T>): Promise<T> {
    await this.slot();
    try {
      await this.token();
      await this.hold();
      return await task();
    } finally {
      this.release();
    }
  }

  /** The provider asked us to wait until `at` (epoch ms); later calls wait, an earlier hold is extended. */
  holdUntil(at: number): void {
    this.heldUntil = Math.max(this.heldUntil, at);
  }

  /** How much longer the provider asked us to wait (ms), 0 when not held. */
  heldFor(): number {
    return Math.max(0, this.heldUntil - this.now());
  }

  private async hold(): Promise<void> {
    for (let wait = this.heldUntil - this.now(); wait > 0; wait = this.heldUntil - this.now()) {
      await new Promise((resolve) => setTimeout(resolve, wait));
    }
  }

  private async slot(): Promise<void> {
    if (this.active < this.maxConcurrency) {
      this.active++;
      return;
    }
    await new Promise<void>((resolve) => this.waiting.push(resolve));
  }

  private release(): void {
    const next = this.waiting.shift();
    if (next)
      next(); // the slot passes straight to the next waiter
    else this.active--;
  }

  /** Waits for a rate token; serialised so waiters are served in order. */
  private token(): Promise<void> {
    const bucket = this.bucket;
    if (!bucket) return Promise.resolve();
    const take = async () => {
      while (!bucket.take(this.now())) await new Promise((resolve) => setTimeout(resolve, bucket.waitMs(this.now())));
    };
    this.rateChain = this.rateChain.then(take);
    return this.rateChain;
  }
}
