/** The shared HTTP client pieces: Retry-After parsing, failures as results, the limiter. */
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { describe, it } from 'node:test';
import { HttpFailure, httpRequest, parseReset, parseRetryAfter } from '../src/upstreams/rest/http.js';
import { Limiter } from '../src/upstreams/rest/limiter.js';

describe('Retry-After and reset headers', () => {
  const now = Date.parse('2026-11-23T03:00:00Z');
  it('reads delay-seconds and HTTP dates, ignores garbage', () => {
    assert.equal(parseRetryAfter('120', now), 120_000);
    assert.equal(parseRetryAfter('Mon, 23 Nov 2026 03:01:30 GMT', now), 90_000);
    assert.equal(parseRetryAfter('Mon, 23 Nov 2026 02:00:00 GMT', now), 0);
    assert.equal(parseRetryAfter('soon', now), undefined);
    assert.equal(parseRetryAfter(null, now), undefined);
  });
  it('reads reset headers as a delta or a Unix epoch', () => {
    assert.equal(parseReset('7', 'delta', now), 7000);
    assert.equal(parseReset(String(now / 1000 + 30), 'epoch', now), 30_000);
    assert.equal(parseReset('x', 'epoch', now), undefined);
  });
});

describe('httpRequest failures', () => {
  it('reports a refused connection as a network result', async () => {
    const server = createServer();
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as { port: number }).port;
    await new Promise<void>((r) => server.close(() => r()));
    const error = await httpRequest({ method: 'POST', url: `http://127.0.0.1:${port}/`, headers: {}, body: '' }, 2000).catch((e: unknown) => e);
    assert.ok(error instanceof HttpFailure);
    assert.deepEqual([error.result.kind, error.result.kind === 'network' && error.result.errorCode], ['network', 'ECONNREFUSED']);
  });

  it('reports a server that never answers as ETIMEDOUT', async () => {
    const server = createServer(() => {});
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as { port: number }).port;
    const error = await httpRequest({ method: 'POST', url: `http://127.0.0.1:${port}/`, headers: {}, body: 'x' }, 200).catch((e: unknown) => e);
    server.closeAllConnections();
    server.close();
    assert.ok(error instanceof HttpFailure);
    assert.equal(error.result.kind === 'network' && error.result.errorCode, 'ETIMEDOUT');
  });
});

describe('Limiter', () => {
  it('never runs more than max_concurrency tasks at once, and runs them all', async () => {
    const limiter = new Limiter(2);
    let active = 0;
    let peak = 0;
    const release: Array<() => void> = [];
    const tasks = Array.from({ length: 5 }, (_, i) =>
      limiter.run(async () => {
        active++;
        peak = Math.max(peak, active);
        await new Promise<void>((r) => release.push(r));
        active--;
        return i;
      }),
    );
    let released = 0;
    while (released < 5) {
      await new Promise((r) => setImmediate(r));
      const batch = release.splice(0);
      released += batch.length;
      batch.forEach((r) => r());
    }
    assert.deepEqual(await Promise.all(tasks), [0, 1, 2, 3, 4]);
    assert.equal(peak, 2);
  });

  it('holds requests beyond rate_limit until the bucket refills', async () => {
    let clock = 0;
    const limiter = new Limiter(10, { count: 2, perMs: 1000 }, () => clock);
    const done: number[] = [];
    const tasks = [0, 1, 2].map((i) => limiter.run(async () => void done.push(i)));
    for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
    assert.deepEqual(done, [0, 1], 'the third waits for a token');
    clock = 1000;
    await Promise.all(tasks);
    assert.deepEqual(done, [0, 1, 2]);
  });
});
