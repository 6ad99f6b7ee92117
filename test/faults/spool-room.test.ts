/**
 * spool.min_free on a real, small file system (a tmpfs): new mail is refused while the room it
 * would leave is below min_free. The spool measures the room (statfs, the file's blocks, LMDB's
 * page counts) at most every 0.5 s and charges each message accepted in between against the last
 * measurement, so a burst of messages cannot run past min_free before the next measurement, and
 * a disk filled by something else is seen at the next one.
 */
import assert from 'node:assert/strict';
import { closeSync, openSync, statfsSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Spool } from '../../src/spool/spool.js';
import { tempDir } from '../helpers/tmp.js';
import { checked, mountMissing, mountTmpfs } from './helpers.js';

const MB = 1024 * 1024;
const scratch = tempDir('mailshim-room-');
const noMount = mountMissing(join(scratch.path, 'probe'));
const envelope = { sender: 's@example.org', recipients: ['a@example.net'] };
const free = (path: string) => {
  const disk = statfsSync(path);
  return disk.bavail * disk.bsize;
};

describe('min_free on a small file system', { skip: noMount }, () => {
  it('a burst of messages stops at min_free, not at the next measurement', async (t) => {
    const fs = join(scratch.path, 'burst');
    const unmount = mountTmpfs(fs, '48m');
    const minFree = 16 * MB;
    const spool = Spool.open(join(fs, 'spool'), { minFree });
    try {
      const message = Buffer.alloc(MB, 'x');
      let accepted = 0;
      let refusal: Error | undefined;
      // Back to back, well within one measurement's lifetime: only the charges stop the burst.
      while (!refusal) {
        try {
          await spool.accept(envelope, message, { origin: { protocol: 'esmtp' } });
          accepted++;
          assert.ok(free(fs) >= minFree - 64 * 1024, `after ${accepted} messages ${free(fs)} bytes free, min_free ${minFree}`);
        } catch (error) {
          refusal = error as Error;
        }
      }
      assert.match(refusal.message, /not enough free space/, 'refused by the min_free check, not by a failed write');
      assert.ok(accepted >= 20, `${accepted} messages of 1 MB accepted on a 48 MB disk with 16 MB kept free`);
      checked(t, `${accepted} × 1 MB accepted, then refused with ${(free(fs) / MB).toFixed(1)} MB free (min_free 16 MB)`);
    } finally {
      await spool.close();
      unmount();
    }
  });

  it('a disk filled by another process is seen at the next measurement', async (t) => {
    const fs = join(scratch.path, 'filled');
    const unmount = mountTmpfs(fs, '48m');
    const minFree = 8 * MB;
    const spool = Spool.open(join(fs, 'spool'), { minFree });
    try {
      const message = Buffer.alloc(64 * 1024, 'x');
      await spool.accept(envelope, message, { origin: { protocol: 'esmtp' } });
      // Another process leaves 4 MB: below min_free, though a 64 KB message would still fit.
      const fd = openSync(join(fs, 'filler'), 'w');
      const chunk = Buffer.alloc(MB);
      while (free(fs) > 4 * MB + chunk.length) writeSync(fd, chunk);
      closeSync(fd);
      await sleep(600); // past the measurement's lifetime (0.5 s)
      await assert.rejects(
        spool.accept(envelope, message, { origin: { protocol: 'esmtp' } }),
        (error: Error & { code?: string }) => error.code === 'ESPOOLFULL' && /not enough free space/.test(error.message),
      );
      checked(t, 'disk filled by another process: the next message after 0.5 s is refused (ESPOOLFULL)');
    } finally {
      await spool.close();
      unmount();
    }
  });
});

after(() => scratch.cleanup());
