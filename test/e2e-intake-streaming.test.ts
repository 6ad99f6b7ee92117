/**
 * SMTP DATA of a large message goes to its body file as it arrives (src/intake/data-buffer.ts
 * DataReceiver, src/spool/body-files.ts BodyFileWriter): the stored bytes are exactly what the
 * in-memory path builds (bare LFs normalised, Bcc dropped, Date:/Message-ID: added, our Received:
 * in front), and a message that is not accepted — too big, refused, or its client gone — leaves
 * no file and no record. The upstream is down, so what is checked is what the spool holds.
 */
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import { acceptData } from '../src/intake/message-check.js';
import { assemble } from '../src/intake/data-buffer.js';
import { completeHeaders, dropHeaders, headerEnd } from '../src/message/headers.js';
import { runCli } from './helpers/cli.js';
import { relayConfig } from './helpers/config.js';
import { startDaemon, writeConfig, type RunningDaemon } from './helpers/daemon.js';
import { RawSmtp } from './helpers/smtp-client.js';
import { closedPort, tempDir } from './helpers/tmp.js';

/** A header block with a bare LF, a Bcc to drop, no Date: or Message-ID:. */
const HEADER = 'From: Sender <sender@client.test>\nTo: rcpt@example.net\r\nBcc: hidden@example.net\r\nSubject: streamed\r\n\r\n';

/**
 * A body of `lines` lines that has what intake touches or must keep: bare LFs (one right after a
 * CR-less line, one ending a line that starts with a dot), a bare CR, 8-bit bytes, a NUL, a long
 * line, dot-stuffed lines (as sent: ".." → stored "."), varied line lengths so that chunk
 * boundaries fall everywhere.
 */
function body(lines: number): Buffer {
  const parts: string[] = [];
  for (let i = 0; i < lines; i++) {
    const text = `line ${i} ${'abcdefghij'.repeat(i % 9)}`;
    if (i % 97 === 5) parts.push(`${text}\n`);
    else if (i % 101 === 7) parts.push(`..dot ${text}\n`);
    else if (i % 89 === 3) parts.push(`${text}\rcr\r\n`);
    else if (i % 83 === 1) parts.push(`caf\xe9 \x00 ${text}\r\n`);
    else if (i === 500) parts.push(`${'L'.repeat(1500)}\r\n`);
    else parts.push(`${text}\r\n`);
  }
  return Buffer.from(parts.join(''), 'latin1');
}

/** The bytes the client meant (dot-stuffing removed), as the in-memory path would store them with `received`, `date` and `id`. */
function expectedStored(sent: Buffer, received: string, date: Date, id: string): Buffer {
  const data = Buffer.from(sent.toString('latin1').replace(/(^|\n)\.\./g, '$1.'), 'latin1');
  const accepted = acceptData(data, 'normalize') as Buffer;
  const end = headerEnd(accepted);
  const header = completeHeaders(dropHeaders(accepted.subarray(0, end)), { hostname: 'relay.test', queueId: id, now: date });
  return assemble(Buffer.from(received, 'latin1'), header, accepted.subarray(end));
}

async function session(port: number): Promise<RawSmtp> {
  const c = await RawSmtp.open(port);
  await c.reply();
  await c.command('EHLO client.test');
  return c;
}

/** Sends `data` (already dot-stuffed) in pieces of `piece` bytes; returns the reply to the final dot. */
async function send(c: RawSmtp, data: Buffer, piece: number): Promise<string> {
  assert.match(await c.command('MAIL FROM:<sender@client.test>'), /^250/);
  assert.match(await c.command('RCPT TO:<rcpt@example.net>'), /^250/);
  assert.match(await c.command('DATA'), /^354/);
  for (let at = 0; at < data.length; at += piece) {
    c.write(data.subarray(at, at + piece));
    if (at % (piece * 8) === 0) await sleep(1); // let the daemon see pieces, not one coalesced write
  }
  return c.command(data[data.length - 1] === 0x0a ? '.' : '\r\n.');
}

