/** src/intake/data-buffer.ts: the stored message is exactly Received: + header + body, assembled without copying the body again where it can be. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { assemble, HEADROOM, joinWithHeadroom } from '../src/intake/data-buffer.js';

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
