/**
 * poll = true (src/events/poll): each provider's pull API, through a fake that follows the
 * provider's documented request and answer (test/fakes/pull/), feeds the EventSink: a hard bounce
 * is handed on exactly once across overlapping rounds, late events are caught, paging is followed
 * (and bounded), 401/403 is a configuration state, 429's Retry-After is honoured, stop is prompt.
 */
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { after, describe, it } from 'node:test';
import pino from 'pino';
import { parseConfig } from '../src/config/load.js';
import type { RestUpstreamConfig } from '../src/config/types.js';
import { BREVO_POLLED } from '../src/events/poll/brevo.js';
import { MAILGUN_MAX_PAGES } from '../src/events/poll/mailgun.js';
import { Poller } from '../src/events/poll/poller.js';
import { easternTime } from '../src/events/poll/postmark.js';
import { POLL_SOURCES } from '../src/events/poll/index.js';
import type { ListSent, PollSource } from '../src/events/poll/source.js';
import type { ProviderEvent } from '../src/events/types.js';
import { brevoHardBounce, startBrevoPullFake } from './fakes/pull/brevo.js';
import { mailgunFailed, startMailgunPullFake } from './fakes/pull/mailgun.js';
import { fromEastern, postmarkBounce, startPostmarkPullFake } from './fakes/pull/postmark.js';
import { startResendPullFake } from './fakes/pull/resend.js';
import { sparkpostBounce, startSparkpostPullFake } from './fakes/pull/sparkpost.js';
import type { Fake } from './fakes/server.js';
import { configProblems } from './helpers/config.js';

const doc = (upstream: string) => `hostname = "h.test"\n[spool]\npath = "/tmp/x"\n\n[[upstream]]\nname = "up"\n${upstream.trim()}\n`;

type Polling = RestUpstreamConfig & { poll: { intervalMs: number } };

function upstream(toml: string): Polling {
  const u = parseConfig(doc(toml), '/etc/mailshim/t.toml', {}).upstreams[0] as Polling;
  assert.ok(u.poll, 'poll is on');
  return u;
}

const problems = (toml: string) => configProblems(doc(toml), '/etc/mailshim/t.toml');

interface Harness {
  poller: Poller;
  handed: ProviderEvent[][];
  logs: string[];
  failSink: { next: boolean };
}

function harness(u: Polling, listSent: ListSent = () => []): Harness {
  const handed: ProviderEvent[][] = [];
  const logs: string[] = [];
  const failSink = { next: false };
  const log = pino({ level: 'debug' }, new Writable({ write: (chunk, _e, done) => (logs.push(String(chunk)), done()) }));
  const source = POLL_SOURCES[u.type as keyof typeof POLL_SOURCES]() as PollSource;
  const sink = async (_u: RestUpstreamConfig, events: ProviderEvent[]) => {
    if (failSink.next) {
      failSink.next = false;
      throw new Error('disk full');
    }
    handed.push(events);
  };
  return { poller: new Poller({ upstream: u, source, sink, listSent, log }), handed, logs, failSink };
}

const fakes: Fake[] = [];
after(async () => {
  await Promise.all(fakes.map((f) => f.close()));
});
function track<T extends Fake>(fake: T): T {
  fakes.push(fake);
  return fake;
}
const MIN = 60_000;

