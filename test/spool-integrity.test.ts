/**
 * Spool integrity, in process against a real LMDB spool: inserts never overwrite, idempotency
 * tokens queue one message and outlive it (bounded), stale due-index entries are never handed out,
 * and every mutation is all-or-nothing when something throws inside it.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Database } from 'lmdb';
import { giveUp } from '../src/delivery/giveup.js';
import { SpoolError } from '../src/errors.js';
import { newQueueId, newSubmitToken } from '../src/spool/ids.js';
import { Spool } from '../src/spool/spool.js';
import type { MessageRecord } from '../src/spool/types.js';
import { tempDir } from './helpers/tmp.js';

const envelope = { sender: 'a@example.org', recipients: ['b@example.net'] };
const meta = { origin: { protocol: 'esmtp' as const } };

/** The spool's private databases, to plant the damage an older version (or a bug) could leave. */
function internals(spool: Spool): { due: Database<null, [number, string]>; messages: Database<MessageRecord, string> } {
  return spool as unknown as { due: Database<null, [number, string]>; messages: Database<MessageRecord, string> };
}

async function withSpool(run: (spool: Spool) => Promise<void>, options: { tombstoneMs?: number } = {}): Promise<void> {
  const dir = tempDir();
  const spool = Spool.open(dir.path, options);
  try {
    await run(spool);
  } finally {
    await spool.close();
    dir.cleanup();
  }
}

describe('ids are the spool’s: inserts are conditional', () => {
  it('two simultaneous inserts with one id: one is stored, the other fails with EIDEXISTS and overwrites nothing', () =>
    withSpool(async (spool) => {
      const id = newQueueId();
      const [first, second] = await Promise.allSettled([
        spool.accept(envelope, Buffer.from('Subject: first\r\n\r\nA\r\n'), { ...meta, id }),
        spool.accept({ sender: 'mallory@example.org', recipients: ['x@example.net'] }, Buffer.from('Subject: second\r\n\r\nB\r\n'), { ...meta, id }),
      ]);
      assert.equal(first.status, 'fulfilled');
      assert.equal(second.status, 'rejected');
      assert.ok(second.reason instanceof SpoolError && second.reason.code === 'EIDEXISTS', String(second.reason));
      assert.equal(spool.get(id)?.sender, 'a@example.org', 'the first record is intact');
      assert.match(spool.body(id)!.toString(), /first/);
      assert.deepEqual(spool.dueIds(Date.now() + 1000, 10), [id], 'one due entry, no orphan');
    }));
});

