/**
 * Provider events against the real spool (LMDB in a temp dir) and the recorder
 * (src/delivery/provider-events.ts): what the spool retains when an upstream accepts a recipient,
 * how an event is matched, the one failure notice per recipient committed with its mark (and
 * neither when the transaction fails), NOTIFY=NEVER and the null sender, complaints, unknown ids,
 * pruning by age and by count, and sentSince for pollers.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { simpleParser } from 'mailparser';
import type { RestUpstreamConfig } from '../src/config/types.js';
import { listSent, ProviderEventRecorder, type ProviderEventSettings, type RecordedEvents } from '../src/delivery/provider-events.js';
import type { ProviderEvent } from '../src/events/types.js';
import { createLogger } from '../src/log.js';
import { cappedHeaders, retentionOf } from '../src/spool/sent.js';
import { Spool } from '../src/spool/spool.js';
import type { MessageDsn } from '../src/spool/types.js';
import { tempDir } from './helpers/tmp.js';
import { deliveryStatus } from './helpers/dsn-report.js';

const RAW = Buffer.from('From: Alice <alice@example.org>\r\nTo: bob@example.net, carol@example.com\r\nSubject: Quarterly report\r\nMessage-ID: <q3@example.org>\r\n\r\nthe body, never retained\r\n');
const MAILGUN = { name: 'mg', type: 'mailgun' } as RestUpstreamConfig;
const SETTINGS: ProviderEventSettings = { hostname: 'relay.test', bounceFrom: 'postmaster@relay.test', complaintsToAdmin: false };

function openSpool(t: { after: (fn: () => unknown) => void }, retention = { ms: 86_400_000, max: 1000 }): Spool {
  const dir = tempDir();
  const spool = Spool.open(dir.path, { retention });
  t.after(async () => {
    await spool.close();
    dir.cleanup();
  });
  return spool;
}

/** A message accepted and then delivered by upstream `mg`: one provider id for the message, as Mailgun answers. */
async function sendThrough(spool: Spool, options: { sender?: string; dsn?: MessageDsn; ids?: Record<string, string>; deliver?: string[] } = {}): Promise<string> {
  const recipients = ['bob@example.net', 'carol@example.com'];
  const id = await spool.accept({ sender: options.sender ?? 'alice@example.org', recipients }, RAW, { origin: { protocol: 'esmtp' }, messageId: '<q3@example.org>', dsn: options.dsn });
  await spool.update(id, (record) => {
    for (const r of record.recipients) {
      if (options.deliver && !options.deliver.includes(r.address)) {
        r.status = 'deferred';
        continue;
      }
      r.status = 'delivered';
      r.upstream = 'mg';
      r.lastAttemptAt = Date.now();
      r.lastReply = 'HTTP 200';
      r.providerMessageId = options.ids?.[r.address] ?? `${id}.1@mg.example.org`;
      r.history.push({ at: Date.now(), upstream: 'mg', outcome: 'delivered', reply: 'HTTP 200' });
    }
    return record;
  });
  return id;
}

/** graceMs 0: an unknown id is not waited for (the race test below sets it). */
function recorder(spool: Spool, settings: Partial<ProviderEventSettings> = {}, graceMs = 0, inFlight = () => 1) {
  const r = new ProviderEventRecorder(spool, () => ({ ...SETTINGS, ...settings }), createLogger('silent'), { graceMs, inFlight });
  const recorded: RecordedEvents[] = [];
  r.on('recorded', (e: RecordedEvents) => recorded.push(e));
  return { r, recorded };
}

const bounce = (id: string, recipient: string, extra: Partial<ProviderEvent> = {}): ProviderEvent => ({
  type: 'hard_bounce',
  providerMessageId: id,
  recipient,
  reason: '550 5.1.1 The email account that you tried to reach does not exist',
  status: '550',
  eventId: `ev-${recipient.toLowerCase()}`,
  ...extra,
});

/** The notices (DSNs and admin notices) the spool holds. */
const notices = (spool: Spool) => [...spool.list()].filter((m) => m.isBounce);

