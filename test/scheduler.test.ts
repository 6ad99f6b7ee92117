/**
 * The Scheduler on a real spool with a fake router and a fake clock (its `now` seam): delivery
 * slots, due order, old mail before new, the pause after a failed attempt, retries of an outcome
 * write, illegal state transitions, and the drain at shutdown. Waits are on events (attempts,
 * log lines, the loop's own ticks), never on fixed sleeps; the clock only moves when a test says.
 */
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { describe, it } from 'node:test';
import type { Router, RoutedOutcome } from '../src/delivery/router.js';
import { FAILURE_PAUSE_MS, Scheduler, type AttemptEvent } from '../src/delivery/scheduler.js';
import { SpoolError } from '../src/errors.js';
import { createLogger } from '../src/log.js';
import { Spool } from '../src/spool/spool.js';
import { tempDir } from './helpers/tmp.js';

const T0 = Date.UTC(2026, 10, 27, 12, 0, 0);
const BYTES = Buffer.from('Subject: x\r\n\r\nhi\r\n');

type Deliver = (id: string, recipients: string[]) => Promise<Map<string, RoutedOutcome>>;

const delivered = (recipients: string[]) => new Map<string, RoutedOutcome>(recipients.map((r) => [r, { outcome: 'delivered', status: '2.0.0', reply: '250 ok', upstream: 'up' }]));

/** A promise and its resolver: a delivery that returns when the test says so. */
function gate<T = void>(): { promise: Promise<T>; open: (value: T) => void } {
  let open!: (value: T) => void;
  const promise = new Promise<T>((resolve) => (open = resolve));
  return { promise, open };
}

async function withScheduler(options: { concurrency?: number; outcomeRetryDelays?: number[] }, deliver: Deliver, run: (h: Harness) => Promise<void>): Promise<void> {
  const dir = tempDir();
  const spool = Spool.open(`${dir.path}/spool`);
  const h = new Harness(spool, deliver, options);
  try {
    await run(h);
  } finally {
    await h.scheduler.stop(5000);
    await spool.close();
    dir.cleanup();
  }
}

class Harness {
  clock = T0;
  readonly started: string[] = [];
  readonly attempts: AttemptEvent[] = [];
  readonly lines: Array<Record<string, unknown>> = [];
  readonly scheduler: Scheduler;
  private ticks = 0;
  private waiters: Array<() => void> = [];

  constructor(
    readonly spool: Spool,
    deliver: Deliver,
    options: { concurrency?: number; outcomeRetryDelays?: number[] },
  ) {
    const router = {
      // Called once per turn of the loop: the test's way to wait for the loop without sleeping.
      pausedUntil: () => {
        this.ticks++;
        this.notify();
        return undefined;
      },
      health: () => [],
      deliver: async ({ id, recipients }: { id: string; recipients: string[] }) => {
        this.started.push(id);
        this.notify();
        return deliver(id, recipients);
      },
    } as unknown as Router;
    const log = createLogger('info', new Writable({ write: (chunk: Buffer, _enc, done) => (this.lines.push(JSON.parse(chunk.toString()) as Record<string, unknown>), this.notify(), done()) }));
    this.scheduler = new Scheduler(
      spool,
      router,
      {
        retry: { initialDelay: 60_000, maxDelay: 3_600_000, maxAge: 86_400_000 },
        hostname: 'relay.test',
        bounceFrom: 'MAILER-DAEMON@relay.test',
        concurrency: options.concurrency ?? 1,
        pollInterval: 2,
        outcomeRetryDelays: options.outcomeRetryDelays,
      },
      log,
      () => this.clock,
    );
    this.scheduler.on('attempt', (e: AttemptEvent) => (this.attempts.push(e), this.notify()));
  }

  accept(to: string, at: number): Promise<string> {
    return this.spool.accept({ sender: 'app@example.org', recipients: [to] }, BYTES, { origin: { protocol: 'esmtp' } }, at);
  }

