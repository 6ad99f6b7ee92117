/**
 * A delivered message whose outcome cannot be recorded (issue 10: 123 sends of one message in one
 * second). The scheduler must retry the spool write, never the delivery, a bounded number of
 * times, and then hand the spool's fail-stop a SpoolError — one send in all.
 */
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { describe, it } from 'node:test';
import type { Router, RoutedOutcome } from '../../src/delivery/router.js';
import { Scheduler } from '../../src/delivery/scheduler.js';
import { SpoolError } from '../../src/errors.js';
import { createLogger } from '../../src/log.js';
import { Spool } from '../../src/spool/spool.js';
import { tempDir } from '../helpers/tmp.js';
import { checked } from './helpers.js';

describe('outcome that cannot be recorded', { timeout: 30_000 }, () => {
  it('is retried as a spool write (not a send) a bounded number of times, then fail-stops; one send in all', async (t) => {
    const dir = tempDir();
    const spool = Spool.open(`${dir.path}/spool`);
    const lines: Array<Record<string, unknown>> = [];
    const log = createLogger('info', new Writable({ write: (chunk, _enc, done) => (lines.push(JSON.parse(String(chunk)) as Record<string, unknown>), done()) }));
    let sends = 0;
    const router = {
      pausedUntil: () => undefined,
      health: () => [],
      deliver: async ({ recipients }: { recipients: string[] }) => {
        sends++;
        return new Map<string, RoutedOutcome>(recipients.map((r) => [r, { outcome: 'delivered', status: '2.0.0', reply: '250 ok', upstream: 'fast' }]));
      },
    } as unknown as Router;
    try {
      await spool.accept({ sender: 'a@example.org', recipients: ['b@example.net'] }, Buffer.from('Subject: x\r\n\r\nhi\r\n'), { origin: { protocol: 'smtp' } });
      // The disk refuses every write from now on (as ENOSPC with the reserve used up would).
      spool.update = async () => {
        throw new SpoolError('ESPOOLFULL', 'spool is full: injected');
      };
      const stopped = new Promise<SpoolError>((resolve) => (spool.failStop = resolve));
      const delays = [10, 20, 40];
      const scheduler = new Scheduler(
        spool,
        router,
        { retry: { initialDelay: 1000, maxDelay: 1000, maxAge: 3_600_000 }, hostname: 'h', bounceFrom: 'p@h', concurrency: 4, pollInterval: 5, outcomeRetryDelays: delays },
        log,
      );
      scheduler.start();
      const error = await stopped;
      await scheduler.stop(1000);
      assert.equal(error.code, 'ESPOOLSYNC');
      assert.match(error.message, /cannot record the outcome .* after 4 tries/);
      assert.equal(sends, 1, `sent once, not in a loop (${sends} sends)`);
      assert.equal(lines.filter((l) => l.event === 'outcome-not-recorded').length, delays.length);
      checked(t, `outcome write failing: 1 send, ${delays.length} retries of the spool write, then fail-stop ("${error.message}")`);
    } finally {
      await spool.close();
      dir.cleanup();
    }
  });
});