describe('SMTP intake: a large message is written to its file as it arrives', () => {
  let dir: ReturnType<typeof tempDir>;
  let daemon: RunningDaemon;
  let spool: string;
  let config: string;
  const files = () => (existsSync(join(spool, 'bodies')) ? readdirSync(join(spool, 'bodies')) : []);

  before(async () => {
    dir = tempDir();
    spool = `${dir.path}/spool`;
    config = writeConfig(dir.path, relayConfig({ spool, upstreamPort: await closedPort(), retry: { initial: '1h', max: '1h' } }));
    daemon = await startDaemon(config);
  });

  after(async () => {
    await daemon.stop();
    dir.cleanup();
  });

  /** The stored bytes of the message a 250 reply names, from its body file or (small) `queue show --raw`. */
  async function stored(reply: string): Promise<{ id: string; bytes: Buffer }> {
    const id = /queued as (\S+)/.exec(reply)![1]!;
    const file = join(spool, 'bodies', id);
    if (existsSync(file)) return { id, bytes: readFileSync(file) };
    const shown = await runCli(['queue', 'show', '--raw', id, '--config', config]);
    assert.equal(shown.code, 0, shown.stderr);
    return { id, bytes: shown.bytes };
  }

  it('stores the same bytes as the in-memory path: Received: in front, Bcc dropped, Date:/Message-ID: added, bare LFs normalised, the rest as sent', async () => {
    const c = await session(daemon.port);
    try {
      // 60 lines: kept in memory; 6000 lines (~300 kB): written as it arrives, in pieces that split CRLF pairs and lines.
      for (const [lines, piece] of [
        [60, 4096],
        [6000, 7919],
        [6000, 65536],
      ] as const) {
        const sent = Buffer.concat([Buffer.from(HEADER, 'latin1'), body(lines)]);
        const reply = await send(c, sent, piece);
        assert.match(reply, /^250 /);
        const { id, bytes } = await stored(reply);
        assert.equal(files().includes(id), lines > 100, 'a body file exactly for the large message');
        const text = bytes.toString('latin1');
        const received = /^Received: [^]*?\r\n(?![\t ])/.exec(text)![0];
        assert.match(received, new RegExp(`^Received: from client\\.test \\(\\[127\\.0\\.0\\.1\\]\\)\\r\\n\\tby relay\\.test \\(mailshim\\) with ESMTP id ${id}\\r\\n`));
        const date = new Date(/\r\nDate: ([^\r]*)\r\n/.exec(text)![1]!);
        assert.ok(text.includes(`\r\nMessage-ID: <${id}@relay.test>\r\n`));
        assert.ok(!/Bcc:/i.test(text));
        const expected = expectedStored(sent, received, date, id);
        assert.equal(bytes.length, expected.length, `${lines} lines in pieces of ${piece}: size`);
        assert.ok(bytes.equals(expected), `${lines} lines in pieces of ${piece}: the stored bytes`);
      }
    } finally {
      c.close();
    }
  });

  it('too big (552), a mail loop (554) or a vanished client: no file, no record; the session goes on', async () => {
    const before = files().length;
    const c = await session(daemon.port);
    try {
      const big = Buffer.concat([Buffer.from(HEADER, 'latin1'), body(30_000)]); // ~1.5 MB, over max_message_size (1 MB)
      assert.match(await send(c, big, 65536), /^552 5\.3\.4 /);
      const loop = Buffer.concat([Buffer.from('Received: from x by y; Mon, 1 Jan 2024 00:00:00 +0000\r\n'.repeat(50) + HEADER, 'latin1'), body(6000)]);
      assert.match(await send(c, loop, 65536), /^554 5\.4\.6 /);
    } finally {
      c.close();
    }
    const gone = await session(daemon.port);
    await gone.command('MAIL FROM:<sender@client.test>');
    await gone.command('RCPT TO:<rcpt@example.net>');
    await gone.command('DATA');
    gone.write(Buffer.concat([Buffer.from(HEADER, 'latin1'), body(8000)])); // ~400 kB: past the first batch written
    for (const end = Date.now() + 10_000; files().length === before && Date.now() < end;) await sleep(20);
    assert.equal(files().length, before + 1, 'the body file is being written while DATA arrives');
    gone.close();
    const end = Date.now() + 10_000;
    while (files().length > before && Date.now() < end) await sleep(20);
    assert.equal(files().length, before, 'no body file left by any of them');
    const list = await runCli(['queue', 'list', '--json', '--config', config]);
    assert.equal((JSON.parse(list.stdout) as { queue: unknown[] }).queue.length, 3, 'only the three messages of the first test are queued');
  });
});

describe('SMTP intake with bare_newline = "reject": a large message with a bare LF', () => {
  it('is refused with 550 5.5.2 after its DATA, leaving no file; the same message with CRLF is accepted', async () => {
    const dir = tempDir();
    const spool = `${dir.path}/spool`;
    const daemon = await startDaemon(writeConfig(dir.path, relayConfig({ spool, upstreamPort: await closedPort(), listenExtra: 'bare_newline = "reject"', retry: { initial: '1h', max: '1h' } })));
    try {
      const c = await session(daemon.port);
      const crlf = Buffer.from(`Subject: strict\r\n\r\n${'y'.repeat(70)}\r\n`.repeat(5000), 'latin1');
      const bare = Buffer.concat([crlf, Buffer.from('a bare LF\nnear the end\r\n', 'latin1')]);
      assert.match(await send(c, bare, 65536), /^550 5\.5\.2 /);
      assert.match(await send(c, crlf, 65536), /^250 /);
      c.close();
      assert.equal(readdirSync(join(spool, 'bodies')).length, 1, 'only the accepted message has a file');
    } finally {
      await daemon.stop();
      dir.cleanup();
    }
  });
});
