/** The LMDB spool in a temp dir: atomic accept, due index, read-modify-write, multi-process access. */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { statSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { isQueueId } from '../src/spool/ids.js';
import { Spool } from '../src/spool/spool.js';
import { tempDir } from './helpers/tmp.js';

const bytes = Buffer.from('Subject: t\r\n\r\nbody\r\n');

describe('spool', () => {
  it('stores message, envelope and per-recipient state; the due index finds it', async () => {
    const dir = tempDir();
    const spool = Spool.open(dir.path);
    try {
      const id = await spool.accept({ sender: 'a@example.org', recipients: ['b@example.net', 'c@example.net'] }, bytes, { origin: { protocol: 'esmtp' }, messageId: '<m@x>' });
      assert.ok(isQueueId(id));
      const record = spool.get(id)!;
      assert.equal(record.sender, 'a@example.org');
      assert.deepEqual(
        record.recipients.map((r) => [r.address, r.status]),
        [
          ['b@example.net', 'pending'],
          ['c@example.net', 'pending'],
        ],
      );
      assert.deepEqual(spool.body(id), bytes);
      assert.deepEqual(spool.dueIds(Date.now(), 10), [id]);
      assert.deepEqual(spool.dueIds(record.receivedAt - 1, 10), []);
    } finally {
      await spool.close();
      dir.cleanup();
    }
  });

  it('update() reschedules, keeps the index consistent, and removes the message once every recipient is final', async () => {
    const dir = tempDir();
    const spool = Spool.open(dir.path);
    try {
      const id = await spool.accept({ sender: 'a@example.org', recipients: ['b@example.net', 'c@example.net'] }, bytes, { origin: { protocol: 'esmtp' } });
      const later = Date.now() + 60_000;
      await spool.update(id, (r) => {
        r.recipients[0]!.status = 'delivered';
        r.recipients[1]!.status = 'deferred';
        r.nextAttemptAt = later;
        return r;
      });
      assert.deepEqual(spool.dueIds(Date.now(), 10), []);
      assert.deepEqual(spool.dueIds(later, 10), [id]);
      const result = await spool.update(
        id,
        (r) => {
          r.recipients[1]!.status = 'failed';
          return r;
        },
        () => [{ envelope: { sender: 'postmaster@x', recipients: ['a@example.org'] }, bytes: Buffer.from('dsn'), meta: { origin: { protocol: 'dsn' }, isBounce: true } }],
      );
      assert.equal(spool.get(id), undefined, 'final message removed');
      assert.equal(spool.body(id), undefined);
      assert.equal(result!.inserted.length, 1);
      const dsn = spool.get(result!.inserted[0]!)!;
      assert.equal(dsn.isBounce, true);
      assert.deepEqual(spool.dueIds(Date.now() + 120_000, 10), [dsn.id]);
    } finally {
      await spool.close();
      dir.cleanup();
    }
  });

  it('held messages are not due; update() on a removed message is a no-op', async () => {
    const dir = tempDir();
    const spool = Spool.open(dir.path);
    try {
      const id = await spool.accept({ sender: '', recipients: ['b@example.net'] }, bytes, { origin: { protocol: 'esmtp' } });
      await spool.update(id, (r) => ({ ...r, held: true }));
      assert.deepEqual(spool.dueIds(Date.now() + 1e9, 10), []);
      assert.equal(spool.get(id)!.nextAttemptAt, null);
      assert.equal((await spool.remove(id))?.id, id);
      assert.equal(await spool.update(id, (r) => r), undefined);
      assert.equal(await spool.remove(id), undefined);
    } finally {
      await spool.close();
      dir.cleanup();
    }
  });

  it('a second process sees committed messages while the first has the spool open', async () => {
    const dir = tempDir();
    const spool = Spool.open(dir.path);
    try {
      const id = await spool.accept({ sender: 'a@example.org', recipients: ['b@example.net'] }, bytes, { origin: { protocol: 'esmtp' } });
      const script = `import { Spool } from ${JSON.stringify(new URL('../src/spool/spool.js', import.meta.url).href)};
const s = Spool.open(${JSON.stringify(dir.path)}); const r = s.get(${JSON.stringify(id)});
const n = await s.accept({ sender: 'x@example.org', recipients: ['y@example.net'] }, Buffer.from('X'), { origin: { protocol: 'local' } });
console.log(JSON.stringify({ sender: r?.sender, n })); await s.close();`;
      const out = JSON.parse(execFileSync(process.execPath, ['--input-type=module', '-e', script]).toString()) as { sender: string; n: string };
      assert.equal(out.sender, 'a@example.org');
      assert.equal(spool.get(out.n)?.sender, 'x@example.org', 'the other process’s commit is visible here');
    } finally {
      await spool.close();
      dir.cleanup();
    }
  });

  it('lastTxnId() (read before every commit) is the id getStats() reports, and moves with each commit', async () => {
    const dir = tempDir();
    const spool = Spool.open(dir.path);
    const statsId = () => (spool as unknown as { root: { getStats(): { lastTxnId: number } } }).root.getStats().lastTxnId;
    try {
      const before = spool.lastTxnId();
      assert.equal(before, statsId());
      await spool.accept({ sender: 'a@example.org', recipients: ['b@example.net'] }, bytes, { origin: { protocol: 'esmtp' } });
      assert.ok(spool.lastTxnId() > before);
      assert.equal(spool.lastTxnId(), statsId());
    } finally {
      await spool.close();
      dir.cleanup();
    }
  });

  it('a disk reserve deleted by someone else is written again by a message accepted 0.5 s later', async () => {
    const dir = tempDir();
    const spool = Spool.open(dir.path, { reserve: 1024 * 1024 });
    const ballast = join(dir.path, 'reserve');
    try {
      assert.equal(statSync(ballast).size, 1024 * 1024);
      await spool.accept({ sender: 'a@example.org', recipients: ['b@example.net'] }, bytes, { origin: { protocol: 'esmtp' } });
      unlinkSync(ballast);
      await new Promise((resolve) => setTimeout(resolve, 600));
      await spool.accept({ sender: 'a@example.org', recipients: ['b@example.net'] }, bytes, { origin: { protocol: 'esmtp' } });
      assert.equal(statSync(ballast).size, 1024 * 1024, 'the ballast is back');
    } finally {
      await spool.close();
      dir.cleanup();
    }
  });

  it('refuses a message (ESPOOLFULL) that would leave less than minFree room on the disk, and stores nothing', async () => {
    const dir = tempDir();
    const roomy = Spool.open(dir.path, { minFree: 1024 });
    await roomy.accept({ sender: 'a@example.org', recipients: ['b@example.net'] }, bytes, { origin: { protocol: 'esmtp' } });
    await roomy.close();
    // No disk has an exabyte free: the reserve cannot be met.
    const tight = Spool.open(dir.path, { minFree: 2 ** 60 });
    try {
      await assert.rejects(
        tight.accept({ sender: 'a@example.org', recipients: ['b@example.net'] }, bytes, { origin: { protocol: 'esmtp' } }),
        (error: Error & { code?: string }) => error.code === 'ESPOOLFULL' && /not enough free space/.test(error.message),
      );
      assert.equal(tight.counts().messages, 1);
    } finally {
      await tight.close();
      dir.cleanup();
    }
  });
});
