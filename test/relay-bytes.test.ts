/**
 * What goes on the wire when a spooled 1 MB body is relayed over SMTP (spool body file → nodemailer
 * → a raw SMTP sink that records the DATA bytes as sent, dot-stuffing included): exactly the bytes
 * nodemailer's own DataStream rules make of the stored body, for a wire-clean body (which takes the
 * CRLF-only dot-stuffing, src/upstreams/nodemailer-adapter.ts) and for bodies with bare CR, bare LF
 * and 8-bit bytes (which take the general one), with dots at line starts everywhere and every
 * awkward sequence placed across the body file's 64 KiB read boundaries. A damaged body file never
 * gets its final ".": the checksum is checked before the last chunk is passed on.
 */
import assert from 'node:assert/strict';
import { closeSync, openSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import DataStream from 'nodemailer/lib/smtp-connection/data-stream.js';
import { Spool } from '../src/spool/spool.js';
import { fastTransform, originalTransform } from '../src/upstreams/nodemailer-adapter.js';
import { SmtpUpstream } from '../src/upstreams/smtp.js';
import { startStrictSink, type StrictSink } from './helpers/strict-sink.js';
import { tempDir } from './helpers/tmp.js';

const MB = 1 << 20;
/** The body file's read size (src/spool/body-files.ts CHUNK). */
const READ = 64 * 1024;

/**
 * A 1 MB message of lines from `lines`, with one of `straddle` at every 64 KiB read boundary: the
 * part before its "|" ends one read, the rest begins the next (a line of "f" fills up to it).
 */
function body(lines: string[], straddle: string[]): Buffer {
  const out = Buffer.alloc(MB);
  let at = 0;
  const put = (text: string) => (at += out.write(text, at, 'latin1'));
  put('Subject: relay bytes\r\n\r\n');
  for (let k = 1, n = 0; ; n++) {
    const line = lines[n % lines.length]!;
    const [pre, post] = straddle[(k - 1) % straddle.length]!.split('|') as [string, string];
    const boundary = k * READ;
    if (boundary < MB && at + line.length + pre.length + 100 > boundary) {
      put('f'.repeat(boundary - at - pre.length) + pre);
      assert.equal(at, boundary);
      put(post);
      k++;
    } else if (at + line.length + 2 <= MB) put(line);
    else break;
  }
  put('e'.repeat(MB - 2 - at) + '\r\n');
  assert.equal(at, MB);
  return out;
}

/** nodemailer's own rules (its shipped DataStream._transform) over the whole body, as the DATA the sink records (up to the CRLF before "."). */
function expectedData(bytes: Buffer): Buffer {
  const out: Buffer[] = [];
  const state = { inByteCount: 0, outByteCount: 0, lastByte: false as number | false, push: (b: Buffer) => out.push(Buffer.from(b)) > 0 };
  originalTransform.call(state, bytes, 'binary', () => {});
  const tail = state.lastByte === 0x0a ? '' : state.lastByte === 0x0d ? '\n' : '\r\n';
  return Buffer.concat([...out, Buffer.from(tail)]);
}

const DOTTY = ['.\r\n', '..leading dots\r\n', `${'x'.repeat(76)}\r\n`, '.a line that starts with a dot\r\n', 'mid.dle\r\n', '\r\n'];

describe('relaying a 1 MB spooled body over SMTP', () => {
  let sink: StrictSink;
  let dir: ReturnType<typeof tempDir>;
  let spool: Spool;
  let upstream: SmtpUpstream;
  /** `crlfOnly` of every DataStream chunk transformed, to see which dot-stuffing ran. */
  const modes: Array<boolean | undefined> = [];
  const proto = DataStream.prototype as unknown as { _transform: typeof fastTransform };

  before(async () => {
    sink = await startStrictSink({ extensions: ['8BITMIME', 'PIPELINING'] });
    dir = tempDir();
    spool = Spool.open(join(dir.path, 'spool'));
    upstream = new SmtpUpstream({ name: 'sink', type: 'smtp', host: '127.0.0.1', port: sink.port, tls: 'none', matchFrom: [], maxConcurrency: 1, timeout: 30_000 }, 'relay.test');
    assert.equal(proto._transform, fastTransform, 'the adapter is installed');
    proto._transform = function (this: ThisParameterType<typeof fastTransform>, ...args: Parameters<typeof fastTransform>) {
      modes.push(this.crlfOnly);
      return fastTransform.apply(this, args);
    };
  });
  after(async () => {
    proto._transform = fastTransform;
    await upstream.close();
    await spool.close();
    await sink.close();
    dir.cleanup();
  });

  /** Spools `bytes` (a body file), relays it, returns the result and the DATA the sink recorded. */
  async function relay(bytes: Buffer, damage?: (path: string) => void) {
    const id = await spool.accept({ sender: 'a@example.org', recipients: ['b@example.net'] }, bytes, { origin: { protocol: 'esmtp' } });
    const record = spool.get(id)!;
    assert.ok(record.bodyFile, 'a 1 MB body is a body file');
    damage?.(join(dir.path, 'spool', 'bodies', id));
    const opened = spool.openBody(record);
    assert.ok(!('problem' in opened));
    const before = sink.transactions.length;
    modes.length = 0;
    try {
      const results = await upstream.send({ id, sender: 'a@example.org', recipients: ['b@example.net'], body: opened });
      return { results, data: sink.transactions[before]?.data, wireClean: opened.wireClean, damage: opened.damage, modes: [...new Set(modes)] };
    } finally {
      opened.close();
    }
  }

  it('a wire-clean body with dots at line starts and across read boundaries: the stored bytes, stuffed as nodemailer stuffs them (CRLF-only path)', async () => {
    // Boundaries between CR and LF, between LF and a dot, and a dot line cut after its dot.
    const bytes = body(DOTTY, ['x\r|\n.x\r\n', 'x\r\n|..\r\n', 'x\r\n.|.\r\n', 'x\r\n.|\r\n.\r\n']);
    const sent = await relay(bytes);
    assert.equal(sent.wireClean, true);
    assert.deepEqual(sent.modes, [true], 'the CRLF-only dot-stuffing ran');
    assert.equal(sent.results[0]!.result.kind, 'accepted', JSON.stringify(sent.results));
    assert.ok(sent.data!.equals(expectedData(bytes)), 'byte-exact: nodemailer would have sent the same');
    assert.ok(sent.data!.includes('\r\n..x\r\n') && sent.data!.includes('\r\n...\r\n') && sent.data!.includes('\r\n..\r\n'));
  });

  it('bare CR, bare LF and 8-bit bytes, also across read boundaries: the general path, the same bytes as nodemailer', async () => {
    const lines = [...DOTTY, 'bare LF\n.after it\r\n', 'bare CR\r.after it\r\n', 'CR CR LF\r\r\n', '\xe9t\xe9 8-bit\r\n', 'end in CR\r'];
    const bytes = body(lines, ['\r|.\r\n', '\n|.\n', '\r|\r\n', '\n\r|.\r\n', '\xff\r\n|.\r\n', '\r|\n.\r\n']);
    const sent = await relay(bytes);
    assert.equal(sent.wireClean, false);
    assert.deepEqual(sent.modes, [undefined], 'the general dot-stuffing ran');
    assert.equal(sent.results[0]!.result.kind, 'accepted', JSON.stringify(sent.results));
    assert.ok(sent.data!.equals(expectedData(bytes)), 'byte-exact: nodemailer would have sent the same');
  });

  it('a damaged body file never gets its final ".": the checksum fails the stream before the last chunk', async () => {
    const bytes = body(DOTTY, ['x\r|\n.x\r\n']);
    const sent = await relay(bytes, (path) => {
      const fd = openSync(path, 'r+');
      writeSync(fd, Buffer.from('Z'), 0, 1, MB - 1000); // inside the last read: only the checksum can tell
      closeSync(fd);
    });
    assert.notEqual(sent.results[0]!.result.kind, 'accepted', JSON.stringify(sent.results));
    assert.match(sent.damage ?? '', /checksum mismatch/);
    assert.equal(sent.data, undefined, 'the sink never saw the end of the data');
  });
});
