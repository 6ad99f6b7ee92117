/**
 * The SMTP upstream chooses a message's bytes per session (src/upstreams/session-body.ts, through
 * the nodemailer adapter's SMTPConnection.send): 8-bit as it is with BODY=8BITMIME when the EHLO of
 * the connection that carries it offers 8BITMIME, the 7-bit conversion (src/message/wire.ts) when it
 * does not. Driven through delivery's Router (which fits the message, 'if-offered') against
 * smtp-server, a server we did not write, with its `hide8BITMIME` option: after STARTTLS the second
 * EHLO decides, and a pooled connection, reused or replaced, decides for itself.
 */
import { bufferBody } from '../src/message/body.js';
import assert from 'node:assert/strict';
import { isAscii } from 'node:buffer';
import { readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { simpleParser } from 'mailparser';
import type { SmtpUpstreamConfig } from '../src/config/types.js';
import { Router } from '../src/delivery/router.js';
import { SmtpUpstream } from '../src/upstreams/smtp.js';
import type { OutboundMessage } from '../src/upstreams/types.js';
import { startCapture, strictRefusal, type Capture } from './helpers/capture.js';
import { makeCert, type TestCert } from './helpers/tls.js';
import { utf8Message } from './helpers/utf8-mail.js';
import { tempDir } from './helpers/tmp.js';

const outbound = (raw: Buffer, id = 'Q1'): OutboundMessage => ({ id, sender: 'cron@example.org', recipients: ['ops@example.net'], body: bufferBody(raw) });
const retry = { initialDelay: 1000, maxDelay: 3_600_000, maxAge: 86_400_000 };

function upstreamConfig(port: number, extra: Partial<SmtpUpstreamConfig> = {}): SmtpUpstreamConfig {
  return { name: 'smtp', type: 'smtp', host: '127.0.0.1', port, tls: 'none', matchFrom: [], maxConcurrency: 1, timeout: 5000, ...extra };
}

/**
 * One SMTP upstream behind delivery's Router, as the daemon runs it, sending to `capture`;
 * `deliver` resolves with the recipient's outcome. Both are closed after `run`.
 */
async function withRelay(capture: Capture, run: (deliver: (m: OutboundMessage) => Promise<string>) => Promise<void>, extra: Partial<SmtpUpstreamConfig> = {}): Promise<void> {
  const config = upstreamConfig(capture.port, extra);
  const router = new Router([new SmtpUpstream(config, 'relay.test')], [config], retry, () => 0);
  try {
    await run(async (message) => (await router.deliver(message)).get('ops@example.net')!.outcome);
  } finally {
    await router.close();
    await capture.close();
  }
}

/** The same reader-visible content (subject, display name, text) as the message that was sent. */
async function assertSameContent(delivered: Buffer, sent: Buffer): Promise<void> {
  const [got, want] = await Promise.all([simpleParser(delivered), simpleParser(sent)]);
  assert.equal(got.subject, want.subject);
  assert.deepEqual(got.from?.value, want.from?.value);
  assert.equal(got.text, want.text);
}

function assertSentAsIs(capture: Capture, index: number, sent: Buffer): void {
  const got = capture.messages[index]!;
  assert.ok(got.raw.equals(sent), `message ${index} arrives byte for byte as it was written`);
  assert.equal(got.mailArgs.BODY, '8BITMIME', `message ${index} is declared BODY=8BITMIME`);
}

async function assertConverted(capture: Capture, index: number, sent: Buffer): Promise<void> {
  const got = capture.messages[index]!;
  assert.ok(isAscii(got.raw), `message ${index} is 7-bit`);
  assert.equal(got.mailArgs.BODY, undefined, `message ${index} declares no BODY`);
  assert.equal(strictRefusal(got.raw, undefined), undefined);
  assert.match(got.raw.toString(), /Content-Transfer-Encoding: (quoted-printable|base64)\r\n/);
  await assertSameContent(got.raw, sent);
}

describe('SMTP upstream: 8-bit per session', () => {
  it('a server that offers 8BITMIME gets the 8-bit message byte for byte with BODY=8BITMIME', async () => {
    const capture = await startCapture();
    await withRelay(capture, async (deliver) => {
      const sent = utf8Message('offered');
      assert.equal(await deliver(outbound(sent)), 'delivered');
      assertSentAsIs(capture, 0, sent);
    });
  });

  it('a server without 8BITMIME (hide8BITMIME) gets the 7-bit conversion, no BODY=, and the same content', async () => {
    const capture = await startCapture({ hide8BITMIME: true });
    await withRelay(capture, async (deliver) => {
      const sent = utf8Message('hidden');
      assert.equal(await deliver(outbound(sent)), 'delivered');
      await assertConverted(capture, 0, sent);
    });
  });

  it('a pooled connection, reused and then replaced by one to a server that stopped offering 8BITMIME, decides per session', async () => {
    let connections = 0;
    const capture = await startCapture({
      onConnect(_session, callback) {
        connections++;
        callback();
      },
    });
    await withRelay(capture, async (deliver) => {
      const sent = [0, 1, 2, 3].map((i) => utf8Message(`pool${i}`));
      assert.equal(await deliver(outbound(sent[0]!, 'Q0')), 'delivered');
      assert.equal(await deliver(outbound(sent[1]!, 'Q1')), 'delivered');
      assert.equal(connections, 1, 'the second message reused the pooled connection');
      assertSentAsIs(capture, 0, sent[0]!);
      assertSentAsIs(capture, 1, sent[1]!);

      // The server is reconfigured without 8BITMIME and drops its connections (a reload).
      capture.server.options.hide8BITMIME = true;
      for (const connection of capture.server.connections) (connection as unknown as { close(): void }).close();
      assert.equal(await deliver(outbound(sent[2]!, 'Q2')), 'delivered');
      assert.equal(await deliver(outbound(sent[3]!, 'Q3')), 'delivered');
      assert.equal(connections, 2, 'one new connection, then reused');
      await assertConverted(capture, 2, sent[2]!);
      await assertConverted(capture, 3, sent[3]!);
    });
  });

  it('a 7-bit message is sent as it is either way, without BODY=', async () => {
    const capture = await startCapture({ hide8BITMIME: true });
    await withRelay(capture, async (deliver) => {
      const sent = Buffer.from('From: cron@example.org\r\nSubject: plain\r\n\r\nascii only\r\n');
      assert.equal(await deliver(outbound(sent)), 'delivered');
      assert.ok(capture.messages[0]!.raw.equals(sent));
      assert.equal(capture.messages[0]!.mailArgs.BODY, undefined);
    });
  });

  it('a session whose 7-bit conversion is unsupported reports why, and the connection stays usable', async () => {
    const capture = await startCapture({ hide8BITMIME: true });
    const upstream = new SmtpUpstream(upstreamConfig(capture.port), 'relay.test');
    try {
      const sent = utf8Message('unsupported');
      const [r] = await upstream.send({ ...outbound(sent), fitFor: async (eightBit) => (eightBit ? { raw: sent, changed: false } : { unsupported: 'cannot be made 7-bit' }) });
      assert.deepEqual(r!.result, { kind: 'unsupported', text: 'cannot be made 7-bit' });
      assert.equal(capture.messages.length, 0, 'nothing was sent');
      const [next] = await upstream.send(outbound(Buffer.from('Subject: next\r\n\r\nascii\r\n')));
      assert.equal(next!.result.kind, 'accepted');
    } finally {
      await upstream.close();
      await capture.close();
    }
  });
});

describe('SMTP upstream: after STARTTLS the second EHLO decides', () => {
  let dir: ReturnType<typeof tempDir>;
  let cert: TestCert;
  before(() => {
    dir = tempDir();
    cert = makeCert(dir.path);
  });
  after(() => dir.cleanup());

  /** A STARTTLS server whose EHLO offers 8BITMIME before TLS or after it, not both. */
  async function starttlsServer(offeredAfterTls: boolean): Promise<Capture> {
    const capture: Capture = await startCapture({
      key: readFileSync(cert.key),
      cert: readFileSync(cert.cert),
      hide8BITMIME: offeredAfterTls,
      onSecure(_socket, _session, callback) {
        capture.server.options.hide8BITMIME = !offeredAfterTls;
        callback();
      },
    });
    return capture;
  }

  for (const offeredAfterTls of [false, true]) {
    it(`8BITMIME offered ${offeredAfterTls ? 'only after' : 'only before'} STARTTLS: ${offeredAfterTls ? 'sent as it is' : 'converted to 7-bit'}`, async () => {
      const capture = await starttlsServer(offeredAfterTls);
      await withRelay(
        capture,
        async (deliver) => {
          const sent = utf8Message(`tls${offeredAfterTls}`);
          assert.equal(await deliver(outbound(sent)), 'delivered');
          if (offeredAfterTls) assertSentAsIs(capture, 0, sent);
          else await assertConverted(capture, 0, sent);
        },
        { tls: 'starttls', ca: cert.pem },
      );
    });
  }
});
