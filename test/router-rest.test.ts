/**
 * Router decisions that the daemon tests cannot observe without timing: an unsupported message
 * waits for a cooling-down upstream instead of bouncing, and Retry-After lengthens the cool-down.
 * The upstreams here are scripted stand-ins for providers (the real REST modules are exercised
 * end to end in test/provider-*.test.ts).
 */
import { bufferBody } from '../src/message/body.js';
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { UpstreamConfig } from '../src/config/types.js';
import { Router } from '../src/delivery/router.js';
import type { AttemptResult, OutboundMessage, RecipientResult, Upstream } from '../src/upstreams/types.js';

class Scripted implements Upstream {
  readonly type = 'scripted';
  calls = 0;
  constructor(
    readonly name: string,
    private readonly answer: AttemptResult,
  ) {}
  async send(message: OutboundMessage): Promise<RecipientResult[]> {
    this.calls++;
    return message.recipients.map((recipient) => ({ recipient, result: this.answer }));
  }
  async close(): Promise<void> {}
}

const config = (name: string): UpstreamConfig => ({ name, type: 'maildir', path: '/nonexistent', matchFrom: [], maxConcurrency: 1, timeout: 1000 });
const retry = { initialDelay: 1000, maxDelay: 60_000, maxAge: 86_400_000 };
const message: OutboundMessage = { id: 'Q1', sender: 'a@example.org', recipients: ['b@example.net'], body: bufferBody(Buffer.from('x')) };

describe('Router with REST outcomes', () => {
  it('waits for a cooling-down upstream rather than bouncing an unsupported message', async () => {
    let now = 0;
    const converted = new Scripted('converted', { kind: 'unsupported', text: 'multipart/signed cannot be sent' });
    const raw = new Scripted('raw', { kind: 'http', provider: 'mailgun', status: 503, text: 'down' });
    const router = new Router([converted, raw], [config('converted'), config('raw')], retry, () => now);
    const first = (await router.deliver(message)).get('b@example.net')!;
    assert.equal(first.outcome, 'transient', 'the raw upstream failed transiently');
    now = 10; // raw is cooling down now; converted is not
    const second = (await router.deliver(message)).get('b@example.net')!;
    assert.equal(raw.calls, 1, 'raw skipped while cooling down');
    assert.equal(second.outcome, 'transient');
    assert.match(second.reply, /waiting for upstream raw \(cooling down\)/);
  });

  it('bounces an unsupported message when no other upstream exists', async () => {
    const only = new Scripted('converted', { kind: 'unsupported', text: 'multipart/signed cannot be sent' });
    const outcome = (await new Router([only], [config('converted')], retry).deliver(message)).get('b@example.net')!;
    assert.equal(outcome.outcome, 'permanent');
    assert.equal(outcome.status, '5.6.3');
  });

  it('keeps an upstream that asked for Retry-After out of rotation at least that long', async () => {
    const now = 0;
    const limited = new Scripted('limited', { kind: 'http', provider: 'resend', status: 429, text: 'slow down', retryAfterMs: 30_000 });
    const router = new Router([limited], [config('limited')], retry, () => now);
    await router.deliver(message);
    assert.equal(router.health()[0]!.coolDownUntil, 30_000, 'Retry-After beats the 1 s initial cool-down');
  });
});