  private notify(): void {
    for (const w of this.waiters.splice(0)) w();
  }

  /** Resolves once `test()` holds, re-checked whenever something happens. */
  async until(test: () => boolean): Promise<void> {
    while (!test()) await new Promise<void>((resolve) => this.waiters.push(resolve));
  }

  /** Lets the loop turn `n` more times (it polls every 2 ms of real time). */
  async turns(n: number): Promise<void> {
    const target = this.ticks + n;
    await this.until(() => this.ticks >= target);
  }
}

describe('Scheduler', { timeout: 30_000 }, () => {
  it('never runs more attempts at once than its slots, and fills a slot as soon as one frees', async () => {
    const gates = new Map<string, ReturnType<typeof gate<Map<string, RoutedOutcome>>>>();
    await withScheduler(
      { concurrency: 2 },
      (id) => {
        const g = gate<Map<string, RoutedOutcome>>();
        gates.set(id, g);
        return g.promise;
      },
      async (h) => {
        for (let i = 0; i < 5; i++) await h.accept(`r${i}@example.net`, T0 - 1000 + i);
        h.scheduler.start();
        await h.until(() => h.started.length === 2);
        await h.turns(10);
        assert.equal(h.started.length, 2, 'two slots: a third waits');
        assert.equal(h.scheduler.inFlightCount, 2);
        const first = h.started[0]!;
        gates.get(first)!.open(delivered([h.spool.get(first)!.recipients[0]!.address]));
        await h.until(() => h.started.length === 3);
        for (const id of h.started.slice(1)) gates.get(id)!.open(delivered([h.spool.get(id)!.recipients[0]!.address]));
        await h.until(() => h.started.length === 5);
        for (const id of h.started.slice(3)) gates.get(id)!.open(delivered([h.spool.get(id)!.recipients[0]!.address]));
        await h.until(() => h.attempts.length === 5);
        assert.equal(h.spool.counts().messages, 0);
      },
    );
  });

  it('starts due mail oldest due first, new mail after older mail, and future mail only when its time comes', async () => {
    await withScheduler(
      { concurrency: 1 },
      async (_id, recipients) => delivered(recipients),
      async (h) => {
        const later = await h.accept('later@example.net', T0 + 60_000);
        const b = await h.accept('b@example.net', T0 - 2000);
        const a = await h.accept('a@example.net', T0 - 3000);
        const c = await h.accept('c@example.net', T0 - 1000);
        h.scheduler.start();
        await h.until(() => h.started.length === 1);
        // New mail arriving while the backlog drains is due now: after every older due message.
        const fresh = await h.accept('fresh@example.net', h.clock);
        await h.until(() => h.attempts.length === 4);
        await h.turns(10);
        assert.deepEqual(h.started, [a, b, c, fresh]);
        h.clock = T0 + 60_000;
        await h.until(() => h.attempts.length === 5);
        assert.equal(h.started[4], later);
      },
    );
  });

  it('a transient outcome is retried at the time it set, not before', async () => {
    let calls = 0;
    await withScheduler(
      { concurrency: 1 },
      async (_id, recipients) =>
        ++calls === 1 ? new Map(recipients.map((r) => [r, { outcome: 'transient', status: '4.2.1', reply: '450 4.2.1 busy', upstream: 'up', retryAfterMs: 120_000 }])) : delivered(recipients),
      async (h) => {
        const id = await h.accept('busy@example.net', T0);
        h.scheduler.start();
        await h.until(() => h.attempts.length === 1);
        const next = h.spool.get(id)!.nextAttemptAt!;
        assert.ok(next >= T0 + 120_000, 'the upstream asked for two minutes (Retry-After)');
        h.clock = next - 1;
        await h.turns(10);
        assert.equal(h.started.length, 1);
        h.clock = next;
        await h.until(() => h.attempts.length === 2);
        assert.equal(h.spool.get(id), undefined, 'delivered the second time');
      },
    );
  });

  it('after an attempt that fails unexpectedly the message is left alone for FAILURE_PAUSE_MS, then tried again', async () => {
    let calls = 0;
    await withScheduler(
      { concurrency: 1 },
      async (_id, recipients) => {
        if (++calls === 1) throw new Error('router bug');
        return delivered(recipients);
      },
      async (h) => {
        const id = await h.accept('a@example.net', T0);
        h.scheduler.start();
        await h.until(() => h.lines.some((l) => l.event === 'delivery-error'));
        const line = h.lines.find((l) => l.event === 'delivery-error')!;
        assert.equal(line.level, 50, 'error level');
        assert.equal(line.queueId, id);
        h.clock += FAILURE_PAUSE_MS - 1;
        await h.turns(10);
        assert.equal(h.started.length, 1, 'not tried again during the pause');
        assert.ok(h.spool.get(id), 'still queued');
        h.clock += 1;
        await h.until(() => h.attempts.length === 1);
        assert.equal(h.started.length, 2);
        assert.equal(h.spool.get(id), undefined);
      },
    );
  });

  it('an outcome the spool cannot record yet is written again after the configured delays; the mail is sent once', async () => {
    await withScheduler(
      { concurrency: 1, outcomeRetryDelays: [1, 1, 1] },
      async (_id, recipients) => delivered(recipients),
      async (h) => {
        const id = await h.accept('a@example.net', T0);
        const update = h.spool.update.bind(h.spool);
        let failures = 0;
        h.spool.update = async (...args: Parameters<Spool['update']>) => {
          if (failures++ < 2) throw new SpoolError('ESPOOLIO', 'injected write failure');
          return update(...args);
        };
        h.scheduler.start();
        await h.until(() => h.attempts.length === 1);
        assert.equal(h.started.length, 1, 'sent once');
        assert.equal(h.lines.filter((l) => l.event === 'outcome-not-recorded').length, 2);
        assert.equal(h.spool.get(id), undefined, 'the third write recorded the delivery');
      },
    );
  });

  it('delivering a held message is an illegal transition: logged at error level, nothing sent, the message stays held', async () => {
    await withScheduler(
      { concurrency: 1 },
      async (_id, recipients) => delivered(recipients),
      async (h) => {
        const id = await h.accept('a@example.net', T0);
        assert.equal(await h.spool.hold(id), 'done');
        // A due index that (wrongly) still offers the held message.
        h.spool.dueIds = (_now, _limit, skip) => (skip?.has(id) ? [] : [id]);
        h.scheduler.start();
        await h.until(() => h.lines.some((l) => l.event === 'illegal-state'));
        await h.turns(10);
        const illegal = h.lines.filter((l) => l.event === 'illegal-state');
        assert.equal(illegal.length, 1, 'paused after the failure, not retried in a loop');
        assert.equal(illegal[0]!.level, 50);
        assert.equal((illegal[0]!.err as { code?: string }).code, 'EILLEGALSTATE');
        assert.equal(h.started.length, 0, 'the router never saw it');
        assert.equal(h.spool.get(id)!.held, true);
      },
    );
  });

  it('stop() waits (bounded) for attempts in flight, records their outcome, and starts nothing new', async () => {
    const g = gate<Map<string, RoutedOutcome>>();
    await withScheduler(
      { concurrency: 2 },
      () => g.promise,
      async (h) => {
        const id = await h.accept('a@example.net', T0);
        h.scheduler.start();
        await h.until(() => h.started.length === 1);
        assert.equal(await h.scheduler.stop(1), 1, 'the grace ran out with the attempt still running');
        const stopping = h.scheduler.stop(10_000);
        await h.accept('b@example.net', T0); // after stop: not started
        g.open(delivered(['a@example.net']));
        assert.equal(await stopping, 0, 'drained');
        assert.equal(h.attempts.length, 1);
        assert.equal(h.spool.get(id), undefined, 'its outcome was recorded');
        assert.equal(h.started.length, 1, 'nothing new started after stop');
      },
    );
  });
});
