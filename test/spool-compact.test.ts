/** `queue compact` (issue 18): the file returns to its live size; messages survive; never with a daemon running. */
import assert from 'node:assert/strict';
import { statSync } from 'node:fs';
import { describe, it } from 'node:test';
import { compactSpool } from '../src/spool/compact.js';
import { lockSpool } from '../src/spool/lock.js';
import { Spool } from '../src/spool/spool.js';
import { tempDir } from './helpers/tmp.js';

describe('queue compact', { timeout: 60_000 }, () => {
  it('shrinks the file after a drain, keeps what is still queued, and refuses while the spool is locked', async () => {
    const dir = tempDir();
    const path = `${dir.path}/spool`;
    const spool = Spool.open(path);
    const body = Buffer.from(`Subject: c\r\n\r\n${'x'.repeat(20_000)}\r\n`);
    let kept: string[];
    try {
      const ids = await Promise.all(Array.from({ length: 400 }, (_, i) => spool.accept({ sender: 's@example.org', recipients: [`r${i}@example.net`] }, body, { origin: { protocol: 'esmtp' } })));
      await spool.rebuildCounters();
      kept = ids.slice(0, 3);
      for (const id of ids.slice(3)) await spool.remove(id);
    } finally {
      await spool.close();
    }
    const file = `${path}/queue.mdb`;
    const before = statSync(file).size;
    // A daemon holds the lock while it runs: compact must not touch the file then.
    const held = await lockSpool(path, 'daemon');
    await assert.rejects(compactSpool(path), { code: 'ELOCKED' });
    held.release();
    assert.equal(statSync(file).size, before);
    const result = await compactSpool(path);
    assert.equal(result.beforeBytes, before);
    assert.ok(result.afterBytes < before / 10, `${before} -> ${result.afterBytes} bytes`);
    const reopened = Spool.open(path);
    try {
      assert.deepEqual(
        [...reopened.list()].map((r) => r.id),
        [...kept].sort(),
      );
      for (const id of kept) assert.equal(reopened.body(id)?.length, body.length);
      assert.equal(reopened.counts().messages, 3, 'the counters travel with the copy');
      assert.ok(reopened.fileBytes() <= reopened.liveBytes() * 4 + 64 * 1024, `file ${reopened.fileBytes()} vs live ${reopened.liveBytes()}`);
      // Still a working spool: it takes new mail.
      await reopened.accept({ sender: 's@example.org', recipients: ['n@example.net'] }, body, { origin: { protocol: 'esmtp' } });
      assert.equal(reopened.counts().messages, 4);
    } finally {
      await reopened.close();
      dir.cleanup();
    }
  });
});