test('retention: the accepted recipients, envelope, DSN parameters and headers (never the body) are kept after the message leaves the queue, outside queue counts', async (t) => {
  const spool = openSpool(t);
  const id = await sendThrough(spool, { dsn: { envid: 'env-1', ret: 'HDRS', recipients: { 'carol@example.com': { notify: ['FAILURE'], orcpt: 'rfc822;carol@example.com' } } } });
  assert.equal(spool.get(id), undefined, 'delivered: gone from the queue');
  assert.equal(spool.counts().messages, 0, 'not counted as queued mail');
  const sent = spool.sentRecord(id)!;
  assert.equal(sent.sender, 'alice@example.org');
  assert.equal(sent.envid, 'env-1');
  assert.deepEqual(
    sent.recipients.map((r) => [r.address, r.upstream, r.providerMessageId]),
    [
      ['bob@example.net', 'mg', `${id}.1@mg.example.org`],
      ['carol@example.com', 'mg', `${id}.1@mg.example.org`],
    ],
  );
  assert.deepEqual(sent.recipients[1]!.notify, ['FAILURE']);
  assert.equal(sent.recipients[1]!.orcpt, 'rfc822;carol@example.com');
  assert.equal(sent.recipients[0]!.history.length, 1);
  assert.match(sent.headers, /^Subject: Quarterly report\r$/m);
  assert.ok(!sent.headers.includes('never retained'), 'no body');
  assert.equal(spool.sentFor('mg', `<${id}.1@mg.example.org>`)?.id, id, 'found by provider id, angle brackets ignored');
  assert.equal(spool.sentFor('other', `${id}.1@mg.example.org`), undefined, 'per upstream');
  assert.equal(spool.retainedCount(), 1);
});

test('headers are capped at a line boundary', () => {
  const long = Buffer.from(`Subject: x\r\n${'X-Pad: yyyyyyyyyy\r\n'.repeat(100)}\r\nbody`);
  const capped = cappedHeaders(long, 200);
  assert.ok(capped.length <= 200 && capped.endsWith('\r\n') && capped.startsWith('Subject: x\r\n'));
  assert.equal(cappedHeaders(RAW), RAW.subarray(0, RAW.indexOf('\r\n\r\n') + 4).toString('latin1'));
});

test("a hard bounce for one of two recipients: one RFC 3464 notice to the sender naming that recipient with the provider's diagnostic; repeats send nothing more", async (t) => {
  const spool = openSpool(t);
  const id = await sendThrough(spool);
  const { r, recorded } = recorder(spool);
  const pid = `${id}.1@mg.example.org`;
  await r.record(MAILGUN, [bounce(pid, 'CAROL@example.com')]);
  const [dsn, ...more] = notices(spool);
  assert.equal(more.length, 0);
  assert.equal(dsn!.sender, '', 'from the null sender');
  assert.deepEqual(
    dsn!.recipients.map((x) => x.address),
    ['alice@example.org'],
  );
  const parsed = await deliveryStatus(spool.body(dsn!.id)!);
  assert.equal(parsed.recipients.length, 1);
  assert.equal(parsed.recipients[0]!.get('final-recipient'), 'rfc822; carol@example.com');
  assert.equal(parsed.recipients[0]!.get('action'), 'failed');
  assert.equal(parsed.recipients[0]!.get('status'), '5.1.1');
  assert.equal(parsed.recipients[0]!.get('diagnostic-code'), 'smtp; 550 5.1.1 The email account that you tried to reach does not exist');
  assert.equal(parsed.message.get('x-mailshim-queue-id'), id);
  assert.match(parsed.headers, /Subject: Quarterly report/, 'the original headers are returned');
  assert.deepEqual(
    recorded.map((e) => [e.unmatched, e.notices]),
    [[0, 1]],
  );
  // The same event again, the same bounce under another event id, a suppression later: no second notice.
  await r.record(MAILGUN, [bounce(pid, 'carol@example.com')]);
  await r.record(MAILGUN, [bounce(pid, 'carol@example.com', { eventId: 'other' }), bounce(pid, 'carol@example.com', { type: 'suppressed', eventId: 'x' })]);
  assert.equal(notices(spool).length, 1);
  const carol = spool.sentRecord(id)!.recipients[1]!;
  assert.ok(carol.failedAt !== undefined && carol.noticeQueued);
  assert.deepEqual(
    carol.events.map((e) => e.type),
    ['hard_bounce', 'hard_bounce', 'suppressed'],
    'the identical event is recorded once',
  );
  assert.equal(spool.sentRecord(id)!.recipients[0]!.failedAt, undefined, 'bob is untouched');
});

