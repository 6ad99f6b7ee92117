/** Delivery fits each message to the upstream's `wire` capability before send (src/message/wire.ts), per upstream. */
import { bufferBody } from '../src/message/body.js';
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { UpstreamConfig } from '../src/config/types.js';
import { Router } from '../src/delivery/router.js';
import type { WireCapability } from '../src/message/wire.js';
import type { AttemptResult, OutboundMessage, RecipientResult, Upstream } from '../src/upstreams/types.js';

class Recording implements Upstream {
  readonly type = 'recording';
  sent: Buffer[] = [];
  constructor(
    readonly name: string,
    readonly wire: WireCapability | undefined,
    private readonly answer: AttemptResult,
  ) {}
  async send(message: OutboundMessage): Promise<RecipientResult[]> {
    this.sent.push(await message.body.buffer());
    return message.recipients.map((recipient) => ({ recipient, result: this.answer }));
  }
  async close(): Promise<void> {}
}

const config = (name: string): UpstreamConfig => ({ name, type: 'maildir', path: '/nonexistent', matchFrom: [], maxConcurrency: 1, timeout: 1000 });
const retry = { initialDelay: 1000, maxDelay: 3_600_000, maxAge: 86_400_000 };
const down: AttemptResult = { kind: 'network', errorCode: 'ECONNREFUSED', message: 'refused' };
const ok: AttemptResult = { kind: 'accepted', reply: '250 ok' };
/** A message as the spool hands it over, with its bytes (`raw`) for the assertions. */
const outbound = (text: string): OutboundMessage & { raw: Buffer } => {
  const raw = Buffer.from(text, 'latin1');
  return { id: 'Q1', sender: 'a@example.org', recipients: ['b@example.net'], raw, body: bufferBody(raw) };
};

describe('delivery and the wire capability', () => {
  it('each upstream gets the message fitted to it, starting from the stored bytes (failover included)', async () => {
    const message = outbound('Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\nGr\xc3\xbc\xc3\x9fe aus dem Rechenzentrum\r\n');
    const sevenBit = new Recording('seven', { eightBit: false }, down);
    const eightBit = new Recording('eight', { eightBit: true }, down);
    const asStored = new Recording('maildir-like', undefined, ok);
    const router = new Router([sevenBit, eightBit, asStored], [config('seven'), config('eight'), config('maildir-like')], retry, () => 0);
    assert.equal((await router.deliver(message)).get('b@example.net')!.outcome, 'delivered');
    assert.match(sevenBit.sent[0]!.toString(), /Content-Transfer-Encoding: quoted-printable\r\n.*\r\n\r\nGr=C3=BC=C3=9Fe aus dem Rechenzentrum\r\n$/s);
    assert.equal(eightBit.sent[0], message.raw, 'correctly declared 8-bit kept for an 8-bit upstream');
    assert.equal(asStored.sent[0], message.raw, 'an upstream without a wire capability gets the stored bytes');
  });

  it("'if-offered' (SMTP, 8BITMIME per session): the stored bytes and delivery's fitting for either kind of session, each form fitted once", async () => {
    const message = outbound('Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\nGr\xc3\xbc\xc3\x9fe aus dem Rechenzentrum\r\n');
    let got: OutboundMessage | undefined;
    const smtp: Upstream = {
      name: 'smtp',
      type: 'recording',
      wire: { eightBit: 'if-offered' },
      async send(m) {
        got = m;
        return m.recipients.map((recipient) => ({ recipient, result: ok }));
      },
      async close() {},
    };
    const router = new Router([smtp], [config('smtp')], retry, () => 0);
    assert.equal((await router.deliver(message)).get('b@example.net')!.outcome, 'delivered');
    assert.equal(await got!.body.buffer(), message.raw);
    const eight = got!.fitFor!(true);
    assert.equal(got!.fitFor!(true), eight, 'fitted once per form');
    assert.equal(((await eight) as { raw: Buffer }).raw, message.raw, 'correctly declared 8-bit kept for a session with 8BITMIME');
    assert.match(((await got!.fitFor!(false)) as { raw: Buffer }).raw.toString(), /Content-Transfer-Encoding: quoted-printable\r\n.*\r\n\r\nGr=C3=BC=C3=9Fe aus dem Rechenzentrum\r\n$/s);
  });

  it('a signed message that cannot be made legal is unsupported everywhere, never sent, and bounces with the reason', async () => {
    const message = outbound('DKIM-Signature: v=1; d=example.org; b=abc\r\nSubject: x\r\n\r\n 10%\r100%\r\n');
    const smtp = new Recording('smtp', { eightBit: false }, ok);
    const router = new Router([smtp], [config('smtp')], retry, () => 0);
    const outcome = (await router.deliver(message)).get('b@example.net')!;
    assert.equal(smtp.sent.length, 0);
    assert.equal(outcome.outcome, 'permanent');
    assert.match(outcome.reply, /signed \(DKIM-Signature\) and contains a CR without LF/);
  });
});
