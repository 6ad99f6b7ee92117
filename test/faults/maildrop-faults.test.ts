/**
 * The sendmail path under a failed fsync (issue 10: the maildrop copy was deleted as a
 * "duplicate" of a record whose commit had failed). The daemon importing a maildrop file whose
 * commit cannot be synced must stop before it unlinks the file; after the restart the message is
 * delivered exactly once and only then is the file gone.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { writeMaildrop } from '../../src/intake/maildrop.js';
import { newSubmitToken } from '../../src/spool/ids.js';
import { startCapture } from '../helpers/capture.js';
import { relayConfig } from '../helpers/config.js';
import { startDaemon, writeConfig } from '../helpers/daemon.js';
import { tempDir } from '../helpers/tmp.js';
import { checked, inject, straceMissing } from './helpers.js';

describe('maildrop import under a failed fsync (strace)', { skip: straceMissing() }, () => {
  it('keeps the maildrop file through the fail-stop; the restart delivers the message once', async (t) => {
    const dir = tempDir();
    const capture = await startCapture();
    const spool = `${dir.path}/spool`;
    const config = writeConfig(dir.path, relayConfig({ spool, upstreamPort: capture.port }));
    const daemon = await startDaemon(config);
    let restarted;
    try {
      const faults = await inject(daemon.child.pid!, ['fdatasync:error=EIO']);
      const token = newSubmitToken();
      const body = Buffer.from('From: root@relay.test\r\nTo: rcpt@example.net\r\nSubject: dropped\r\n\r\nhello\r\n');
      const file = join(`${spool}-maildrop`, token);
      try {
        writeMaildrop(`${spool}-maildrop`, { op: 'submit', token, sender: 'root@relay.test', recipients: ['rcpt@example.net'], user: 'root', uid: 0, size: body.length }, body);
        assert.equal(await daemon.exited, 74, 'the import hit the failed fsync and stopped');
      } finally {
        await faults.detach();
      }
      assert.ok(existsSync(file), 'the maildrop file was not deleted');
      checked(t, 'fdatasync EIO while importing: exit 74, maildrop file kept');
      restarted = await startDaemon(config);
      await capture.waitFor(1);
      await restarted.waitForLog((l) => l.event === 'delivery' && l.result === 'delivered');
      assert.ok(!existsSync(file), 'imported (or found imported) after the restart, then removed');
      assert.equal(capture.messages.length, 1, 'delivered exactly once');
      checked(t, 'after the restart: delivered once, maildrop file removed');
    } finally {
      await daemon.stop();
      await restarted?.stop();
      await capture.close();
      dir.cleanup();
    }
  });
});
