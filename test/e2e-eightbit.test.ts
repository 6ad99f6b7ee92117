/**
 * End to end, the real daemon relaying UTF-8 mail (as cron, PHP and git write it) to servers we did
 * not write: smtp-server as it ships (offers 8BITMIME) and with hide8BITMIME, and Postfix's own
 * smtp-sink(1) as it ships and with -8 ("Do not announce 8BITMIME support"). A server that offers
 * 8BITMIME gets the submitted bytes unchanged under BODY=8BITMIME, one that does not gets the 7-bit
 * conversion without it; a reader (mailparser) sees the same subject, sender and text either way.
 */
import assert from 'node:assert/strict';
import { isAscii } from 'node:buffer';
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, readdirSync, readFileSync } from 'node:fs';
import { createConnection, createServer } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { simpleParser, type ParsedMail } from 'mailparser';
import { startCapture, strictRefusal } from './helpers/capture.js';
import { relayConfig } from './helpers/config.js';
import { startDaemon, writeConfig } from './helpers/daemon.js';
import { assertRawUntouched, submit } from './helpers/rest.js';
import { tempDir } from './helpers/tmp.js';
import { utf8Message } from './helpers/utf8-mail.js';

/** Postfix's smtp-sink: $SMTP_SINK, else the postfix package's, else one on the PATH. */
const SMTP_SINK = [process.env.SMTP_SINK, '/usr/sbin/smtp-sink', ...(process.env.PATH ?? '').split(':').map((d) => join(d, 'smtp-sink'))].find((p): p is string => Boolean(p && existsSync(p)));

interface Delivered {
  /** The message as the server received it (smtp-sink's dump: LF line ends, its own records and Received: on top). */
  raw: Buffer;
  /** The MAIL FROM arguments after the address, e.g. "BODY=8BITMIME SIZE=123". */
  mailArgs: string;
}

/** Relays one message through a daemon whose upstream is `port`; `received` reads what the server got. */
async function relayThrough(port: number, sent: Buffer, received: () => Promise<Delivered>): Promise<Delivered> {
  const dir = tempDir();
  const daemon = await startDaemon(writeConfig(dir.path, relayConfig({ spool: `${dir.path}/spool`, upstreamPort: port })));
  try {
    await submit(daemon.port, { raw: sent, envelope: { from: 'cron@example.org', to: ['ops@example.net'] } });
    const line = await daemon.waitForLog((l) => l.event === 'delivery');
    assert.equal(line.result, 'delivered', JSON.stringify(line));
    return await received();
  } finally {
    await daemon.stop();
    dir.cleanup();
  }
}

async function sameContent(got: ParsedMail, sent: Buffer): Promise<void> {
  const want = await simpleParser(sent);
  assert.equal(got.subject, want.subject);
  assert.deepEqual(got.from?.value, want.from?.value);
  assert.equal(got.text, want.text);
}

