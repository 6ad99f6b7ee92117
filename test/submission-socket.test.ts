/** The local submission socket is writable by every local user: junk must be refused, never crash the daemon. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { relayConfig } from './helpers/config.js';
import { startDaemon, writeConfig } from './helpers/daemon.js';
import { RawSmtp } from './helpers/smtp-client.js';
import { askSocket } from './helpers/submit.js';
import { tempDir } from './helpers/tmp.js';

describe('submission socket', () => {
  it('answers malformed requests with a usage error and keeps serving', async () => {
    const dir = tempDir();
    const spool = `${dir.path}/spool`;
    const daemon = await startDaemon(writeConfig(dir.path, relayConfig({ spool })));
    const socket = `${spool}.sock`;
    try {
      for (const junk of ['null\n', '123\n', '"submit"\n', '[]\n', '{}\n', '{"op":7}\n', '{"op":"submit"}\n', '{"op":"submit","size":-1}\n', 'not json\n']) {
        const answer = JSON.parse(await askSocket(socket, Buffer.from(junk))) as { ok: boolean; code: string };
        assert.equal(answer.ok, false, junk);
        assert.ok(['EUSAGE', 'EDATAERR'].includes(answer.code), `${junk}: ${answer.code}`);
      }
      await fc.assert(
        fc.asyncProperty(fc.uint8Array({ maxLength: 200 }), async (bytes) => {
          const answer = await askSocket(socket, Buffer.concat([Buffer.from(bytes), Buffer.from('\n')]));
          if (answer !== '') assert.equal((JSON.parse(answer) as { ok: boolean }).ok !== undefined, true);
        }),
        { numRuns: 100 },
      );
      assert.equal(daemon.child.exitCode, null, 'the daemon is still running');
      const c = await RawSmtp.open(daemon.port);
      assert.match(await c.reply(), /^220 /);
      c.close();
    } finally {
      await daemon.stop();
      dir.cleanup();
    }
  });
});