describe('config: poll and poll_interval', () => {
  it('poll = true on a pollable type: default interval 5 minutes; poll_interval read', () => {
    assert.deepEqual(upstream('type = "postmark"\napi_key = "k"\npoll = true').poll, { intervalMs: 300_000 });
    assert.deepEqual(upstream('type = "mailgun"\napi_key = "k"\ndomain = "mg.example.com"\npoll = true\npoll_interval = "90s"').poll, { intervalMs: 90_000 });
    const off = parseConfig(doc('type = "postmark"\napi_key = "k"'), '/t.toml', {}).upstreams[0] as RestUpstreamConfig;
    assert.equal(off.poll, undefined);
  });
  it('refuses poll on providers without a usable pull API, naming why', () => {
    assert.match(
      problems('type = "sendgrid"\napi_key = "k"\npoll = true').join('\n'),
      /poll: type "sendgrid" cannot poll for events: SendGrid's Email Activity API is a paid add-on and its bounce list carries no message id/,
    );
    assert.match(
      problems('type = "ses"\naccess_key_id = "A"\nsecret_access_key = "s"\nregion = "eu-west-1"\npoll = true').join('\n'),
      /Amazon SES has no pull API for events; they go to SNS or EventBridge/,
    );
    assert.match(problems('type = "mailjet"\napi_key = "k"\nsecret_key = "s"\npoll = true').join('\n'), /type "mailjet" cannot poll/);
  });
  it('refuses poll on non-REST types (an unknown key there)', () => {
    assert.match(problems('type = "smtp"\nhost = "smtp.example.com"\npoll = true').join('\n'), /poll/);
  });
  it('refuses poll_interval without poll, below 1s, or not a duration', () => {
    assert.match(problems('type = "postmark"\napi_key = "k"\npoll_interval = "5m"').join('\n'), /poll_interval: has no effect without poll = true/);
    assert.match(problems('type = "postmark"\napi_key = "k"\npoll = true\npoll_interval = "500ms"').join('\n'), /poll_interval: must be at least 1s/);
    assert.match(problems('type = "postmark"\napi_key = "k"\npoll = true\npoll_interval = "often"').join('\n'), /poll_interval: expected a duration/);
    assert.match(problems('type = "postmark"\napi_key = "k"\npoll = "yes"').join('\n'), /poll: expected true or false/);
  });
});

