/** Frames written by any local user (maildrop files) are decoded defensively. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { decodeFrame } from '../src/intake/submission-protocol.js';

describe('maildrop frame decoding', () => {
  it('returns undefined for anything that is not a request object, never throws', () => {
    for (const head of ['null', '123', '"x"', '[]', 'true', '{}', '{"op":5}', '{"op":"submit"}', '{"op":"submit","size":3}', 'not json']) {
      assert.equal(decodeFrame(Buffer.from(`${head}\nabc`)), undefined, head);
    }
    assert.equal(decodeFrame(Buffer.from('no newline at all')), undefined);
  });
});
