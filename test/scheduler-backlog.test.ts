/**
 * The provider comes back after an outage with a backlog queued (issue 18): the scheduler works
 * through it oldest due first, never more than `concurrency` at once, and mail arriving meanwhile
 * does not overtake (starve) the backlog.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Router, RoutedOutcome } from '../src/delivery/router.js';
import { Scheduler } from '../src/delivery/scheduler.js';
import { createLogger } from '../src/log.js';
import { Spool } from '../src/spool/spool.js';
import { tempDir } from './helpers/tmp.js';

describe('draining a backlog', { timeout: 60_000 }, () => {
  it('oldest due first, within the concurrency limit, and new mail waits its turn', async () => {
    const dir = tempDir();
    const spool = Spool.open(`${dir.path}/spool`);
    const bytes = Buffer.from('Subject: x\r\n\r\nhi\r\n');
    const BACKLOG = 300;
    const CONCURRENCY = 4;
    const now = Date.now();
    const dueAt = new Map<string, number>();
    // Due times spread over the last hour, accepted in an order unrelated to them.
    const accepts = [];
    for (let i = 0; i < BACKLOG; i++) {
      const at = now - 3_600_000 + ((i * 7919) % BACKLOG) * 10_000;
      accepts.push(spool.accept({ sender: 'app@example.org', recipients: [`r${i}@example.net`] }, bytes, { origin: { protocol: 'esmtp' } }, at).then((id) => dueAt.set(id, at)));
    }
    await Promise.all(accepts);
    const started: string[] = [];
    const fresh = new Set<string>();
    let active = 0;
    let peak = 0;
    let total = BACKLOG;
    let finished = 0;
    let allDone: () => void;
    const done = new Promise<void>((resolve) => (allDone = resolve));
    const router = {
      pausedUntil: () => undefined,
      health: () => [],
      deliver: async ({ id, recipients }: { id: string; recipients: string[] }) => {
        started.push(id);
        active++;
        peak = Math.max(peak, active);
        // New mail keeps arriving while the backlog drains.
        if (started.length <= 50) {
          total++;
          void spool.accept({ sender: 'app@example.org', recipients: ['new@example.net'] }, bytes, { origin: { protocol: 'esmtp' } }).then((newId) => fresh.add(newId));
        }
        await new Promise((resolve) => setTimeout(resolve, 1));
        active--;
        return new Map<string, RoutedOutcome>(recipients.map((r) => [r, { outcome: 'delivered', status: '2.0.0', reply: '250 ok', upstream: 'back' }]));
      },
    } as unknown as Router;
    const scheduler = new Scheduler(
      spool,
      router,
      { retry: { initialDelay: 60_000, maxDelay: 60_000, maxAge: 86_400_000 }, hostname: 'h', bounceFrom: 'p@h', concurrency: CONCURRENCY, pollInterval: 5 },
      createLogger('silent'),
    );
    scheduler.on('attempt', () => {
      if (++finished === total) allDone();
    });
    try {
      scheduler.start();
      await done;
      await scheduler.stop(5000);
      assert.ok(peak <= CONCURRENCY, `at most ${CONCURRENCY} deliveries at once (saw ${peak})`);
      assert.equal(started.length, total, 'each message delivered once');
      const backlog = started.filter((id) => dueAt.has(id));
      assert.deepEqual(
        backlog.map((id) => dueAt.get(id)),
        [...backlog.map((id) => dueAt.get(id)!)].sort((a, b) => a - b),
        'backlog started oldest due first',
      );
      const firstNew = started.findIndex((id) => fresh.has(id));
      assert.ok(firstNew >= BACKLOG, `new mail started only after the whole backlog (first at position ${firstNew})`);
      assert.equal(spool.counts().messages, 0);
    } finally {
      await spool.close();
      dir.cleanup();
    }
  });
});
