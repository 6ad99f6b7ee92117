/**
 * Streaming queue listings (issue 18): the listing is produced as the spool is read, filters and
 * limits apply on the way, and qshape's summary counts what a full scan counts.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { mailq } from '../src/cli/mailq.js';
import type { ClientConfig } from '../src/config/local.js';
import { SubmissionServer } from '../src/intake/submission.js';
import { createLogger } from '../src/log.js';
import { listFromDaemon } from '../src/sendmail/submit.js';
import { queueShape, type QueueEntry } from '../src/spool/listing.js';
import { Spool } from '../src/spool/spool.js';
import { messageState } from '../src/spool/states.js';
import { isFinal, type MessageRecord } from '../src/spool/types.js';
import { textSink } from './helpers/sink.js';
import { tempDir } from './helpers/tmp.js';

const TOTAL = 3000;
const HOUR = 3_600_000;
const NOW = Date.UTC(2026, 10, 27, 12, 0, 0);

/** Message i: sender domain by i % 3, recipient domain by i % 4, received i % 10 hours before NOW; every 7th held. */
async function fill(spool: Spool): Promise<void> {
  const bytes = Buffer.from('Subject: s\r\n\r\nbody\r\n');
  for (let start = 0; start < TOTAL; start += 500) {
    const batch = [];
    for (let i = start; i < Math.min(TOTAL, start + 500); i++) {
      const envelope = { sender: `app${i}@sender${i % 3}.example`, recipients: [`u${i}@rcpt${i % 4}.example`, `v${i}@sub.rcpt${i % 4}.example`] };
      batch.push(spool.accept(envelope, bytes, { origin: { protocol: 'esmtp' } }, NOW - (i % 10) * HOUR - (TOTAL - i)));
    }
    const ids = await Promise.all(batch);
    for (let k = 0; k < ids.length; k++) if ((start + k) % 7 === 0) await spool.hold(ids[k]!);
  }
}