test('the same event after a restart finds the mark on disk: no second notice', async (t) => {
  const dir = tempDir();
  t.after(dir.cleanup);
  let spool = Spool.open(dir.path, { retention: { ms: 86_400_000, max: 10 } });
  const id = await sendThrough(spool);
  await recorder(spool).r.record(MAILGUN, [bounce(`${id}.1@mg.example.org`, 'carol@example.com')]);
  await spool.close();
  spool = Spool.open(dir.path, { retention: { ms: 86_400_000, max: 10 } });
  t.after(() => spool.close());
  await recorder(spool).r.record(MAILGUN, [bounce(`${id}.1@mg.example.org`, 'carol@example.com', { eventId: 'replayed-later' })]);
  assert.equal(notices(spool).length, 1);
});

test('all or nothing: when the transaction fails, neither the mark nor the notice is kept, and the retry sends the notice once', async (t) => {
  const spool = openSpool(t);
  const id = await sendThrough(spool);
  await assert.rejects(
    spool.updateSent(
      id,
      (sent) => {
        sent.recipients[1]!.failedAt = Date.now();
        return sent;
      },
      () => {
        throw new Error('injected: building the notice failed');
      },
    ),
    /injected/,
  );
  assert.equal(spool.sentRecord(id)!.recipients[1]!.failedAt, undefined, 'no mark');
  assert.equal(notices(spool).length, 0, 'no notice');
  await recorder(spool).r.record(MAILGUN, [bounce(`${id}.1@mg.example.org`, 'carol@example.com')]);
  assert.equal(notices(spool).length, 1);
});

test('NOTIFY=NEVER, a null sender and a bounce get the mark but no notice', async (t) => {
  const spool = openSpool(t);
  const never = await sendThrough(spool, { dsn: { recipients: { 'carol@example.com': { notify: ['NEVER'] } } } });
  const nullSender = await sendThrough(spool, { sender: '' });
  const { r } = recorder(spool);
  await r.record(MAILGUN, [bounce(`${never}.1@mg.example.org`, 'carol@example.com'), bounce(`${nullSender}.1@mg.example.org`, 'carol@example.com')]);
  assert.equal(notices(spool).length, 0);
  assert.equal(spool.sentRecord(never)!.recipients[1]!.noticeQueued, false);
  assert.ok(spool.sentRecord(nullSender)!.recipients[1]!.failedAt);
});

test('complaints: never a notice to the sender; with complaints_to_admin one notice to [local] admin per recipient', async (t) => {
  const spool = openSpool(t);
  const id = await sendThrough(spool);
  const complaint = bounce(`${id}.1@mg.example.org`, 'bob@example.net', { type: 'complaint', reason: 'abuse', status: undefined });
  await recorder(spool).r.record(MAILGUN, [complaint]);
  assert.equal(notices(spool).length, 0, 'default off, and never the sender');
  assert.ok(spool.sentRecord(id)!.recipients[0]!.complainedAt);
  const other = await sendThrough(spool);
  const { r } = recorder(spool, { complaintsToAdmin: true, admin: 'postmaster@example.org' });
  await r.record(MAILGUN, [
    { ...complaint, providerMessageId: `${other}.1@mg.example.org` },
    { ...complaint, providerMessageId: `${other}.1@mg.example.org`, eventId: 'again' },
  ]);
  const [notice, ...more] = notices(spool);
  assert.equal(more.length, 0);
  assert.deepEqual(
    notice!.recipients.map((x) => x.address),
    ['postmaster@example.org'],
  );
  assert.equal(notice!.sender, '', 'from the null sender: it never bounces');
  const mail = await simpleParser(spool.body(notice!.id)!);
  assert.match(mail.subject ?? '', /complaint from bob@example\.net/);
  assert.equal((mail.to as { text: string }).text, 'postmaster@example.org');
  assert.match(mail.text ?? '', /Subject: Quarterly report/, 'names the message by its headers');
});

