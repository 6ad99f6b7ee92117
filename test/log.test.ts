/** Secrets never reach the log: redaction by key name (src/log.ts), for any line the daemon writes. */
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { test } from 'node:test';
import { CENSOR, createLogger } from '../src/log.js';

function capture(): { lines: string[]; log: ReturnType<typeof createLogger> } {
  const lines: string[] = [];
  const log = createLogger('info', new Writable({ write: (chunk, _enc, done) => (lines.push(String(chunk)), done()) }));
  return { lines, log };
}

test('secret keys are censored at the top level and one level down, in lines, errors and child bindings; the caller’s objects are untouched', () => {
  const { lines, log } = capture();
  const upstream = { name: 'relay', password: 'pw-nested', api_key: 'key-1', apiKey: 'key-2', secret: 'sec-1', pass: 'pass-1', auth: { user: 'u', pass: 'auth-deep' } };
  const err = Object.assign(new Error('login failed'), { code: 'EAUTH', auth: 'err-auth', password: 'err-pw' });
  log.info({ event: 'x', password: 'pw-top', pass: 'pass-top', auth: { user: 'u2', pass: 'auth-top' }, upstream, recipients: ['a@example.com'] }, 'line');
  log.error({ err, queueId: 'Q1' }, 'failed');
  log.error(err);
  log.child({ upstream: { name: 'c', secret: 'child-secret' } }).warn({ event: 'y' }, 'child');
  const text = lines.join('');
  for (const secret of ['pw-top', 'pass-top', 'auth-top', 'pw-nested', 'key-1', 'key-2', 'sec-1', 'pass-1', 'auth-deep', 'err-auth', 'err-pw', 'child-secret']) {
    assert.ok(!text.includes(secret), `${secret} must not be logged: ${text}`);
  }
  type Line = Record<string, unknown> & { err: Record<string, string> & { stack: string } };
  const [first, second, third, fourth] = lines.map((l) => JSON.parse(l) as Line);
  assert.equal(first!.password, CENSOR);
  assert.equal(first!.auth, CENSOR);
  assert.deepEqual(first!.upstream, { name: 'relay', password: CENSOR, api_key: CENSOR, apiKey: CENSOR, secret: CENSOR, pass: CENSOR, auth: CENSOR });
  assert.deepEqual(first!.recipients, ['a@example.com']);
  // An error stays an error for pino's serializer: type, message, stack and its other fields.
  for (const line of [second!, third!]) {
    assert.equal(line.err.type, 'Error');
    assert.equal(line.err.message, 'login failed');
    assert.match(line.err.stack, /login failed/);
    assert.equal(line.err.code, 'EAUTH');
    assert.equal(line.err.auth, CENSOR);
    assert.equal(line.err.password, CENSOR);
  }
  assert.equal(second!.queueId, 'Q1');
  assert.deepEqual(fourth!.upstream, { name: 'c', secret: CENSOR });
  // Logging copies what it censors: the caller's objects keep their values.
  assert.equal(upstream.password, 'pw-nested');
  assert.equal(err.password, 'err-pw');
});

test('a line without secrets is logged with all of its fields', () => {
  const { lines, log } = capture();
  log.info({ event: 'accepted', queueId: 'Q2', from: 'a@example.com', recipients: ['b@example.com'], size: 10, user: undefined, origin: { client: '127.0.0.1' } }, 'accepted');
  const line = JSON.parse(lines[0]!) as Record<string, unknown>;
  assert.equal(line.queueId, 'Q2');
  assert.deepEqual(line.recipients, ['b@example.com']);
  assert.deepEqual(line.origin, { client: '127.0.0.1' });
  assert.equal(line.msg, 'accepted');
  assert.ok(!('user' in line));
});