describe('streaming queue listings', () => {
  const dir = tempDir();
  const spoolPath = join(dir.path, 'spool');
  let spool: Spool;
  let all: MessageRecord[];
  const config = {
    spoolPath,
    submission: { socket: join(dir.path, 'submit.sock'), maildrop: join(dir.path, 'maildrop') },
  } as unknown as ClientConfig;

  before(async () => {
    spool = Spool.open(spoolPath);
    await fill(spool);
    all = [...spool.list()];
  });
  after(async () => {
    await spool.close();
    dir.cleanup();
  });

  it('list() reads page by page, in arrival order, and a message removed meanwhile is not listed', async () => {
    assert.equal(all.length, TOTAL);
    const ids = all.map((r) => r.id);
    assert.deepEqual(ids, [...ids].sort());
    assert.deepEqual(
      all.map((r) => r.receivedAt),
      [...all.map((r) => r.receivedAt)].sort((a, b) => a - b),
    );
    const seen: string[] = [];
    const victim = all[20]!.id;
    for (const record of spool.list(7)) {
      seen.push(record.id);
      if (seen.length === 8) await spool.remove(victim); // the page holding it is read later
    }
    assert.equal(seen.length, TOTAL - 1);
    assert.ok(!seen.includes(victim));
    assert.equal(new Set(seen).size, seen.length);
    all = [...spool.list()];
  });

  it('the daemon streams: the first entry arrives before the spool has been read past its first pages', async () => {
    let pulled = 0;
    const counting = Object.create(spool) as Spool;
    counting.list = function* (pageSize?: number) {
      for (const record of spool.list(pageSize)) {
        pulled++;
        yield record;
      }
    };
    const limits = () => ({ maxConnections: 10, maxConnectionsPerUid: 10, requestTimeout: 60_000, streamThreshold: 1024 * 1024 });
    const server = new SubmissionServer(config.submission.socket, counting, { limits } as never, createLogger('silent'), join(dir.path, 'incoming'));
    await server.start();
    try {
      const stream = (await listFromDaemon(config, {}))!;
      assert.ok(stream, 'the daemon answers');
      const first = await stream.next();
      assert.equal((first.value as QueueEntry).id, all[0]!.id);
      // Before the change the daemon built the whole array (all of the queue read) before replying.
      assert.ok(pulled < all.length / 2, `read ${pulled} of ${all.length} records before the first entry was out`);
      let count = 1;
      for await (const entry of stream) {
        assert.equal(entry.id, all[count]!.id);
        count++;
      }
      assert.equal(count, all.length);
      // Filters are applied by the daemon: only the matching entries cross the socket.
      const held = [];
      for await (const entry of (await listFromDaemon(config, { state: 'held', limit: 5 }))!) held.push(entry.id);
      assert.deepEqual(
        held,
        all
          .filter((r) => r.held)
          .slice(0, 5)
          .map((r) => r.id),
      );
    } finally {
      await server.close();
    }
  });

  it('mailq with the daemon down reads the spool: --limit, --from, --to, --older-than, --state', async () => {
    const ids = async (filter: Parameters<typeof mailq>[2]) => {
      const out = textSink();
      assert.equal(await mailq(config, true, filter, out), 0);
      return (JSON.parse(out.text) as { queue: QueueEntry[] }).queue.map((e) => e.id);
    };
    const expect = (keep: (r: MessageRecord) => boolean, limit = Infinity) =>
      all
        .filter(keep)
        .slice(0, limit)
        .map((r) => r.id);
    assert.deepEqual(
      await ids({ limit: 3 }),
      expect(() => true, 3),
    );
    assert.deepEqual(await ids({ limit: 0 }), []);
    assert.deepEqual(
      await ids({ from: 'sender1.example' }),
      expect((r) => r.sender.endsWith('@sender1.example')),
    );
    assert.deepEqual(await ids({ from: all[5]!.sender.toUpperCase() }), [all[5]!.id]);
    // A domain matches its subdomains: rcpt2.example finds the v…@sub.rcpt2.example recipients too.
    assert.deepEqual(
      await ids({ to: '@sub.rcpt2.example' }),
      expect((r) => r.recipients.some((x) => x.address.endsWith('@sub.rcpt2.example'))),
    );
    assert.deepEqual(
      await ids({ to: 'rcpt2.example' }),
      expect((r) => r.recipients.some((x) => /@(sub\.)?rcpt2\.example$/.test(x.address))),
    );
    assert.deepEqual(
      await ids({ state: 'held' }),
      expect((r) => r.held),
    );
    assert.deepEqual(
      await ids({ state: 'pending' }),
      expect((r) => messageState(r) === 'pending'),
    );
    const olderThanMs = 5 * HOUR;
    const realNow = Date.now();
    assert.deepEqual(
      await ids({ olderThanMs, state: 'held', limit: 10 }),
      expect((r) => realNow - r.receivedAt >= olderThanMs && r.held, 10),
    );
    // The text layout: header, one block per message, the total line.
    const out = textSink();
    await mailq(config, false, { limit: 2 }, out);
    assert.match(out.text, /^-Queue ID- /);
    assert.match(out.text, /-- \d+ Kbytes in 2 Requests\.\n$/);
    const none = textSink();
    await mailq(config, false, { from: 'nobody.example' }, none);
    assert.equal(none.text, 'No message matches\n');
  });

  it('a reader that goes away (mailq | head) ends the listing quietly', async () => {
    let writes = 0;
    const out = new Writable({
      highWaterMark: 64,
      write(_chunk, _encoding, done) {
        if (++writes === 3) {
          done(Object.assign(new Error('write EPIPE'), { code: 'EPIPE' }));
          return;
        }
        done();
      },
    });
    assert.equal(await mailq(config, false, {}, out), 0);
    assert.ok(writes < 10, `stopped after ${writes} writes`);
  });

  it('queue summary counts what a full scan counts, per domain and age bucket', () => {
    const now = NOW + 60_000;
    const shape = queueShape(spool.list(), { buckets: 10, bucketMinutes: 5 }, now);
    assert.deepEqual(shape.bounds, [5, 10, 20, 40, 80, 160, 320, 640, 1280]);
    const expected = new Map<string, number[]>();
    let open = 0;
    for (const r of all) {
      const minutes = (now - r.receivedAt) / 60_000;
      let bucket = shape.bounds.findIndex((b) => minutes < b);
      if (bucket === -1) bucket = 9;
      for (const x of r.recipients.filter((x) => !isFinal(x))) {
        const domain = x.address.split('@')[1]!;
        const row = expected.get(domain) ?? new Array<number>(10).fill(0);
        row[bucket]!++;
        expected.set(domain, row);
        open++;
      }
    }
    assert.equal(shape.total.count, open);
    assert.equal(shape.domains.length, expected.size);
    for (const d of shape.domains) assert.deepEqual(d.buckets, expected.get(d.domain), d.domain);
    const bySender = queueShape(spool.list(), { bySender: true }, now);
    assert.equal(bySender.total.count, all.length, 'by sender, each message counts once');
  });
});
