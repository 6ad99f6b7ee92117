/**
 * Per-upstream admission: at most `max_concurrency` requests in flight and, when `rate_limit` is
 * set, a token bucket of `count` requests per window (refilled continuously). Callers wait in
 * FIFO order; nothing is dropped.
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
      return await task();
    } finally {
      this.release();
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