test('delivered/deferred/opened are history only; unknown ids and recipients are counted as unmatched and change nothing', async (t) => {
  const spool = openSpool(t);
  const id = await sendThrough(spool);
  const { r, recorded } = recorder(spool);
  const pid = `${id}.1@mg.example.org`;
  await r.record(MAILGUN, [
    bounce(pid, 'bob@example.net', { type: 'delivered', eventId: 'd' }),
    bounce(pid, 'bob@example.net', { type: 'opened', eventId: 'o' }),
    bounce(pid, 'bob@example.net', { type: 'deferred', eventId: 'f' }),
    bounce('not-ours@mg.example.org', 'bob@example.net'),
    bounce(pid, 'mallory@example.net'),
  ]);
  assert.deepEqual(
    recorded.map((e) => [e.events.length, e.unmatched, e.notices]),
    [[5, 2, 0]],
  );
  assert.equal(notices(spool).length, 0);
  assert.deepEqual(
    spool.sentRecord(id)!.recipients[0]!.events.map((e) => e.type),
    ['delivered', 'opened', 'deferred'],
  );
  await r.record({ name: 'other', type: 'mailgun' } as RestUpstreamConfig, [bounce(pid, 'carol@example.com')]);
  assert.equal(notices(spool).length, 0, "another upstream's event does not match");
});

test('Resend-style events (the email, not the recipient): attributed only when the id covers one recipient', async (t) => {
  const spool = openSpool(t);
  const resend = { name: 'mg', type: 'resend' } as RestUpstreamConfig;
  const shared = await sendThrough(spool);
  const own = await sendThrough(spool, { ids: { 'bob@example.net': 'e-bob', 'carol@example.com': 'e-carol' } });
  const { r, recorded } = recorder(spool);
  await r.record(resend, [bounce(`${shared}.1@mg.example.org`, 'carol@example.com'), bounce('e-carol', 'carol@example.com')]);
  assert.equal(recorded[0]!.unmatched, 1);
  assert.equal(notices(spool).length, 1);
  assert.ok(spool.sentRecord(own)!.recipients[1]!.failedAt);
});

test('a recipient accepted while another is still queued is matched at once; the queue record and the retained one live side by side', async (t) => {
  const spool = openSpool(t);
  const id = await sendThrough(spool, { deliver: ['carol@example.com'] });
  assert.ok(spool.get(id), 'bob is still queued');
  assert.deepEqual(
    spool.sentRecord(id)!.recipients.map((r) => r.address),
    ['carol@example.com'],
  );
  await recorder(spool).r.record(MAILGUN, [bounce(`${id}.1@mg.example.org`, 'carol@example.com')]);
  assert.equal(notices(spool).length, 1);
  assert.equal(spool.counts().messages, 2, 'the queued message and its notice');
});

test('pruning: records older than events.retention go (a few per transaction), and the oldest go beyond max_retained', async (t) => {
  const spool = openSpool(t, { ms: 60_000, max: 3 });
  const ids: string[] = [];
  for (let i = 0; i < 5; i++) ids.push(await sendThrough(spool));
  assert.equal(spool.retainedCount(), 3, 'max_retained');
  assert.deepEqual(
    ids.map((id) => spool.sentRecord(id) !== undefined),
    [false, false, true, true, true],
  );
  assert.equal(spool.sentFor('mg', `${ids[0]}.1@mg.example.org`), undefined, 'its index entry went with it');
  // Past the retention a record is no longer found, and the next transaction removes it.
  const later = Date.now() + 60_001;
  assert.equal(spool.sentRecord(ids[4]!, later), undefined);
  const aged = openSpool(t, { ms: 1, max: 100 });
  const old = await sendThrough(aged);
  const start = Date.now();
  while (Date.now() - start < 3) {
    /* let the 1 ms retention pass */
  }
  const fresh = await sendThrough(aged);
  assert.equal(aged.retainedCount(), 1, 'the expired record was pruned by the next transaction');
  assert.equal(aged.sentRecord(old, start), undefined);
  assert.ok(fresh);
});

