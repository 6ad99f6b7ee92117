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
import DataStream from 'nodemailer/lib/smtp-connection/data-stream.js';
import { fastTransform, originalTransform } from '../src/upstreams/nodemailer-adapter.js';
import { SmtpUpstream } from '../src/upstreams/smtp.js';

/** Runs one _transform over the chunks as a DataStream would, collecting what it pushes and its counters. */
function run(transform: typeof fastTransform, chunks: Buffer[]): { out: Buffer[]; inByteCount: number; outByteCount: number; lastByte: number | false } {
  const out: Buffer[] = [];
  const state = { inByteCount: 0, outByteCount: 0, lastByte: false as number | false, push: (b: Buffer) => out.push(Buffer.from(b)) > 0 };
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

  it('is what the SMTP upstream sends with', async () => {
    const upstream = new SmtpUpstream({ name: 'x', type: 'smtp', host: '127.0.0.1', port: 1, tls: 'none', matchFrom: [], maxConcurrency: 1, timeout: 1 }, 'h');
    await upstream.close();
    assert.equal((DataStream.prototype as unknown as { _transform: unknown })._transform, fastTransform);
  });
});
