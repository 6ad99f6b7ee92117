/**
 * The nodemailer adapter (src/upstreams/nodemailer-adapter.ts): the indexOf-based dot-stuffing
 * writes exactly the bytes nodemailer's own per-byte loop writes, for any input cut into any
 * chunks (so the smuggling-safe rules stay nodemailer's), it is what the SMTP upstream uses, and
 * an upgrade of nodemailer that changes the replaced method fails here instead of silently
 * running our copy of old rules.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { PassThrough, Readable } from 'node:stream';
import DataStream from 'nodemailer/lib/smtp-connection/data-stream.js';
import SMTPConnection from 'nodemailer/lib/smtp-connection/index.js';
import { adaptNodemailer, fastTransform, originalTransform, sessionSend, type SessionBodyEnvelope } from '../src/upstreams/nodemailer-adapter.js';
import { SmtpUpstream } from '../src/upstreams/smtp.js';
import { startCapture } from './helpers/capture.js';

/** Runs one _transform over the chunks as a DataStream would, collecting what it pushes and its counters. */
function run(transform: typeof fastTransform, chunks: Buffer[], crlfOnly?: boolean): { out: Buffer[]; inByteCount: number; outByteCount: number; lastByte: number | false } {
  const out: Buffer[] = [];
  const state = { inByteCount: 0, outByteCount: 0, lastByte: false as number | false, crlfOnly, push: (b: Buffer) => out.push(Buffer.from(b)) > 0 };
  for (const chunk of chunks) transform.call(state, chunk, 'binary', () => {});
  return { out, inByteCount: state.inByteCount, outByteCount: state.outByteCount, lastByte: state.lastByte };
}

/** Bytes that matter to the rules, often, and any other byte. */
const byte = fc.oneof(fc.constantFrom(0x0d, 0x0a, 0x2e, 0x61), fc.integer({ min: 0, max: 255 }));

describe('nodemailer adapter: dot-stuffing', () => {
  it('pins the nodemailer code it replaces: DataStream._transform with its per-byte rules', () => {
    const require = createRequire(import.meta.url);
    const file = require.resolve('nodemailer/lib/smtp-connection/data-stream.js').replace('/cjs/', '/esm/');
    const source = readFileSync(file, 'utf8');
    const review = 'nodemailer changed DataStream: review src/upstreams/nodemailer-adapter.ts (the rules may have changed, or it may be fast upstream)';
    assert.match(source, /if \(prev === 0x0d && byte !== 0x0a\) \{[\s\S]*?insert = byte === 0x2e \? INSERT_LF_DOT : INSERT_LF;/, review);
    assert.match(source, /else if \(byte === 0x0a && prev !== 0x0d\) \{\s*(\/\/[^\n]*\s*)*insert = INSERT_CR;/, review);
    assert.match(source, /else if \(byte === 0x2e && \(prev === 0x0a \|\| prev === false\)\) \{\s*(\/\/[^\n]*\s*)*insert = INSERT_DOT;/, review);
    assert.match(source, /this\.lastByte = chunk\[chunk\.length - 1\];/, review);
  });

  it('writes the same bytes, chunk for chunk, as nodemailer for any input and chunking (property)', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.uint8Array({ maxLength: 40 }).map((a) => Buffer.from(a)),
          { maxLength: 6 },
        ),
        fc.array(byte, { maxLength: 200 }),
        (cuts, bytes) => {
          // Either the generated chunks or one buffer of the dense bytes cut at arbitrary points.
          const dense = Buffer.from(bytes);
          const chunks = [...cuts, dense.subarray(0, bytes.length >> 1), dense.subarray(bytes.length >> 1)];
          assert.deepEqual(run(fastTransform, chunks), run(originalTransform, chunks));
        },
      ),
      { numRuns: 2000 },
    );
  });

  it('stuffs the cases that matter for smuggling exactly as nodemailer does', () => {
    for (const text of ['.\r\n', 'a\r\n.\r\n', 'a\r.\r', 'a\n.\n', 'a\r\n..b\r\n', '\r\r\n\n.', 'x\r', '.']) {
      const chunks = [Buffer.from(text, 'latin1')];
      assert.deepEqual(run(fastTransform, chunks), run(originalTransform, chunks), JSON.stringify(text));
    }
    assert.equal(Buffer.concat(run(fastTransform, [Buffer.from('a\r.\rb')]).out).toString(), 'a\r\n..\r\nb');
  });

  it('CRLF-only input (no bare CR or LF), any chunking: the CRLF-only path writes what nodemailer writes (property)', () => {
    const line = fc.array(
      fc.oneof(
        fc.constantFrom(0x2e, 0x61, 0x2e),
        fc.integer({ min: 0, max: 255 }).filter((b) => b !== 0x0d && b !== 0x0a),
      ),
      { maxLength: 12 },
    );
    fc.assert(
      fc.property(fc.array(line, { maxLength: 20 }), fc.array(fc.nat(), { maxLength: 6 }), (lines, cuts) => {
        const bytes = Buffer.from(lines.flatMap((l) => [...l, 0x0d, 0x0a]));
        const at = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
        const chunks = [0, ...at].map((from, i) => bytes.subarray(from, [...at, bytes.length][i]));
        assert.deepEqual(run(fastTransform, chunks, true), run(originalTransform, chunks));
      }),
      { numRuns: 2000 },
    );
  });

  it('input that breaks the CRLF-only promise: every dot at the start, after a CR or after an LF is still stuffed (property)', () => {
    fc.assert(
      fc.property(fc.array(byte, { maxLength: 200 }), fc.nat(), (bytes, cut) => {
        const dense = Buffer.from(bytes);
        const at = cut % (dense.length + 1);
        const sent = Buffer.concat(run(fastTransform, [dense.subarray(0, at), dense.subarray(at)], true).out);
        // The reference: "." before a dot at the start or after LF, "\n." before a dot after CR; the
        // first byte of a chunk gets all of nodemailer's rules (a bare LF there gains its CR, a
        // byte after a bare CR its LF); no other line end is touched.
        const expected: number[] = [];
        dense.forEach((b, i) => {
          const prev = i ? dense[i - 1] : undefined;
          if (b === 0x2e && prev === 0x0d) expected.push(0x0a, 0x2e);
          else if (b === 0x2e && (prev === undefined || prev === 0x0a)) expected.push(0x2e);
          else if (i === 0 || i === at) {
            if (prev === 0x0d && b !== 0x0a) expected.push(0x0a);
            else if (b === 0x0a && prev !== 0x0d) expected.push(0x0d);
          }
          expected.push(b);
        });
        assert.deepEqual([...sent], expected);
      }),
      { numRuns: 2000 },
    );
  });

  it('is what the SMTP upstream sends with', async () => {
    const upstream = new SmtpUpstream({ name: 'x', type: 'smtp', host: '127.0.0.1', port: 1, tls: 'none', matchFrom: [], maxConcurrency: 1, timeout: 1 }, 'h');
    await upstream.close();
    assert.equal((DataStream.prototype as unknown as { _transform: unknown })._transform, fastTransform);
    assert.equal((SMTPConnection.prototype as unknown as { send: unknown }).send, sessionSend);
  });
});

