/** Upstream health: only upstream-level failures cool an upstream down; when all are down, delivery pauses. */
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
    public answer: AttemptResult,
  ) {}
  async send(message: OutboundMessage): Promise<RecipientResult[]> {
    this.calls++;
    return message.recipients.map((recipient) => ({ recipient, result: this.answer }));
  }
  async close(): Promise<void> {}
}

const config = (name: string): UpstreamConfig => ({ name, type: 'maildir', path: '/nonexistent', matchFrom: [], maxConcurrency: 1, timeout: 1000 });
const retry = { initialDelay: 1000, maxDelay: 3_600_000, maxAge: 86_400_000 };
const message: OutboundMessage = { id: 'Q1', sender: 'a@example.org', recipients: ['b@example.net'], body: bufferBody(Buffer.from('x')) };

describe('upstream health', () => {
  const rows: Array<[string, AttemptResult, boolean]> = [
    ['a mailbox 451 at RCPT (greylisting) leaves the upstream healthy', { kind: 'smtp', code: 451, enhanced: '4.7.1', text: 'greylisted', stage: 'rcpt' }, false],
    ['a 550 unknown user leaves it healthy', { kind: 'smtp', code: 550, enhanced: '5.1.1', text: 'no such user', stage: 'rcpt' }, false],
    ['a 421 at connect cools it down', { kind: 'smtp', code: 421, enhanced: '4.7.0', text: 'too busy', stage: 'connect' }, true],
    ['a 451 to MAIL FROM (this message throttled) leaves it healthy', { kind: 'smtp', code: 451, enhanced: '4.7.1', text: 'slow down', stage: 'mail' }, false],
    ['connection refused cools it down', { kind: 'network', errorCode: 'ECONNREFUSED', message: 'refused' }, true],
    ['an auth failure (configuration) cools it down', { kind: 'smtp', code: 535, enhanced: '5.7.8', text: 'bad credentials', stage: 'auth' }, true],
    ['HTTP 503 cools it down', { kind: 'http', status: 503, text: 'unavailable' }, true],
    ['HTTP 422 for one payload leaves it healthy', { kind: 'http', status: 422, text: 'invalid recipient address' }, false],
    ['an unverified sender (this message) leaves it healthy', { kind: 'smtp', code: 554, text: 'Message rejected: Email address is not verified.', stage: 'mail' }, false],
    ['a sender-identity refusal over HTTP leaves it healthy', { kind: 'http', provider: 'sendgrid', status: 403, text: 'The from address does not match a verified Sender Identity' }, false],
    ['"authorized recipients only" leaves it healthy', { kind: 'smtp', code: 550, enhanced: '5.7.1', text: 'Sandbox subdomains: add the address to authorized recipients', stage: 'rcpt' }, false],
    ['relay access denied (no username configured) cools it down', { kind: 'smtp', code: 554, enhanced: '5.7.1', text: 'Relay access denied', stage: 'rcpt' }, true],
    ['a TLS certificate rejection cools it down', { kind: 'tls', errorCode: 'CERT_HAS_EXPIRED', message: 'certificate has expired' }, true],
  ];
  for (const [name, answer, cools] of rows) {
    it(name, async () => {
      const router = new Router([new Scripted('u', answer)], [config('u')], retry, () => 0);
      await router.deliver(message);
      assert.equal(router.health()[0]!.coolDownUntil !== null, cools);
      assert.equal(router.pausedUntil(), undefined, 'one failure does not pause delivery');
      await router.deliver(message);
      await router.deliver(message);
      assert.equal(router.pausedUntil() !== undefined, cools, 'the only upstream failing three times in a row pauses delivery');
    });
  }

  it('relay denied without a username says what is missing', async () => {
    const smtpConfig: UpstreamConfig = { name: 'relay', type: 'smtp', host: 'h', port: 587, tls: 'starttls', matchFrom: [], maxConcurrency: 1, timeout: 1000 };
    const router = new Router([new Scripted('relay', { kind: 'smtp', code: 554, enhanced: '5.7.1', text: '<b@example.net>: Relay access denied', stage: 'rcpt' })], [smtpConfig], retry, () => 0);
    const outcome = (await router.deliver(message)).get('b@example.net')!;
    assert.equal(outcome.outcome, 'config');
    assert.match(outcome.reply, /Relay access denied \(no username is configured for upstream relay: set username and password\)$/);
    assert.match(router.health()[0]!.lastError ?? '', /no username is configured/);
  });

  it('pauses only when every upstream cools down, until the earliest probe time, capped at 5 minutes', async () => {
    let now = 0;
    const down: AttemptResult = { kind: 'network', errorCode: 'ECONNREFUSED', message: 'refused' };
    const a = new Scripted('a', down);
    const b = new Scripted('b', { kind: 'accepted', reply: '250 ok' });
    const router = new Router([a, b], [config('a'), config('b')], retry, () => now);
    assert.equal((await router.deliver(message)).get('b@example.net')!.outcome, 'delivered', 'failed over to b');
    assert.equal(router.pausedUntil(), undefined, 'b is healthy: no pause');
    b.answer = down;
    now = 2000;
    for (let i = 0; i < 20; i++) await router.deliver(message);
    const until = router.pausedUntil();
    assert.ok(until !== undefined && until - now <= 5 * 60_000, `paused until ${until}`);
    router.resetHealth();
    assert.equal(router.pausedUntil(), undefined, 'queue retry / reload forget the cool-downs');
  });
});