describe('Postmark bounces API', () => {
  it('hands a hard bounce on once across rounds, including one Postmark records late; fromdate in US Eastern time', async () => {
    const fake = track(await startPostmarkPullFake('pm-token'));
    const u = upstream(`type = "postmark"\napi_key = "pm-token"\nendpoint = "${fake.url}"\npoll = true`);
    const h = harness(u);
    const now = Date.now();
    fake.bounces.push({ item: postmarkBounce('b7bc2f4a-e38e-4336-af7d-e6c392c2f817', 'Gone@Example.net', now - 3 * MIN), at: now - 3 * MIN });
    // Another stream's bounce is not ours.
    fake.bounces.push({ item: { ...postmarkBounce('other-stream', 'x@example.net', now - MIN), MessageStream: 'broadcast' }, at: now - MIN });
    // Recorded late: it happened 2 minutes ago but appears only after the first round.
    const late = { item: postmarkBounce('late-1', 'late@example.net', now - 2 * MIN), at: now - 2 * MIN, visibleAt: Infinity };
    fake.bounces.push(late);

    assert.equal(await h.poller.round(), 300_000);
    assert.deepEqual(
      h.handed.flat().map((e) => [e.type, e.providerMessageId, e.recipient]),
      [['hard_bounce', 'b7bc2f4a-e38e-4336-af7d-e6c392c2f817', 'gone@example.net']],
    );
    assert.match(h.handed[0]![0]!.reason!, /550 5\.1\.1/);
    const first = new URL(fake.received[0]!.path, 'http://x').searchParams;
    // The first round looks back a day and the overlap, in Postmark's zone.
    const from = fromEastern(first.get('fromdate')!)!;
    assert.ok(Math.abs(from - (now - 24 * 60 * MIN - 10 * MIN)) < 5000, `fromdate ${first.get('fromdate')} is ${new Date(from).toISOString()}`);
    assert.equal(first.get('fromdate'), easternTime(from));
    assert.equal(first.get('messagestream'), 'outbound');
    assert.equal(first.get('count'), '500');

    late.visibleAt = 0;
    await h.poller.round();
    await h.poller.round();
    assert.deepEqual(
      h.handed.flat().map((e) => e.providerMessageId),
      ['b7bc2f4a-e38e-4336-af7d-e6c392c2f817', 'late-1'],
      'each bounce handed on exactly once',
    );
    assert.equal(h.poller.snapshot().state, 'ok');
    assert.equal(h.poller.snapshot().events, 2);
  });

  it('the Eastern-time window covers a bounce seconds old (a UTC date-time would miss it by 5 hours)', async () => {
    const fake = track(await startPostmarkPullFake('pm-token'));
    const h = harness(upstream(`type = "postmark"\napi_key = "pm-token"\nendpoint = "${fake.url}"\npoll = true`));
    await h.poller.round();
    const at = Date.now() - 1000;
    fake.bounces.push({ item: postmarkBounce('fresh', 'fresh@example.net', at), at });
    await h.poller.round();
    assert.deepEqual(
      h.handed.flat().map((e) => e.providerMessageId),
      ['fresh'],
    );
  });

  it('pages with count/offset until TotalCount is read', async () => {
    const fake = track(await startPostmarkPullFake('pm-token'));
    const h = harness(upstream(`type = "postmark"\napi_key = "pm-token"\nendpoint = "${fake.url}"\npoll = true`));
    const now = Date.now();
    for (let i = 0; i < 1200; i++) fake.bounces.push({ item: postmarkBounce(`m-${i}`, `r${i}@example.net`, now - MIN - i * 1000), at: now - MIN - i * 1000 });
    await h.poller.round();
    assert.deepEqual(
      fake.received.map((r) => new URL(r.path, 'http://x').searchParams.get('offset')),
      ['0', '500', '1000'],
    );
    assert.equal(new Set(h.handed.flat().map((e) => e.providerMessageId)).size, 1200);
  });

  it('a refused token is a configuration state: logged as an error, no crash, the key never logged', async () => {
    const fake = track(await startPostmarkPullFake('the-right-token'));
    const h = harness(upstream(`type = "postmark"\napi_key = "wrong-secret-token"\nendpoint = "${fake.url}"\npoll = true\npoll_interval = "2m"`));
    assert.equal(await h.poller.round(), 120_000);
    const s = h.poller.snapshot();
    assert.equal(s.state, 'config-error');
    assert.match(s.lastError!, /HTTP 401/);
    assert.ok(h.logs.some((l) => /"event":"poll-config-error"/.test(l) && /"level":50/.test(l)));
    assert.ok(!h.logs.join('').includes('wrong-secret-token'), 'the API key is not logged');
    assert.equal(h.handed.length, 0);
  });

  it('429: waits what Retry-After says, keeps the window, then succeeds', async () => {
    const fake = track(await startPostmarkPullFake('pm-token'));
    const h = harness(upstream(`type = "postmark"\napi_key = "pm-token"\nendpoint = "${fake.url}"\npoll = true\npoll_interval = "1s"`));
    const at = Date.now() - MIN;
    fake.bounces.push({ item: postmarkBounce('after-429', 'a@example.net', at), at });
    fake.script.push({ status: 429, headers: { 'retry-after': '7' }, body: { ErrorCode: 429, Message: 'Rate limit exceeded' } });
    assert.equal(await h.poller.round(), 7000);
    assert.equal(h.poller.snapshot().state, 'failing');
    await h.poller.round();
    assert.deepEqual(
      h.handed.flat().map((e) => e.providerMessageId),
      ['after-429'],
    );
    assert.equal(h.poller.snapshot().state, 'ok');
    // 5xx without Retry-After: exponential backoff from poll_interval.
    fake.script.push({ status: 503, body: '' }, { status: 503, body: '' });
    assert.equal(await h.poller.round(), 1000);
    assert.equal(await h.poller.round(), 2000);
  });

  it('when the sink cannot record, the events are handed on again next round', async () => {
    const fake = track(await startPostmarkPullFake('pm-token'));
    const h = harness(upstream(`type = "postmark"\napi_key = "pm-token"\nendpoint = "${fake.url}"\npoll = true`));
    const at = Date.now() - MIN;
    fake.bounces.push({ item: postmarkBounce('retry-me', 'a@example.net', at), at });
    h.failSink.next = true;
    await h.poller.round();
    assert.equal(h.poller.snapshot().state, 'failing');
    await h.poller.round();
    await h.poller.round();
    assert.deepEqual(
      h.handed.flat().map((e) => e.providerMessageId),
      ['retry-me'],
    );
  });

  it('stop() ends a round waiting on a slow provider at once', async () => {
    const fake = track(await startPostmarkPullFake('pm-token'));
    const h = harness(upstream(`type = "postmark"\napi_key = "pm-token"\nendpoint = "${fake.url}"\npoll = true\ntimeout = "60s"`));
    fake.delayNext = 30_000;
    h.poller.start();
    while (fake.received.length === 0) await new Promise((r) => setTimeout(r, 20));
    const t0 = Date.now();
    await h.poller.stop();
    assert.ok(Date.now() - t0 < 5000, `stopped in ${Date.now() - t0} ms`);
    assert.equal(h.handed.length, 0);
  });
});