test('sentSince lists the recipients an upstream accepted since a time, for pollers', async (t) => {
  const spool = openSpool(t);
  const before = Date.now();
  const a = await sendThrough(spool);
  const b = await sendThrough(spool, { ids: { 'bob@example.net': 'b-bob', 'carol@example.com': 'b-carol' } });
  const listed = [...spool.sentSince('mg', before, Date.now(), 1)];
  assert.deepEqual(
    listed.map((x) => [x.queueId, x.providerMessageId]),
    [
      [a, `${a}.1@mg.example.org`],
      [a, `${a}.1@mg.example.org`],
      [b, 'b-bob'],
      [b, 'b-carol'],
    ],
  );
  assert.deepEqual([...spool.sentSince('other', before)], []);
  assert.deepEqual([...spool.sentSince('mg', Date.now() + 1000)], []);
});

test('listSent (for Resend polling) groups the retained recipients by provider id; retention is on with [events] or a polling upstream', async (t) => {
  const spool = openSpool(t);
  const before = Date.now();
  const a = await sendThrough(spool);
  const b = await sendThrough(spool, { ids: { 'bob@example.net': 'b-bob', 'carol@example.com': 'b-carol' } });
  assert.deepEqual(
    [...listSent(spool)('mg', before)],
    [
      { providerMessageId: `${a}.1@mg.example.org`, recipients: ['bob@example.net', 'carol@example.com'] },
      { providerMessageId: 'b-bob', recipients: ['bob@example.net'] },
      { providerMessageId: 'b-carol', recipients: ['carol@example.com'] },
    ],
  );
  assert.ok(b);
  const upstream = { name: 'r', type: 'resend' } as RestUpstreamConfig;
  assert.equal(retentionOf({ upstreams: [upstream] }), undefined);
  assert.deepEqual(retentionOf({ upstreams: [{ ...upstream, poll: { intervalMs: 60_000 } }] }), { ms: 7 * 86_400_000, max: 100_000 });
});

test('without [events] nothing is retained', async (t) => {
  const dir = tempDir();
  const spool = Spool.open(dir.path);
  t.after(async () => {
    await spool.close();
    dir.cleanup();
  });
  const id = await sendThrough(spool);
  assert.equal(spool.sentRecord(id), undefined);
  assert.equal(spool.retainedCount(), 0);
});

test('an event that overtakes its delivery outcome (a drop reported within milliseconds of the 2xx) waits for it and is matched', async (t) => {
  const spool = openSpool(t);
  const id = await spool.accept({ sender: 'alice@example.org', recipients: ['bob@example.net'] }, RAW, { origin: { protocol: 'esmtp' }, messageId: '<q3@example.org>' });
  const { r, recorded } = recorder(spool, {}, 5_000);
  const pending = r.record(MAILGUN, [bounce(`${id}.1@mg.example.org`, 'bob@example.net', { type: 'suppressed', at: new Date() })]);
  // The outcome is committed only now, after the webhook was received.
  await new Promise((resolve) => setTimeout(resolve, 300));
  await spool.update(id, (record) => {
    const r0 = record.recipients[0]!;
    Object.assign(r0, { status: 'delivered', upstream: 'mg', lastAttemptAt: Date.now(), lastReply: 'HTTP 200', providerMessageId: `${id}.1@mg.example.org` });
    r0.history.push({ at: Date.now(), upstream: 'mg', outcome: 'delivered', reply: 'HTTP 200' });
    return record;
  });
  await pending;
  assert.equal(recorded[0]!.unmatched, 0, 'matched once the outcome was committed');
  assert.equal(notices(spool).length, 1, 'one notice to the sender');
  // An id that never appears is given up after the grace, and an old event is not waited for at all.
  const started = Date.now();
  const { r: quick, recorded: quickRecorded } = recorder(spool, {}, 400);
  await quick.record(MAILGUN, [bounce('never@mg.example.org', 'bob@example.net', { at: new Date(Date.now() - 3_600_000) })]);
  assert.ok(Date.now() - started < 300, 'an hour-old event with an unknown id is not waited for');
  const { r: idle } = recorder(spool, {}, 5_000, () => 0);
  await idle.record(MAILGUN, [bounce('never@mg.example.org', 'bob@example.net')]);
  assert.ok(Date.now() - started < 300, 'with no delivery in flight, nothing is waited for');
  await quick.record(MAILGUN, [bounce('never@mg.example.org', 'bob@example.net')]);
  assert.equal(quickRecorded.length, 2);
  assert.equal(quickRecorded[1]!.unmatched, 1);
});
