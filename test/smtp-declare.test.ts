/**
 * What the SMTP upstream declares in MAIL FROM / RCPT TO (SIZE, BODY=8BITMIME, SMTPUTF8, DSN
 * parameters, the null sender), checked by a strict sink that holds the client to the RFCs; and
 * how a reset TLS handshake is classified (by code: the network, not our configuration).
 */
import { bufferBody } from '../src/message/body.js';
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { SmtpUpstreamConfig } from '../src/config/types.js';
import { classify } from '../src/delivery/classify.js';
import { SmtpUpstream } from '../src/upstreams/smtp.js';
import type { OutboundMessage } from '../src/upstreams/types.js';
import { startStrictSink, type SinkOptions } from './helpers/strict-sink.js';

const ALL = ['SIZE 100000', '8BITMIME', 'SMTPUTF8', 'DSN'];

async function withSink<T>(options: SinkOptions, run: (upstream: SmtpUpstream, sink: Awaited<ReturnType<typeof startStrictSink>>) => Promise<T>, tls: SmtpUpstreamConfig['tls'] = 'none'): Promise<T> {
  const sink = await startStrictSink(options);
  const config: SmtpUpstreamConfig = { name: 'sink', type: 'smtp', host: '127.0.0.1', port: sink.port, tls, matchFrom: [], maxConcurrency: 1, timeout: 5000 };
  const upstream = new SmtpUpstream(config, 'relay.test');
  try {
    return await run(upstream, sink);
  } finally {
    await upstream.close();
    await sink.close();
  }
}

const message = (body: string, extra: Partial<OutboundMessage> = {}): OutboundMessage => ({
  id: 'Q1',
  sender: 'cron@example.org',
  recipients: ['ops@example.net'],
  body: bufferBody(Buffer.from(`From: cron@example.org\r\nTo: ops@example.net\r\nSubject: t\r\n\r\n${body}\r\n`, 'utf8')),
  ...extra,
});

describe('SMTP upstream: MAIL FROM declarations', () => {
  it('declares BODY=8BITMIME and SIZE for an 8-bit message; the strict sink accepts it', async () => {
    await withSink({ extensions: ALL }, async (upstream, sink) => {
      const m = message('Grüße aus Köln');
      const [r] = await upstream.send(m);
      assert.equal(r!.result.kind, 'accepted', JSON.stringify(r!.result));
      const mail = sink.transactions[0]!.mail;
      assert.match(mail, / BODY=8BITMIME\b/);
      assert.match(mail, new RegExp(` SIZE=${m.body.size}\\b`));
    });
  });

  it('declares no BODY for a 7-bit message, and nothing the server did not advertise', async () => {
    await withSink({ extensions: ['8BITMIME'] }, async (upstream, sink) => {
      const [r] = await upstream.send(message('plain ascii'));
      assert.equal(r!.result.kind, 'accepted');
      assert.equal(sink.transactions[0]!.mail, 'MAIL FROM:<cron@example.org>');
    });
  });

  it('an oversize message is refused from the EHLO SIZE before any data is uploaded: bounced 5.3.4', async () => {
    await withSink({ extensions: ['SIZE 200', '8BITMIME'] }, async (upstream, sink) => {
      const [r] = await upstream.send(message('x'.repeat(1000)));
      const c = classify(r!.result);
      assert.equal(c.outcome, 'permanent');
      assert.equal(c.status, '5.3.4');
      assert.ok(!sink.commands.some((l) => /^DATA/i.test(l)), `no DATA was sent: ${sink.commands.join(' | ')}`);
    });
  });

  it('declares SMTPUTF8 for an internationalised address', async () => {
    await withSink({ extensions: ALL }, async (upstream, sink) => {
      const [r] = await upstream.send(message('hi', { recipients: ['jörg@example.net'] }));
      assert.equal(r!.result.kind, 'accepted');
      assert.match(sink.transactions[0]!.mail, / SMTPUTF8\b/);
    });
  });

  it('sends a bounce from the null reverse-path <>', async () => {
    assert.equal(new SmtpUpstream({ name: 'x', type: 'smtp', host: 'h', port: 1, tls: 'none', matchFrom: [], maxConcurrency: 1, timeout: 1 }, 'h').acceptsNullSender, true);
    await withSink({ extensions: ALL }, async (upstream, sink) => {
      const [r] = await upstream.send(message('bounce', { sender: '' }));
      assert.equal(r!.result.kind, 'accepted');
      assert.match(sink.transactions[0]!.mail, /^MAIL FROM:<> /);
    });
  });

  it('passes RET, ENVID, NOTIFY and ORCPT to a server that offers DSN, one transaction per distinct NOTIFY/ORCPT', async () => {
    await withSink({ extensions: ALL }, async (upstream, sink) => {
      const results = await upstream.send(
        message('dsn', {
          recipients: ['a@example.net', 'b@example.net', 'c@example.net'],
          dsn: { ret: 'HDRS', envid: 'env 1', recipients: { 'a@example.net': { notify: ['NEVER'] }, 'b@example.net': { notify: ['SUCCESS', 'FAILURE'], orcpt: 'rfc822;b@example.net' } } },
        }),
      );
      assert.deepEqual(
        results.map((r) => r.result.kind),
        ['accepted', 'accepted', 'accepted'],
      );
      const rcpts = sink.transactions.flatMap((t) => t.rcpt).sort();
      assert.deepEqual(rcpts, ['RCPT TO:<a@example.net> NOTIFY=NEVER', 'RCPT TO:<b@example.net> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;b@example.net', 'RCPT TO:<c@example.net>']);
      for (const t of sink.transactions) assert.match(t.mail, / RET=HDRS ENVID=env\+201\b/);
    });
  });

  it('does not send DSN parameters to a server without DSN', async () => {
    await withSink({ extensions: ['8BITMIME'] }, async (upstream, sink) => {
      const [r] = await upstream.send(message('x', { dsn: { ret: 'FULL', recipients: { 'ops@example.net': { notify: ['NEVER'] } } } }));
      assert.equal(r!.result.kind, 'accepted');
      assert.deepEqual(sink.transactions[0]!.rcpt, ['RCPT TO:<ops@example.net>']);
    });
  });
});

describe('SMTP upstream: TLS failures are classified by error code', () => {
  it('a connection reset during the STARTTLS handshake is transient (the network), not a configuration error', async () => {
    await withSink(
      { extensions: ['8BITMIME'], resetOnStarttls: true },
      async (upstream) => {
        const [r] = await upstream.send(message('x'));
        const c = classify(r!.result);
        assert.equal(c.outcome, 'transient', JSON.stringify(r!.result));
      },
      'starttls',
    );
  });
});