describe('Mailgun events API', () => {
  it("follows paging.next (on Mailgun's own host) on the configured endpoint, and catches late events once", async () => {
    const fake = track(await startMailgunPullFake('mg.example.com', 'key-mg'));
    const h = harness(upstream(`type = "mailgun"\napi_key = "key-mg"\ndomain = "mg.example.com"\nendpoint = "${fake.url}"\npoll = true`));
    const now = Date.now();
    for (let i = 0; i < 650; i++) fake.items.push({ item: mailgunFailed(`<${i}.x@mg.example.com>`, `r${i}@example.net`, now - 10 * MIN + i * 100), at: now - 10 * MIN + i * 100 });
    fake.items.push({ item: { ...mailgunFailed('<temp@mg.example.com>', 't@example.net', now - MIN), severity: 'temporary' }, at: now - MIN });
    fake.items.push({ item: { event: 'delivered', id: 'dlv', timestamp: (now - MIN) / 1000, recipient: 'd@example.net', message: { headers: { 'message-id': 'dlv@mg' } } }, at: now - MIN });
    fake.items.push({ item: { event: 'accepted', id: 'acc', timestamp: (now - MIN) / 1000, recipient: 'a@example.net', message: { headers: { 'message-id': 'acc@mg' } } }, at: now - MIN });
    const late = { item: mailgunFailed('<late@mg.example.com>', 'late@example.net', now - 20 * MIN), at: now - 20 * MIN, visibleAt: Infinity };
    fake.items.push(late);

    await h.poller.round();
    const first = new URL(fake.received[0]!.path, 'http://x').searchParams;
    assert.equal(first.get('ascending'), 'yes');
    assert.equal(first.get('limit'), '300');
    assert.equal(first.get('event'), 'failed OR rejected OR complained');
    assert.equal(fake.received.length, 4, '300 + 300 + 51, then the empty page');
    const flat = h.handed.flat();
    assert.equal(flat.filter((e) => e.type === 'hard_bounce').length, 650);
    assert.deepEqual(
      flat.filter((e) => e.type === 'deferred').map((e) => e.providerMessageId),
      ['temp@mg.example.com'],
    );
    assert.equal(flat[0]!.providerMessageId, '0.x@mg.example.com', 'angle brackets gone');

    // Twenty minutes late, inside the half-hour overlap: handed on in the next round, once.
    late.visibleAt = 0;
    await h.poller.round();
    await h.poller.round();
    const lateOnes = h.handed.flat().filter((e) => e.providerMessageId === 'late@mg.example.com');
    assert.equal(lateOnes.length, 1);
    assert.equal(h.handed.flat().length, 652);
  });

  it('bounds the pages per round and resumes where the ascending read stopped', async () => {
    const fake = track(await startMailgunPullFake('mg.example.com', 'key-mg'));
    const h = harness(upstream(`type = "mailgun"\napi_key = "key-mg"\ndomain = "mg.example.com"\nendpoint = "${fake.url}"\npoll = true`));
    const now = Date.now();
    const total = MAILGUN_MAX_PAGES * 300 + 10;
    for (let i = 0; i < total; i++) fake.items.push({ item: mailgunFailed(`<b${i}@mg>`, `r${i}@example.net`, now - 20 * MIN + i * 50), at: now - 20 * MIN + i * 50 });
    const delay = await h.poller.round();
    assert.equal(fake.received.length, MAILGUN_MAX_PAGES);
    assert.ok(delay <= 10_000, 'the rest follows soon');
    assert.ok(h.logs.some((l) => /poll-truncated/.test(l)));
    await h.poller.round();
    assert.equal(new Set(h.handed.flat().map((e) => e.providerMessageId)).size, total);
  });

  it('a wrong key (401 "Forbidden") is a configuration state', async () => {
    const fake = track(await startMailgunPullFake('mg.example.com', 'key-mg'));
    const h = harness(upstream(`type = "mailgun"\napi_key = "nope"\ndomain = "mg.example.com"\nendpoint = "${fake.url}"\npoll = true`));
    await h.poller.round();
    assert.equal(h.poller.snapshot().state, 'config-error');
  });
});

