/** Notices as built and routed: NOTIFY policy, the plain-text form for upstreams without multipart/report, the sender per upstream. */
import { bufferBody } from '../src/message/body.js';
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { UpstreamConfig } from '../src/config/types.js';
import { buildDsn, plainTextNotice, wantsNotice } from '../src/delivery/dsn.js';
import { Router } from '../src/delivery/router.js';
import { Metrics } from '../src/metrics/metrics.js';
import type { MessageRecord, RecipientState } from '../src/spool/types.js';
import type { OutboundMessage, RecipientResult, Upstream } from '../src/upstreams/types.js';

const failed: RecipientState = { address: 'gone@example.net', status: 'failed', attempts: 1, history: [], dsnStatus: '5.1.1', lastReply: '550 5.1.1 no such user' };
const record: MessageRecord = {
  id: 'Q1',
  sender: 'cron@example.org',
  recipients: [failed],
  receivedAt: 0,
  size: 10,
  origin: { protocol: 'sendmail' },
  isBounce: false,
  held: false,
  nextAttemptAt: null,
  attempts: 1,
};
const original = Buffer.from('From: cron@example.org\r\nSubject: nightly\r\n\r\nbody\r\n');
const notice = () => buildDsn({ record, failed: [failed], originalMessage: original, hostname: 'relay.test', bounceFrom: 'MAILER-DAEMON@relay.test', now: new Date(0) });

describe('NOTIFY policy (RFC 3461 §4.1)', () => {
  it('without NOTIFY: failures and delays, never successes; NEVER: nothing', () => {
    assert.deepEqual(
      ['failure', 'delay', 'success'].map((k) => wantsNotice({ ...failed }, k as 'failure')),
      [true, true, false],
    );
    assert.deepEqual(
      ['failure', 'delay', 'success'].map((k) => wantsNotice({ ...failed, notify: ['NEVER'] }, k as 'failure')),
      [false, false, false],
    );
    assert.deepEqual(
      ['failure', 'delay', 'success'].map((k) => wantsNotice({ ...failed, notify: ['SUCCESS'] }, k as 'failure')),
      [false, false, true],
    );
  });
});

describe('plain-text notice', () => {
  it('carries the explanation, the report and the original headers as one text/plain body', () => {
    const plain = plainTextNotice(notice())!.toString();
    const head = plain.slice(0, plain.indexOf('\r\n\r\n'));
    const body = plain.slice(head.length + 4);
    assert.match(head, /^From: Mail Delivery System <MAILER-DAEMON@relay\.test>$/m);
    assert.match(head, /^Subject: Undelivered Mail Returned to Sender: nightly$/m);
    assert.match(head, /^Content-Type: text\/plain; charset=us-ascii$/m);
    assert.doesNotMatch(head, /multipart/);
    assert.match(plain, /<gone@example\.net>: 550 5\.1\.1 no such user/);
    assert.match(plain, /Final-Recipient: rfc822; gone@example\.net\r\nAction: failed\r\nStatus: 5\.1\.1/);
    assert.match(body, /Undelivered Message Headers -----\r\n\r\nFrom: cron@example\.org\r\nSubject: nightly/);
  });
});

class JsonApiLike implements Upstream {
  readonly type = 'jsonapi';
  readonly name = 'api';
  sent: OutboundMessage[] = [];
  async send(message: OutboundMessage): Promise<RecipientResult[]> {
    this.sent.push(message);
    const report = /multipart\/report/.test((await message.body.buffer()).toString());
    return message.recipients.map((recipient) => ({ recipient, result: report ? { kind: 'unsupported', text: 'message/delivery-status cannot be expressed' } : { kind: 'accepted', reply: 'ok' } }));
  }
  async close(): Promise<void> {}
}

describe('routing a notice', () => {
  const config: UpstreamConfig = { name: 'api', type: 'maildir', path: '/nonexistent', matchFrom: ['*@relay.test'], maxConcurrency: 1, timeout: 1000 };
  it('through an upstream without multipart/report: sent again as plain text, from bounce_from (no null sender there)', async () => {
    const api = new JsonApiLike();
    const router = new Router([api], [config], { initialDelay: 1000, maxDelay: 1000, maxAge: 1000 });
    const outcomes = await router.deliver({ id: 'D1', sender: '', recipients: ['cron@example.org'], body: bufferBody(notice()), isBounce: true, bounceFrom: 'MAILER-DAEMON@relay.test' });
    assert.equal(outcomes.get('cron@example.org')!.outcome, 'delivered');
    assert.equal(api.sent.length, 2);
    assert.equal(api.sent[1]!.sender, 'MAILER-DAEMON@relay.test', 'match_from saw bounce_from too');
    assert.match((await api.sent[1]!.body.buffer()).toString(), /^Content-Type: text\/plain/m);
  });

  it('a dropped notice is counted in mailshim_bounces_dropped_total', async () => {
    const metrics = new Metrics({
      counts: () => ({ messages: 0, held: 0, byState: { pending: 0, deferred: 0, held: 0 }, recipientsByStatus: {}, oldestReceivedAt: null }),
      upstreamFailures: () => [],
      spoolProblems: () => 0,
    });
    metrics.onAttempt({ isBounce: true, receivedAt: 0, startedAt: 0, finishedAt: 1, recipients: [{ upstream: 'api', outcome: 'permanent', bounced: true }] });
    assert.match(await metrics.text(), /^mailshim_bounces_dropped_total 1$/m);
  });
});
