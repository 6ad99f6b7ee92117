/** The SMTP upstream over STARTTLS and implicit TLS, with certificate verification. */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { startCapture } from './helpers/capture.js';
import { relayConfig } from './helpers/config.js';
import { startDaemon, writeConfig } from './helpers/daemon.js';
import { RawSmtp } from './helpers/smtp-client.js';
import { makeCert } from './helpers/tls.js';
import { tempDir } from './helpers/tmp.js';

async function submit(port: number, subject: string): Promise<void> {
  const c = await RawSmtp.open(port);
  await c.reply();
  await c.command('EHLO c');
  await c.command('MAIL FROM:<a@example.org>');
  await c.command('RCPT TO:<b@example.net>');
  await c.command('DATA');
  assert.match(await c.command(`Subject: ${subject}\r\n\r\nbody\r\n.`), /^250 /);
  c.close();
}

describe('SMTP upstream TLS', () => {
  for (const mode of ['starttls', 'implicit'] as const) {
    it(`${mode}: delivers with AUTH when the certificate is trusted (ca_file)`, async () => {
      const dir = tempDir();
      const cert = makeCert(dir.path, 'upstream', 'localhost');
      const capture = await startCapture({ secure: mode === 'implicit', key: readFileSync(cert.key), cert: readFileSync(cert.cert), users: { relay: 'pw' }, allowInsecureAuth: false });
      const upstreams = `[[upstream]]\nname = "tls"\ntype = "smtp"\nhost = "localhost"\nport = ${capture.port}\ntls = "${mode}"\nca_file = "${cert.cert}"\nusername = "relay"\npassword = "pw"\ntimeout = "5s"`;
      const daemon = await startDaemon(writeConfig(dir.path, relayConfig({ spool: `${dir.path}/spool`, upstreams })));
      try {
        await submit(daemon.port, `over ${mode}`);
        const [got] = await capture.waitFor(1);
        assert.equal(got!.user, 'relay');
        assert.match(got!.raw.toString(), new RegExp(`Subject: over ${mode}`));
      } finally {
        await daemon.stop();
        await capture.close();
        dir.cleanup();
      }
    });
  }

  it('an untrusted certificate is a configuration error: the message is held, never sent in clear, never bounced', async () => {
    const dir = tempDir();
    const cert = makeCert(dir.path, 'upstream', 'localhost');
    const capture = await startCapture({ key: readFileSync(cert.key), cert: readFileSync(cert.cert) });
    const upstreams = `[[upstream]]\nname = "tls"\ntype = "smtp"\nhost = "localhost"\nport = ${capture.port}\ntls = "starttls"\ntimeout = "5s"`;
    const daemon = await startDaemon(writeConfig(dir.path, relayConfig({ spool: `${dir.path}/spool`, upstreams, retry: { initial: '300ms', max: '500ms', age: '1s' } })));
    try {
      await submit(daemon.port, 'untrusted');
      const line = await daemon.waitForLog((l) => l.event === 'delivery');
      assert.equal(line.result, 'config');
      assert.match(String(line.reply), /^TLS /);
      await new Promise((r) => setTimeout(r, 1800)); // deliberate: past max_age (1s), nothing may have bounced
      assert.equal(capture.messages.length, 0);
      assert.ok(!daemon.logs.some((l) => l.event === 'delivery' && l.result !== 'config'), 'never bounced although past max_age');
    } finally {
      await daemon.stop();
      await capture.close();
      dir.cleanup();
    }
  });
});
