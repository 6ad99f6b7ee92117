/** src/intake/data-buffer.ts: the stored message is exactly Received: + header + body, assembled without copying the body again where it can be. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { assemble, DataReceiver, HEADROOM, joinWithHeadroom, STREAM_FROM } from '../src/intake/data-buffer.js';
import { normalizeBareLf } from '../src/intake/message-check.js';
import { headerBlock, headerEnd } from '../src/message/headers.js';

describe('DATA buffer', () => {
  it('writes the header in front of the body in place when it fits, else concatenates; always the same bytes (property)', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.uint8Array({ maxLength: 300 }).map((a) => Buffer.from(a)),
          { maxLength: 5 },
        ),
        fc.nat(),
        fc.uint8Array({ maxLength: 400 }),
        fc.oneof(fc.constant(-1), fc.nat({ max: HEADROOM + 200 })),
        (chunks, cut, receivedBytes, newHeaderLength) => {
          const size = chunks.reduce((n, c) => n + c.length, 0);
          const { room, data } = joinWithHeadroom(chunks, size);
          assert.deepEqual(data, Buffer.concat(chunks));
          const end = size === 0 ? 0 : cut % (size + 1);
          const received = Buffer.from(receivedBytes);
          // -1: the header block unchanged (a view of the same memory); else a rebuilt one of that length.
          const header = newHeaderLength === -1 ? data.subarray(0, end) : Buffer.alloc(newHeaderLength, 0x48);
          const expected = Buffer.concat([received, header, data.subarray(end)]);
          const bytes = assemble(received, header, data.subarray(end), room);
          assert.deepEqual(bytes, expected);
          const fits = received.length + header.length <= HEADROOM + end;
          assert.equal(bytes.buffer === room.buffer, fits, fits ? 'assembled in place' : 'concatenated');
        },
      ),
      { numRuns: 1000 },
    );
  });

  it('a body that is not in the room (a bare LF was normalised into a new buffer) is concatenated', () => {
    const { room } = joinWithHeadroom([Buffer.from('a: b\n\nbody\n')], 11);
    const bytes = assemble(Buffer.from('R\r\n'), Buffer.from('a: b\r\n\r\n'), Buffer.from('body\r\n'), room);
    assert.equal(bytes.toString(), 'R\r\na: b\r\n\r\nbody\r\n');
    assert.notEqual(bytes.buffer, room.buffer);
  });
});

describe('DataReceiver: a large DATA passed on as it arrives', () => {
  /** What the sink received: the header block `start` was given, then every later piece. */
  function receive(pieces: Buffer[]) {
    let header: Buffer | undefined;
    const appended: Buffer[] = [];
    const sink = { append: (b: Buffer) => void appended.push(Buffer.from(b)), abort: () => Promise.resolve() };
    const receiver = new DataReceiver((h) => {
      header = Buffer.from(h);
      return sink;
    });
    for (const p of pieces) receiver.push(p);
    return { receiver, result: receiver.end(), header, rest: Buffer.concat(appended) };
  }

  it("passes on exactly the in-memory path's bytes (bare LFs normalised, also when a CR and its LF are in different pieces) and splits the header where it does (property)", () => {
    const unit = fc.array(fc.constantFrom('\r\n', '\n', '\r', 'x', '.', '\xe9', 'word '), { minLength: 1, maxLength: 30 }).map((a) => a.join(''));
    fc.assert(
      fc.property(unit, unit, fc.integer({ min: 500, max: 6000 }), fc.array(fc.integer({ min: 1, max: 30_000 }), { minLength: 1, maxLength: 12 }), (headerText, bodyUnit, repeat, sizes) => {
        const data = Buffer.from(`${headerText}Subject: x\r\n\r\n${bodyUnit.repeat(repeat + 1)}`, 'latin1');
        const pieces: Buffer[] = [];
        for (let at = 0, i = 0; at < data.length; i++) {
          const n = sizes[i % sizes.length]!;
          pieces.push(data.subarray(at, at + n));
          at += n;
        }
        const { receiver, result, header: given, rest } = receive(pieces);
        const normalized = normalizeBareLf(data);
        if ('sink' in result) {
          const end = headerEnd(normalized);
          assert.ok(data.length >= STREAM_FROM);
          assert.deepEqual(given, normalized.subarray(0, end), 'the header block given to start');
          assert.ok(rest.equals(normalized.subarray(end)), 'everything after it, normalised');
          assert.equal(receiver.bareLf, normalized !== data);
        } else {
          assert.ok('data' in result);
          assert.ok(result.data.equals(data), 'kept in memory as received');
        }
        // Passed on from the first piece that brings STREAM_FROM bytes, if the header block ended by then.
        let held = 0;
        const first = pieces.findIndex((p) => (held += p.length) >= STREAM_FROM);
        assert.equal('sink' in result, first !== -1 && headerBlock(data.subarray(0, held)).separated);
      }),
      { numRuns: 300 },
    );
  });

  it('a CR ending one piece and the LF starting the next stay one CRLF; a bare LF there is normalised', () => {
    const head = Buffer.from(`Subject: x\r\n\r\n${'y'.repeat(STREAM_FROM)}\r`, 'latin1');
    const paired = receive([head, Buffer.from('\nz\r\n')]);
    assert.ok(paired.rest.toString('latin1').endsWith('y\r\nz\r\n'));
    assert.equal(paired.receiver.bareLf, false);
    const bare = receive([head.subarray(0, -1), Buffer.from('\nz\r\n')]);
    assert.ok(bare.rest.toString('latin1').endsWith('y\r\nz\r\n'));
    assert.equal(bare.receiver.bareLf, true);
  });
});