describe('8-bit mail end to end: sent as it is where the session offers 8BITMIME', () => {
  const sent = utf8Message('e2e');

  /** Relays `sent` to smtp-server with these options; what it received. */
  async function viaSmtpServer(options: { hide8BITMIME?: boolean }): Promise<Delivered> {
    const capture = await startCapture(options);
    try {
      return await relayThrough(capture.port, sent, async () => {
        const m = (await capture.waitFor(1))[0]!;
        return {
          raw: m.raw,
          mailArgs: Object.entries(m.mailArgs)
            .map(([k, v]) => `${k}=${v}`)
            .join(' '),
        };
      });
    } finally {
      await capture.close();
    }
  }

  it('smtp-server (offers 8BITMIME): the submitted bytes arrive unchanged, declared BODY=8BITMIME', async () => {
    const got = await viaSmtpServer({});
    assertRawUntouched(got.raw, sent);
    assert.match(got.mailArgs, /\bBODY=8BITMIME\b/);
    await sameContent(await simpleParser(got.raw), sent);
  });

  it('smtp-server with hide8BITMIME: the 7-bit conversion, no BODY=, the same content', async () => {
    const got = await viaSmtpServer({ hide8BITMIME: true });
    assert.ok(isAscii(got.raw), '7-bit');
    assert.equal(strictRefusal(got.raw, undefined), undefined);
    assert.doesNotMatch(got.mailArgs, /BODY=/);
    await sameContent(await simpleParser(got.raw), sent);
  });

  describe("Postfix's smtp-sink", () => {
    let dir: ReturnType<typeof tempDir>;
    before(() => {
      dir = tempDir();
      chmodSync(dir.path, 0o777); // smtp-sink runs as nobody when the tests run as root
    });
    after(() => dir.cleanup());

    /** smtp-sink dumping each transaction to a file in its own directory (-d), with -8 when `hide8bitmime`. */
    async function withSmtpSink(hide8bitmime: boolean, run: (port: number, dumped: () => Promise<Delivered>) => Promise<void>): Promise<void> {
      const port = await freePort();
      const dumps = join(dir.path, hide8bitmime ? 'hidden' : 'offered');
      const asRoot = process.getuid?.() === 0 ? ['-u', 'nobody'] : [];
      const child = spawn(SMTP_SINK!, [...asRoot, ...(hide8bitmime ? ['-8'] : []), '-d', `${dumps}/m.`, `127.0.0.1:${port}`, '16'], { stdio: 'ignore' });
      const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      try {
        await waitForPort(port, child);
        await run(port, async () => {
          const files = readdirSync(dumps);
          assert.equal(files.length, 1, 'one transaction dumped');
          const dump = readFileSync(join(dumps, files[0]!));
          // The dump: X-Client-Addr … X-Rcpt-Args records, then the message as received (LF line ends), then an empty line.
          assert.ok(dump.subarray(-2).equals(Buffer.from('\n\n')), 'the dump ends with its empty line');
          const mailArgs = /^X-Mail-Args: <[^>]*> ?(.*)$/m.exec(dump.toString('latin1'))?.[1] ?? '';
          return { raw: dump.subarray(0, -1), mailArgs };
        });
      } finally {
        child.kill('SIGTERM');
        await exited;
      }
    }

    it('as it ships (offers 8BITMIME): the submitted bytes arrive unchanged, declared BODY=8BITMIME', async (t) => {
      if (!SMTP_SINK) return t.skip('smtp-sink (postfix) not installed; set SMTP_SINK to its path');
      await withSmtpSink(false, async (port, dumped) => {
        const got = await relayThrough(port, sent, dumped);
        assert.match(got.mailArgs, /\bBODY=8BITMIME\b/);
        assert.ok(got.raw.toString('latin1').includes(sent.toString('latin1').replace(/\r\n/g, '\n')), 'the submitted bytes, line for line');
        await sameContent(await simpleParser(got.raw), sent);
      });
    });

    it('with -8 (no 8BITMIME, as smtpd_discard_ehlo_keywords = 8bitmime makes Postfix): the 7-bit conversion, no BODY=, the same content', async (t) => {
      if (!SMTP_SINK) return t.skip('smtp-sink (postfix) not installed; set SMTP_SINK to its path');
      await withSmtpSink(true, async (port, dumped) => {
        const got = await relayThrough(port, sent, dumped);
        assert.doesNotMatch(got.mailArgs, /BODY=/);
        assert.ok(isAscii(got.raw), '7-bit');
        await sameContent(await simpleParser(got.raw), sent);
      });
    });
  });
});

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** Resolves once something accepts connections on the port (fails if the child exits first). */
async function waitForPort(port: number, child: ChildProcess): Promise<void> {
  for (let i = 0; i < 100; i++) {
    if (child.exitCode !== null) throw new Error(`smtp-sink exited with ${child.exitCode}`);
    const ok = await new Promise<boolean>((resolve) => {
      const socket = createConnection({ port, host: '127.0.0.1' }, () => {
        socket.destroy();
        resolve(true);
      });
      socket.on('error', () => resolve(false));
    });
    if (ok) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`nothing listens on ${port}`);
}