describe('idempotency tokens', () => {
  it('the same (uid, token) submitted twice at once queues one message; both callers get its id', () =>
    withSpool(async (spool) => {
      const token = newSubmitToken();
      const bytes = Buffer.from('Subject: once\r\n\r\nonce\r\n');
      const results = await Promise.all([spool.acceptOnce(envelope, bytes, meta, { uid: 1000, token }), spool.acceptOnce(envelope, bytes, meta, { uid: 1000, token })]);
      assert.equal(results[0].id, results[1].id);
      assert.deepEqual(results.map((r) => r.duplicate).sort(), [false, true]);
      assert.equal([...spool.list()].length, 1);
      // Scoped to the uid: another user's submission with the same token is its own message.
      const other = await spool.acceptOnce(envelope, bytes, meta, { uid: 1001, token });
      assert.equal(other.duplicate, false);
      assert.notEqual(other.id, results[0].id);
      assert.equal([...spool.list()].length, 2);
    }));

  it('a token outlives its message as a tombstone (for tombstoneMs), then is pruned by ordinary writes', () =>
    withSpool(
      async (spool) => {
        const token = { uid: 1000, token: newSubmitToken() };
        const bytes = Buffer.from('Subject: t\r\n\r\nt\r\n');
        const first = await spool.acceptOnce(envelope, bytes, meta, token);
        await spool.update(first.id, (r) => ({ ...r, recipients: r.recipients.map((x) => ({ ...x, status: 'delivered' as const })) }));
        assert.equal(spool.get(first.id), undefined, 'delivered: gone from the queue');
        const tomb = spool.tokenFor(token);
        assert.equal(tomb?.id, first.id);
        assert.ok(tomb.expiresAt !== null && tomb.expiresAt > Date.now() + 50_000, 'kept for tombstoneMs');
        const again = await spool.acceptOnce(envelope, bytes, meta, token);
        assert.deepEqual(again, { id: first.id, duplicate: true }, 'a late duplicate is recognised, not queued');
        assert.equal([...spool.list()].length, 0);
        // Past its expiry the next write transaction prunes it.
        await spool.accept(envelope, bytes, meta, tomb.expiresAt + 1);
        assert.equal(spool.tokenFor(token), undefined);
      },
      { tombstoneMs: 60_000 },
    ));

  it('an expired tombstone whose prune was rolled back (the transaction threw) is pruned by the next write', () =>
    withSpool(
      async (spool) => {
        const token = { uid: 1000, token: newSubmitToken() };
        const bytes = Buffer.from('Subject: t\r\n\r\nt\r\n');
        const { id } = await spool.acceptOnce(envelope, bytes, meta, token);
        await spool.remove(id);
        const expiresAt = spool.tokenFor(token)!.expiresAt!;
        const other = await spool.accept(envelope, bytes, meta, expiresAt - 1); // not expired yet at this write
        // An insert under a taken id: its transaction prunes (the tombstone is expired at its `now`), then throws EIDEXISTS: all undone.
        await assert.rejects(spool.accept(envelope, bytes, { ...meta, id: other }, expiresAt + 1), { code: 'EIDEXISTS' });
        assert.ok(spool.tokenFor(token), 'the rolled-back prune left the tombstone');
        await spool.accept(envelope, bytes, meta, expiresAt + 1);
        assert.equal(spool.tokenFor(token), undefined, 'pruned by the next write');
      },
      { tombstoneMs: 60_000 },
    ));

  it('a deleted message leaves a tombstone too', () =>
    withSpool(async (spool) => {
      const token = { uid: 0, token: newSubmitToken() };
      const { id } = await spool.acceptOnce(envelope, Buffer.from('x\r\n'), meta, token);
      assert.equal((await spool.remove(id))?.id, id);
      assert.equal((await spool.acceptOnce(envelope, Buffer.from('x\r\n'), meta, token)).duplicate, true);
    }));
});

describe('the due index heals itself', () => {
  it('entries without a record, for a held record or with a stale time are never due, and are removed', () =>
    withSpool(async (spool) => {
      const { due } = internals(spool);
      const live = await spool.accept(envelope, Buffer.from('x\r\n'), meta, 1000);
      const held = await spool.accept(envelope, Buffer.from('x\r\n'), meta, 1000);
      await spool.hold(held);
      await due.put([1, 'ORPHAN0000000000'], null);
      await due.put([2, live], null); // stale time: the record says 1000
      await due.put([3, held], null); // held
      const healed = new Promise<number>((resolve) => spool.once('stale-due', resolve));
      assert.deepEqual(spool.dueIds(Date.now(), 10), [live]);
      assert.equal(await healed, 3);
      assert.deepEqual([...due.getKeys({})], [[1000, live]]);
      assert.equal(spool.nextDueAt(), 1000);
    }));
});

