/** Password checks (src/auth/passwords.ts): correct answers, one scrypt at a time, a bounded queue. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { hashPassword, passwordChecks, verifyPassword } from '../src/auth/passwords.js';
import { AuthBusyError } from '../src/errors.js';

describe('password checks', () => {
  it('accepts the right password and refuses a wrong one or an unknown user', async () => {
    const hash = await hashPassword('right', { ln: 10, r: 8, p: 1 });
    assert.equal(await verifyPassword('right', hash), true);
    assert.equal(await verifyPassword('wrong', hash), false);
    assert.equal(await verifyPassword('right', undefined), false);
  });

  it('runs one check at a time and refuses (AuthBusyError) beyond a bounded queue, so guessers cannot fill the threadpool', async () => {
    const hash = await hashPassword('right', { ln: 10, r: 8, p: 1 });
    let most = 0;
    const sample = setInterval(() => (most = Math.max(most, passwordChecks.active)), 1);
    const results = await Promise.allSettled(Array.from({ length: 40 }, () => verifyPassword('guess', hash)));
    clearInterval(sample);
    const busy = results.filter((r) => r.status === 'rejected' && r.reason instanceof AuthBusyError).length;
    const answered = results.filter((r) => r.status === 'fulfilled').length;
    assert.equal(most, 1, 'never more than one scrypt at once');
    assert.equal(answered, 17, 'one running plus sixteen queued are answered');
    assert.equal(busy, 23, 'the rest are told to come back later');
    assert.equal(passwordChecks.active, 0);
    assert.equal(passwordChecks.queued, 0);
  });
});