describe('nodemailer adapter: the bytes chosen per session', () => {
  it('pins the nodemailer code it relies on: extensions from the last EHLO, SIZE and BODY read in send, the pool envelope and its unsent-message check', () => {
    const require = createRequire(import.meta.url);
    const esm = (path: string) => readFileSync(require.resolve(path).replace('/cjs/', '/esm/'), 'utf8');
    const review = 'nodemailer changed what the per-session body relies on: review sessionSend in src/upstreams/nodemailer-adapter.ts';
    const connection = esm('nodemailer/lib/smtp-connection/index.js');
    assert.match(connection, /send\(envelope, message, done\) \{/, review);
    assert.match(connection, /if \(this\._maxAllowedSize && envelope\.size > this\._maxAllowedSize\)/, review);
    assert.match(connection, /this\._envelope = \(envelope \|\| \{\}\);/, review);
    assert.match(connection, /if \(this\._envelope\.use8BitMime && this\._supportedExtensions\.includes\('8BITMIME'\)\) \{\s*args\.push\('BODY=8BITMIME'\);/, review);
    assert.match(connection, /if \(\/\[ -\]8BITMIME\\b\/im\.test\(str\)\) \{\s*this\._supportedExtensions\.push\('8BITMIME'\);/, review);
    // STARTTLS: the plaintext EHLO's extensions are not parsed, the one after TLS is.
    assert.match(connection, /this\._plaintextEhlo = str;\s*this\._sendCommand\('STARTTLS'\);/, review);
    const pool = esm('nodemailer/lib/smtp-pool/pool-resource.js');
    assert.match(pool, /const envelope = mail\.message\.getEnvelope\(\);/, review);
    assert.match(pool, /const messageStream = mail\.message\.createReadStream\(\);\s*this\.connection\.send\(envelope, messageStream,/, review);
    assert.match(pool, /messageStream\.readableDidRead === false/, review);
    const node = esm('nodemailer/lib/mime-node/index.js');
    assert.match(node, /shared\.copyOwnKeys\(this\._envelope, envelope, key => standardFields\.includes\(key\)\);/, review);
  });

  it("sends the session's bytes in place of nodemailer's stream, which is read only once they flow (a refused envelope leaves it unread)", async () => {
    adaptNodemailer();
    const capture = await startCapture({ hide8BITMIME: true });
    capture.script.rcpt = new Map([['refused@example.net', [550, '5.1.1 no such user']]]);
    const connection = new SMTPConnection({ host: '127.0.0.1', port: capture.port, ignoreTLS: true });
    try {
      await new Promise<void>((resolve, reject) => {
        connection.once('error', reject);
        connection.connect(() => resolve());
      });
      const asked: string[][] = [];
      const chosen = Buffer.from('Subject: chosen for this session\r\n\r\nbody\r\n');
      const sessionBody = async (extensions: readonly string[]) => {
        asked.push([...extensions]);
        return { raw: Readable.from([chosen]), size: chosen.length, use8BitMime: false };
      };
      const send = (to: string, given: PassThrough) =>
        new Promise<unknown>((resolve, reject) => {
          const envelope: SessionBodyEnvelope = { from: 'a@example.org', to, sessionBody };
          connection.send(envelope, given, (error, info) => (error ? reject(error) : resolve(info)));
        });
      const given = () => new PassThrough().end('Subject: what nodemailer built\r\n\r\nbody\r\n');

      const refused = given();
      await assert.rejects(send('refused@example.net', refused), /no such user/);
      assert.equal(refused.readableDidRead, false, 'not a byte was sent: the pool may retry it elsewhere');
      await new Promise<void>((resolve, reject) => connection.reset((error) => (error ? reject(error) : resolve())));

      const accepted = given();
      await send('ok@example.net', accepted);
      assert.equal(accepted.readableDidRead, true);
      assert.ok(capture.messages[0]!.raw.equals(chosen), 'the chosen bytes were sent');
      assert.deepEqual(asked[1], (connection as unknown as { _supportedExtensions: string[] })._supportedExtensions);
      assert.ok(!asked[1].includes('8BITMIME'));
    } finally {
      connection.close();
      await capture.close();
    }
  });
});