describe('every mutation is all-or-nothing', () => {
  /** A message with one deferred recipient, as the scheduler leaves it. */
  async function queued(spool: Spool): Promise<{ id: string; before: MessageRecord; body: Buffer }> {
    const id = await spool.accept({ sender: 'sender@example.org', recipients: ['r@example.net'] }, Buffer.from('Subject: keep me\r\n\r\nbody\r\n'), meta, 1000);
    return { id, before: spool.get(id)!, body: spool.body(id)! };
  }

  function assertIntact(spool: Spool, m: { id: string; before: MessageRecord; body: Buffer }): void {
    assert.deepEqual(spool.get(m.id), m.before, 'record unchanged');
    assert.deepEqual(spool.body(m.id), m.body, 'body kept');
    assert.deepEqual(spool.dueIds(Date.now(), 10), [m.id], 'still due');
    assert.equal([...spool.list()].length, 1, 'no bounce was queued');
  }

  const fail = (r: MessageRecord): MessageRecord => ({ ...r, recipients: r.recipients.map((x) => ({ ...x, status: 'failed' as const, lastReply: '550 no' })) });

  it('a DSN builder that throws leaves the message (not: neither the message nor its bounce)', () =>
    withSpool(async (spool) => {
      const m = await queued(spool);
      await assert.rejects(
        spool.update(m.id, fail, () => {
          throw new Error('DSN build failed');
        }),
        /DSN build failed/,
      );
      assertIntact(spool, m);
      // The same through `queue bounce`: the DSN settings blow up while the bounce is built.
      const broken = {
        get hostname(): string {
          throw new Error('no hostname');
        },
        bounceFrom: 'postmaster@relay.test',
      };
      await assert.rejects(giveUp(spool, m.id, broken), /no hostname/);
      assertIntact(spool, m);
    }));

  it('an index update that throws leaves the message as it was', () =>
    withSpool(async (spool) => {
      const m = await queued(spool);
      const { due } = internals(spool);
      const original = due.putSync.bind(due);
      due.putSync = () => {
        throw new Error('index write failed');
      };
      try {
        await assert.rejects(
          spool.update(m.id, (r) => ({ ...r, nextAttemptAt: 5000, attempts: 1 })),
          /index write failed/,
        );
      } finally {
        due.putSync = original;
      }
      assertIntact(spool, m);
    }));

  it('an outcome record that cannot be written leaves the message as it was; a sibling write in the same batch still commits', () =>
    withSpool(async (spool) => {
      const m = await queued(spool);
      const other = await spool.accept(envelope, Buffer.from('other\r\n'), meta, 2000);
      const { messages } = internals(spool);
      const original = messages.putSync.bind(messages);
      messages.putSync = (key: string, value: MessageRecord) => {
        if (key === m.id) throw new Error('record write failed');
        return original(key, value);
      };
      try {
        // Same event-loop turn: lmdb-js puts both callbacks in one LMDB transaction.
        const [broken, fine] = await Promise.allSettled([spool.update(m.id, (r) => ({ ...r, attempts: 1, nextAttemptAt: 9000 })), spool.hold(other)]);
        assert.equal(broken.status, 'rejected');
        assert.deepEqual(fine, { status: 'fulfilled', value: 'done' });
      } finally {
        messages.putSync = original;
      }
      assert.deepEqual(spool.get(m.id), m.before);
      assert.deepEqual(spool.body(m.id), m.body);
      assert.equal(spool.get(other)?.held, true, 'the other update committed');
      assert.deepEqual(spool.dueIds(Date.now(), 10), [m.id]);
    }));
});

describe('an outcome recorded on a message held meanwhile', () => {
  const deliver =
    (only?: string) =>
    (r: MessageRecord): MessageRecord => ({
      ...r,
      recipients: r.recipients.map((x) => (only === undefined || x.address === only ? { ...x, status: 'delivered' as const } : x)),
    });

  it('that delivers every recipient retires the message: not left as held mail that was sent', () =>
    withSpool(async (spool) => {
      const id = await spool.accept(envelope, Buffer.from('Subject: held\r\n\r\nbody\r\n'), meta);
      assert.equal(await spool.hold(id), 'done');
      await spool.update(id, deliver());
      assert.equal(spool.get(id), undefined, 'retired');
      assert.equal(spool.body(id), undefined, 'body removed');
      assert.equal(spool.counts().messages, 0, 'counted as gone');
      assert.equal(spool.counts().held, 0);
      assert.equal(spool.queuedBytes(), 0);
    }));

  it('that leaves a recipient to deliver keeps it held, and release then applies', () =>
    withSpool(async (spool) => {
      const id = await spool.accept({ sender: 'a@example.org', recipients: ['b@example.net', 'c@example.net'] }, Buffer.from('Subject: held\r\n\r\nbody\r\n'), meta);
      assert.equal(await spool.hold(id), 'done');
      await spool.update(id, deliver('b@example.net'));
      assert.equal(spool.get(id)!.held, true);
      assert.equal(await spool.release(id, Date.now()), 'done');
      assert.deepEqual(spool.dueIds(Date.now() + 1, 10), [id]);
    }));
});
