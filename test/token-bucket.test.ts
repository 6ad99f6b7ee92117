/** The one token bucket (src/token-bucket.ts) and the per-IP table the SMTP listener keeps of it. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { RateLimiter } from '../src/intake/limits.js';
import { TokenBucket } from '../src/token-bucket.js';

describe('TokenBucket', () => {
  it('starts full: a burst of `count`, then nothing until it refills', () => {
    const bucket = new TokenBucket({ count: 3, perMs: 3000 }, 0);
    assert.deepEqual(
      [1, 2, 3, 4].map(() => bucket.take(0)),
      [true, true, true, false],
    );
    assert.equal(bucket.waitMs(0), 1000);
  });

  it('refills continuously, one token per perMs/count', () => {
    const bucket = new TokenBucket({ count: 2, perMs: 1000 }, 0);
    bucket.take(0);
    bucket.take(0);
    assert.equal(bucket.take(250), false);
    assert.equal(bucket.waitMs(250), 250);
    assert.equal(bucket.take(500), true);
    assert.equal(bucket.take(500), false);
  });

  it('never holds more than `count`, however long it was idle', () => {
    const bucket = new TokenBucket({ count: 2, perMs: 1000 }, 0);
    assert.equal(bucket.isFull(0), true);
    const taken = [1, 2, 3].map(() => bucket.take(3_600_000));
    assert.deepEqual(taken, [true, true, false]);
    assert.equal(bucket.isFull(3_600_000), false);
    assert.equal(bucket.isFull(3_601_000), true);
  });

  it('a clock that steps back neither adds nor removes tokens', () => {
    const bucket = new TokenBucket({ count: 1, perMs: 1000 }, 10_000);
    assert.equal(bucket.take(10_000), true);
    assert.equal(bucket.take(5_000), false);
    assert.equal(bucket.waitMs(5_000), 1000, 'measured from the latest time seen');
    assert.equal(bucket.take(11_000), true);
  });
});

describe('RateLimiter (per client IP)', () => {
  it('keeps one bucket per IP', () => {
    const limiter = new RateLimiter({ count: 1, perMs: 60_000 });
    assert.equal(limiter.take('192.0.2.1', 0), true);
    assert.equal(limiter.take('192.0.2.1', 1), false);
    assert.equal(limiter.take('192.0.2.2', 1), true, 'another IP has its own bucket');
    assert.equal(limiter.take('192.0.2.1', 60_000), true);
  });

  it('forgets only full buckets when the table is large, so a busy IP keeps its limit', () => {
    const limiter = new RateLimiter({ count: 1, perMs: 1000 });
    assert.equal(limiter.take('busy', 0), true);
    for (let i = 0; i < 10_000; i++) limiter.take(`10.0.${i >> 8}.${i & 255}`, 0);
    // The table is pruned here (10,000 entries): every bucket was used at 0 and is empty, none is forgotten.
    assert.equal(limiter.take('another', 10), true);
    assert.equal(limiter.take('busy', 10), false);
  });
});
