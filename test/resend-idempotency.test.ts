/**
 * Resend's Idempotency-Key through the daemon: the first request reaches Resend but its answer
 * comes too late (timeout), so mailshim retries; the retry carries the same key and an identical
 * body, and Resend (the fake implements its documented replay) does not send a second copy.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startResendFake, type ResendFake } from './fakes/resend.js';
import { header } from './fakes/server.js';
import { startDaemon, writeConfig, type RunningDaemon } from './helpers/daemon.js';
import { buildMessage, restConfig, submit } from './helpers/rest.js';
import { tempDir } from './helpers/tmp.js';

describe('resend idempotency across a timeout', () => {
  let fake: ResendFake;
  let daemon: RunningDaemon;
  let dir: ReturnType<typeof tempDir>;

  before(async () => {
    dir = tempDir();
    fake = await startResendFake('re_idem');
    const upstream = `[[upstream]]\nname = "resend"\ntype = "resend"\napi_key = "re_idem"\nendpoint = "${fake.url}"\ntimeout = "1s"\n`;
    daemon = await startDaemon(writeConfig(dir.path, restConfig(`${dir.path}/spool`, upstream)));
  });

  after(async () => {
    await daemon.stop();
    await fake.close();
    dir.cleanup();
  });

  it('retries with the same key and the provider sends once', async () => {
    fake.delayNext = 3000;
    const built = await buildMessage({ tag: 'idempotent' });
    const id = await submit(daemon.port, built);
    const first = await daemon.waitForLog((l) => l.event === 'delivery' && l.queueId === id);
    assert.equal(first.result, 'transient');
    assert.match(String(first.reply), /ETIMEDOUT/);
    await daemon.waitForLog((l) => l.event === 'delivery' && l.queueId === id && l.result === 'delivered');
    assert.ok(fake.received.length >= 2, 'the request was sent again');
    const keys = new Set(fake.received.map((r) => header(r, 'idempotency-key')));
    assert.equal(keys.size, 1, 'every attempt carried the same Idempotency-Key');
    assert.ok(
      fake.received.every((r) => r.body.equals(fake.received[0]!.body)),
      'and a byte-identical body',
    );
    assert.equal(fake.accepted.length, 1, 'Resend sent the message once');
  });
});
