/**
 * Per-upstream admission: at most `max_concurrency` requests in flight and, when `rate_limit` is
 * set, a token bucket of `count` requests per window (refilled continuously). Callers wait in
 * FIFO order; nothing is dropped. When the provider answers 429 with a reset time, `holdUntil`
 * stops every further request of this upstream until then (and no longer), so one rate-limited
 * answer does not turn into a burst of them for the messages behind it.
 */
export interface RateLimit {
  count: number;
  perMs: number;
}

export class Limiter {
  private active = 0;
  private readonly waiting: Array<() => void> = [];
  private tokens: number;
  private refilledAt: number;
  private rateChain: Promise<void> = Promise.resolve();
  private heldUntil = 0;

  constructor(
    private readonly maxConcurrency: number,
    private readonly rate?: RateLimit,
    private readonly now: () => number = Date.now,
  ) {
    this.tokens = rate?.count ?? 0;
    this.refilledAt = now();
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
    if (next) next(); // the slot passes straight to the next waiter
    else this.active--;
  }

  /** Waits for a rate token; serialised so waiters are served in order. */
  private token(): Promise<void> {
    const rate = this.rate;
    if (!rate) return Promise.resolve();
    const take = async () => {
      for (;;) {
        const now = this.now();
        this.tokens = Math.min(rate.count, this.tokens + ((now - this.refilledAt) * rate.count) / rate.perMs);
        this.refilledAt = now;
        if (this.tokens >= 1) {
          this.tokens -= 1;
          return;
        }
        const wait = Math.ceil(((1 - this.tokens) * rate.perMs) / rate.count);
        await new Promise((resolve) => setTimeout(resolve, wait));
      }
    };
    this.rateChain = this.rateChain.then(take);
    return this.rateChain;
  }
}
