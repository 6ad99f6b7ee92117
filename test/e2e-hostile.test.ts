/** Hostile input over real sockets: each case gets the right reply and the daemon keeps serving. */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import { simpleParser } from 'mailparser';
import { startCapture, strictRefusal, type Capture } from './helpers/capture.js';
import { relayConfig } from './helpers/config.js';
import { startDaemon, writeConfig, type RunningDaemon } from './helpers/daemon.js';
import { RawSmtp } from './helpers/smtp-client.js';
import { tempDir } from './helpers/tmp.js';

const SMUGGLED = 'MAIL FROM:<admin@example.org>\r\nRCPT TO:<victim@example.net>\r\nDATA\r\nSubject: smuggled\r\n\r\nevil\r\n';

function peakRssKb(pid: number): number {
  return Number(/VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]);
}

describe('hostile input', () => {
  let capture: Capture;
  let daemon: RunningDaemon;
  let dir: ReturnType<typeof tempDir>;

  before(async () => {
    dir = tempDir();
    capture = await startCapture();
    daemon = await startDaemon(
      writeConfig(dir.path, relayConfig({ spool: `${dir.path}/spool`, upstreamPort: capture.port, listenExtra: 'max_connections = 50\nidle_timeout = "2s"' })),
      // A V8 heap limit makes the peak-RSS check below measure what the daemon holds, not when the GC runs:
      // Node 24's V8 let ~70 MB of collectable garbage build up during a refused 100 MB body (Node 20/22: ~37 MB).
      // A daemon that kept the body would still fail: as a string it would exceed the limit, as Buffers grow RSS by 100 MB.
      { NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} --max-old-space-size=64`.trim() },
    );
  });

  after(async () => {
    await daemon.stop();
    await capture.close();
    dir.cleanup();
  });

  async function transaction(sender: string, recipients = ['victim@example.net']): Promise<RawSmtp> {
    const c = await RawSmtp.open(daemon.port);
    await c.reply();
    await c.command('EHLO hostile.test');
    assert.match(await c.command(`MAIL FROM:<${sender}>`), /^250/);
    for (const r of recipients) await c.command(`RCPT TO:<${r}>`);
    assert.match(await c.command('DATA'), /^354/);
    return c;
  }

  // Every end-of-data look-alike a receiver somewhere has accepted (SEC Consult's and Postfix's lists).
  for (const [name, ending] of [
    ['\\n.\\n', '\n.\n'],
    ['\\n.\\r\\n', '\n.\r\n'],
    ['\\r\\n.\\n', '\r\n.\n'],
    ['\\r.\\r', '\r.\r'],
    ['\\r.\\n', '\r.\n'],
    ['\\r\\n.\\r', '\r\n.\r'],
    ['\\n.\\r', '\n.\r'],
    ['\\r\\n\\x00.\\r\\n', '\r\n\0.\r\n'],
  ] as const) {
    it(`SMTP smuggling with ${name}: one message is accepted, the "second" stays inside its body and is never a message of its own`, async () => {
      const sender = `smuggler-${Buffer.from(name).toString('hex')}@example.org`;
      const c = await transaction(sender);
      c.write(`Subject: outer\r\n\r\nhello${ending}${SMUGGLED}`);
      assert.match(await c.command('.'), /^250 2\.0\.0 /);
      assert.match(await c.command('NOOP'), /^250/, 'the session is still in sync: no reply was smuggled');
      c.close();
      const deadline = Date.now() + 10_000;
      while (!capture.messages.some((m) => m.sender === sender) && Date.now() < deadline) await capture.waitFor(capture.messages.length + 1, 500).catch(() => undefined);
      const got = capture.messages.filter((m) => m.sender === sender);
      assert.equal(got.length, 1);
      assert.deepEqual(got[0]!.recipients, ['victim@example.net']);
      const body = got[0]!.raw.toString('latin1');
      assert.match(body, /Subject: smuggled/, 'the would-be second message is body text of the first');
      assert.doesNotMatch(body.replace(/\r\n/g, ''), /\n/, 'no bare LF reaches the upstream');
    });
  }

  it('no smuggled message ever reached the upstream as a message of its own', async () => {
    assert.ok(!capture.messages.some((m) => m.sender === 'admin@example.org' || /^Subject: smuggled/m.test(m.raw.toString('latin1').split('\r\n\r\n')[0]!)));
  });

  it('NUL bytes, over-long header lines and invalid UTF-8 headers from allowed clients are accepted (delivery makes them legal on the wire)', async () => {
    for (const body of [
      Buffer.from('Subject: nul\r\n\r\nbad\0byte\r\n'),
      Buffer.from(`Subject: ${'x'.repeat(1000)}\r\n\r\nbody\r\n`),
      Buffer.concat([Buffer.from('Subject: caf'), Buffer.from([0xe9]), Buffer.from('\r\n\r\nbody\r\n')]),
    ]) {
      const c = await transaction('malformed@example.org');
      c.write(body);
      assert.match(await c.command('.'), /^250 2\.0\.0 /);
      c.close();
    }
  });

  it('8-bit body without BODY=8BITMIME, UTF-8 headers and long body lines are accepted, and relayed legally with the same content', async () => {
    const c = await transaction('eightbit@example.org', ['eight@example.net']);
    const body = Buffer.concat([
      Buffer.from('Date: Fri, 27 Nov 2026 10:00:00 +0000\r\nMessage-ID: <8bit@example.org>\r\nSubject: caf\u00e9 \u2615\r\n\r\n', 'utf8'),
      Buffer.from([0xe9, 0xe8, 0x0d, 0x0a]),
      Buffer.from('y'.repeat(2000) + '\r\n'),
    ]);
    c.write(body);
    assert.match(await c.command('.'), /^250 2\.0\.0 /);
    c.close();
    await daemon.waitForLog((l) => l.event === 'delivery' && l.from === 'eightbit@example.org');
    const got = capture.messages.find((x) => x.sender === 'eightbit@example.org');
    assert.ok(got);
    // The upstream gets lines of at most 998 octets, 8-bit declared with BODY=8BITMIME as the capture offers
    // 8BITMIME (src/message/wire.ts, src/upstreams/session-body.ts), the reader the same text.
    assert.equal(got.mailArgs.BODY, '8BITMIME');
    assert.equal(strictRefusal(got.raw, got.mailArgs.BODY), undefined);
    const parsed = await simpleParser(got.raw);
    assert.equal(parsed.subject, 'caf\u00e9 \u2615');
    assert.equal(parsed.text, '\u00e9\u00e8\n' + 'y'.repeat(2000) + '\n');
  });

  it('10,000 pipelined recipients: the first max_recipients get 250, the rest 452 4.5.3, the message is accepted', async () => {
    const c = await RawSmtp.open(daemon.port);
    await c.reply();
    await c.command('EHLO many.test');
    await c.command('MAIL FROM:<many@example.org>');
    let batch = '';
    for (let i = 0; i < 10_000; i++) batch += `RCPT TO:<r${i}@example.net>\r\n`;
    c.write(batch);
    const replies: string[] = [];
    for (let i = 0; i < 10_000; i++) replies.push(await c.reply());
    assert.equal(replies.filter((r) => r.startsWith('250')).length, 5);
    assert.equal(replies.filter((r) => r.startsWith('452 4.5.3')).length, 9_995);
    assert.match(await c.command('DATA'), /^354/);
    assert.match(await c.command('Subject: many\r\n\r\nhi\r\n.'), /^250 /);
    c.close();
  });

  it('a 100 MB body gets 552 5.3.4 without the daemon holding it in memory', async () => {
    const before = peakRssKb(daemon.child.pid!);
    const c = await transaction('huge@example.org');
    const chunk = Buffer.from(('z'.repeat(998) + '\r\n').repeat(1000)); // ~1 MB
    for (let i = 0; i < 100; i++) {
      if (!c.socket.write(chunk)) await new Promise((r) => c.socket.once('drain', r));
    }
    assert.match(await c.command('.'), /^552 5\.3\.4 /);
    c.close();
    const grown = peakRssKb(daemon.child.pid!) - before;
    assert.ok(grown < 60_000, `peak RSS grew by ${grown} kB for a refused 100 MB message`);
  });

  it('a client that disconnects mid-DATA leaves nothing stored', async () => {
    const c = await transaction('vanishing@example.org');
    c.write('Subject: half\r\n\r\nhalf a message');
    await new Promise((r) => setTimeout(r, 200)); // deliberate: the half message reaches the daemon before the close
    c.close();
    // A later transaction completes after the vanished one's close was handled (one event loop, and
    // the close was sent first): by its "accepted" line, the half message would have been logged.
    const ok = await transaction('after@example.org');
    assert.match(await ok.command('Subject: fine\r\n\r\nstill serving\r\n.'), /^250 /);
    ok.close();
    await daemon.waitForLog((l) => l.event === 'accepted' && l.from === 'after@example.org');
    assert.ok(!daemon.logs.some((l) => l.event === 'accepted' && l.from === 'vanishing@example.org'));
  });

  it('a client that sends nothing is disconnected with 421 after idle_timeout', async () => {
    const c = await RawSmtp.open(daemon.port);
    assert.match(await c.reply(), /^220 /);
    assert.match(await c.reply(8000), /^421 /);
  });

  it('CR or LF inside MAIL FROM (header injection) is refused', async () => {
    const c = await RawSmtp.open(daemon.port);
    await c.reply();
    await c.command('EHLO c');
    assert.match(await c.command('MAIL FROM:<a\rX-Injected: yes@example.org>'), /^501 5\.1\.7 /);
    c.close();
  });

  it('over-long command lines end the session with 421; shorter junk gets 5xx', async () => {
    const c = await RawSmtp.open(daemon.port);
    await c.reply();
    assert.match(await c.command('FOO' + 'x'.repeat(600)), /^5\d\d /);
    assert.match(await c.command('NOOP ' + 'x'.repeat(5000)), /^421 /);
    c.close();
  });

  it('1,000 parallel connections: every one is answered (220 or 421 beyond max_connections) and service continues', async () => {
    // Its own daemon without the suite's 2 s idle_timeout: opening 1,000 connections can take longer
    // than that on a loaded machine, and a greeted client cut off as idle would free its slot for
    // another one, which is right but not what this test counts.
    const own = await startDaemon(writeConfig(dir.path, relayConfig({ spool: `${dir.path}/spool-parallel`, upstreamPort: capture.port, listenExtra: 'max_connections = 50' }), 'parallel.toml'));
    try {
      const opened = await Promise.all(Array.from({ length: 1000 }, () => RawSmtp.open(own.port).catch(() => undefined)));
      const greetings = await Promise.all(opened.map((c) => (c ? c.reply(20_000) : Promise.resolve('refused'))));
      const ok = greetings.filter((g) => g.startsWith('220')).length;
      const busy = greetings.filter((g) => g.startsWith('421')).length;
      assert.ok(ok > 0 && ok <= 50, `${ok} greeted (limit 50)`);
      assert.equal(ok + busy, 1000, `every connection answered: ${ok} ok, ${busy} busy`);
      for (const c of opened) c?.close();
      // The daemon frees the slots as it sees the closes: retry until one greets (with a deadline).
      let t = await RawSmtp.open(own.port);
      for (const deadline = Date.now() + 15_000; !(await t.reply()).startsWith('220');) {
        t.close();
        assert.ok(Date.now() < deadline, 'no 220 within 15 s after the 1,000 connections closed');
        t = await RawSmtp.open(own.port);
      }
      assert.match(await t.command('EHLO survivor.test'), /^250/);
      t.close();
    } finally {
      await own.stop();
    }
  });

  it('fuzz: any command line gets an SMTP reply, and the daemon survives', async () => {
    const line = fc.oneof(
      fc.string({ maxLength: 300 }),
      fc.stringMatching(/^(MAIL FROM|RCPT TO|HELO|EHLO|AUTH|STARTTLS|DATA|BDAT|VRFY|EXPN|XCLIENT):?[ -~]{0,200}$/),
      fc.uint8Array({ maxLength: 300 }).map((b) => Buffer.from(b).toString('latin1')),
    );
    await fc.assert(
      fc.asyncProperty(fc.array(line, { minLength: 1, maxLength: 4 }), async (commands) => {
        const c = await RawSmtp.open(daemon.port);
        try {
          await c.reply();
          for (const command of commands) {
            const clean = command.replace(/[\r\n]/g, ' ');
            c.write(clean + '\r\n');
            const reply = await c.reply(5000);
            if (reply === '') return; // the server closed the session (e.g. 421 after DATA junk): fine
            assert.match(reply, /^\d{3}[ -]/);
            if (/^354/.test(reply)) {
              c.write('.\r\n');
              assert.match(await c.reply(5000), /^\d{3}/);
            }
          }
        } finally {
          c.close();
        }
      }),
      { numRuns: 150 },
    );
    const t = await transaction('post-fuzz@example.org');
    assert.match(await t.command('Subject: ok\r\n\r\nok\r\n.'), /^250 /);
    t.close();
  });
});
