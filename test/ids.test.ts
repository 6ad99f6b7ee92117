/** Queue ids and submit tokens (src/spool/ids.ts): format, time order, and no repeats across the read-ahead pool. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isQueueId, isSubmitToken, newQueueId, newSubmitToken } from '../src/spool/ids.js';

test('queue ids are well-formed, ordered by time, and never repeat (also across refills of the random pool)', () => {
  const ids = new Set<string>();
  for (let i = 0; i < 5000; i++) {
    const id = newQueueId(1_764_300_000_000);
    assert.ok(isQueueId(id), id);
    ids.add(id);
  }
  assert.equal(ids.size, 5000);
  // The first nine characters are the time, most significant first: later ids sort after earlier ones.
  assert.equal(newQueueId(1_764_300_000_000).slice(0, 9), '223XZY01T');
  assert.ok(newQueueId(1_764_300_000_001) > newQueueId(1_764_300_000_000).slice(0, 9) + 'ZZZZZZZ');
  const tokens = new Set<string>();
  for (let i = 0; i < 1000; i++) tokens.add(newSubmitToken());
  assert.equal(tokens.size, 1000);
  for (const token of tokens) assert.ok(isSubmitToken(token));
});