describe('SparkPost events API', () => {
  it('follows the cursor in links.next and hands each bounce on once', async () => {
    const fake = track(await startSparkpostPullFake('sp-key'));
    const h = harness(upstream(`type = "sparkpost"\napi_key = "sp-key"\nendpoint = "${fake.url}"\npoll = true`));
    const now = Date.now();
    for (let i = 0; i < 2500; i++) fake.results.push({ item: sparkpostBounce(`7${i}`, `r${i}@example.net`, now - 5 * MIN - i), at: now - 5 * MIN - i });
    await h.poller.round();
    assert.equal(fake.received.length, 3);
    const first = new URL(fake.received[0]!.path, 'http://x').searchParams;
    assert.equal(first.get('cursor'), 'initial');
    assert.match(first.get('from')!, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    assert.match(first.get('events')!, /\bbounce\b.*\bspam_complaint\b/);
    await h.poller.round();
    const flat = h.handed.flat();
    assert.equal(flat.length, 2500);
    assert.equal(
      flat.every((e) => e.type === 'hard_bounce'),
      true,
    );
  });
});

describe('Brevo event report', () => {
  it('one request per polled event type; {} means none; a hard bounce once', async () => {
    const fake = track(await startBrevoPullFake('xkeysib-1'));
    const h = harness(upstream(`type = "brevo"\napi_key = "xkeysib-1"\nendpoint = "${fake.url}"\npoll = true`));
    await h.poller.round();
    assert.equal(fake.received.length, Object.keys(BREVO_POLLED).length);
    assert.equal(h.handed.length, 0);
    assert.equal(h.poller.snapshot().state, 'ok');
    const at = Date.now() - MIN;
    fake.events.push({ item: brevoHardBounce('<202611271805.123@smtp-relay.mailin.fr>', 'gone@example.net', at), at });
    await h.poller.round();
    await h.poller.round();
    assert.deepEqual(
      h.handed.flat().map((e) => [e.type, e.providerMessageId, e.recipient, e.eventId]),
      [['hard_bounce', '202611271805.123@smtp-relay.mailin.fr', 'gone@example.net', 'hard_bounce:<202611271805.123@smtp-relay.mailin.fr>:gone@example.net']],
    );
    assert.equal(new URL(fake.received[0]!.path, 'http://x').searchParams.get('event'), 'hardBounces');
  });
});

describe('Resend per-email status', () => {
  it('asks about recently sent emails within the 2 requests/s limit; reports a single-recipient bounce once', async () => {
    const fake = track(await startResendPullFake('re_key'));
    const u = upstream(`type = "resend"\napi_key = "re_key"\nendpoint = "${fake.url}"\npoll = true`);
    fake.emails.set('id-bounced', { id: 'id-bounced', to: ['gone@example.net'], last_event: 'bounced' });
    fake.emails.set('id-sent', { id: 'id-sent', to: ['slow@example.net'], last_event: 'sent' });
    fake.emails.set('id-multi', { id: 'id-multi', to: ['a@example.net', 'b@example.net'], last_event: 'bounced' });
    const sent = [
      { providerMessageId: 'id-bounced', recipients: ['Gone@example.net'] },
      { providerMessageId: 'id-sent', recipients: ['slow@example.net'] },
      { providerMessageId: 'id-multi', recipients: ['a@example.net', 'b@example.net'] },
      { providerMessageId: 'id-unknown', recipients: ['u@example.net'] },
    ];
    const asked: number[] = [];
    const h = harness(u, (name, since) => {
      assert.equal(name, 'up');
      asked.push(since);
      return sent;
    });
    await h.poller.round();
    assert.ok(
      fake.replies.every((r) => r.status !== 429),
      'never over the rate limit',
    );
    assert.deepEqual(
      h.handed.flat().map((e) => [e.type, e.providerMessageId, e.recipient]),
      [['hard_bounce', 'id-bounced', 'gone@example.net']],
    );
    assert.ok(Date.now() - asked[0]! >= 3 * 24 * 3_600_000 - 60_000, 'looks back three days');
    // Settled emails are not asked about again; the one still "sent" is.
    fake.emails.get('id-sent')!.last_event = 'bounced';
    const before = fake.received.length;
    await h.poller.round();
    assert.deepEqual(
      fake.received.slice(before).map((r) => r.path),
      ['/emails/id-sent'],
    );
    assert.deepEqual(
      h.handed.flat().map((e) => e.providerMessageId),
      ['id-bounced', 'id-sent'],
    );
  });

  it('with nothing sent, asks nothing', async () => {
    const fake = track(await startResendPullFake('re_key'));
    const h = harness(upstream(`type = "resend"\napi_key = "re_key"\nendpoint = "${fake.url}"\npoll = true`));
    await h.poller.round();
    assert.equal(fake.received.length, 0);
    assert.equal(h.poller.snapshot().state, 'ok');
  });
});
