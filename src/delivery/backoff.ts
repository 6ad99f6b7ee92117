/** Exponential backoff with jitter: initial_delay · 2^(n-1), ±20 %, capped at max_delay. */
import type { RetryConfig } from '../config/types.js';

export function backoffDelay(attempt: number, retry: Pick<RetryConfig, 'initialDelay' | 'maxDelay'>, random: () => number = Math.random): number {
  const exponent = Math.min(Math.max(attempt - 1, 0), 30);
  const base = Math.min(retry.maxDelay, retry.initialDelay * 2 ** exponent);
  // Jitter spreads retries of a burst that failed together, so they don't all return at once.
  const jittered = base * (0.8 + 0.4 * random());
  return Math.round(Math.min(retry.maxDelay, jittered));
}
