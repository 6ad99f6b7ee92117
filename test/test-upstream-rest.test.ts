/**
 * `mailshim test-upstream` against every REST provider's strict fake, through the real CLI: the
 * connect step, the provider's authenticated read-only call, a real message with --send-to (through
 * the normal send()), a bad key (exit 78 naming the config key), account problems the check call
 * reveals, and nothing listening (exit 69).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startBrevoFake } from './fakes/brevo.js';
import { startMailgunFake } from './fakes/mailgun.js';
import { startMailjetFake } from './fakes/mailjet.js';
import { startPostmarkFake } from './fakes/postmark.js';
import { startResendFake } from './fakes/resend.js';
import { startSendgridFake } from './fakes/sendgrid.js';
import type { Fake } from './fakes/server.js';
import { startSesFake } from './fakes/ses.js';
import { startSparkpostFake } from './fakes/sparkpost.js';
import { runCli } from './helpers/cli.js';
import { writeConfig } from './helpers/daemon.js';
import { restConfig } from './helpers/rest.js';
import { closedPort, tempDir } from './helpers/tmp.js';

const SES = { accessKeyId: 'AKIDEXAMPLE0123456789', secretAccessKey: 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY', region: 'eu-west-1' };
const SECRET = 'the-right-secret-0123456789';
const WRONG = 'a-wrong-secret-9876543210';
const DOMAIN = 'mg.example.org';

interface Case {
  type: string;
  start(): Promise<Fake<unknown>>;
  /** The [[upstream]] keys (besides name, type, endpoint) with this secret. */
  keys(secret: string): string;
  path: string;
  /** What the successful check call reports. */
  ok: RegExp;
  /** The HTTP status a wrong key gets, and the advice naming what to fix. */
  badStatus: number;
  badAdvice: RegExp;
}

const CASES: Case[] = [
  {
    type: 'sendgrid',
    start: () => startSendgridFake(SECRET),
    keys: (s) => `api_key = "${s}"`,
    path: '/v3/scopes',
    ok: /key has mail\.send \(2 scopes\)/,
    badStatus: 401,
    badAdvice: /SendGrid refused api_key \(or api_key_file\).*api\.eu\.sendgrid\.com/,
  },
  {
    type: 'mailgun',
    start: () => startMailgunFake(SECRET, DOMAIN),
    keys: (s) => `api_key = "${s}"\ndomain = "${DOMAIN}"`,
    path: `/v3/domains/${DOMAIN}`,
    ok: /domain mg\.example\.org is active/,
    badStatus: 401,
    badAdvice: /Mailgun refused api_key \(or api_key_file\).*api\.eu\.mailgun\.net/,
  },
  {
    type: 'postmark',
    start: () => startPostmarkFake(SECRET),
    keys: (s) => `api_key = "${s}"`,
    path: '/server',
    ok: /server "fake server"/,
    badStatus: 401,
    badAdvice: /Postmark refused api_key \(or api_key_file\): it must be a Server API token/,
  },
  {
    type: 'resend',
    start: () => startResendFake(SECRET),
    keys: (s) => `api_key = "${s}"`,
    path: '/domains',
    ok: /domains: example\.org \(verified\)/,
    badStatus: 403,
    badAdvice: /Resend refused api_key \(or api_key_file\)/,
  },
  {
    type: 'ses',
    start: () => startSesFake(SES),
    keys: (s) => `access_key_id = "${SES.accessKeyId}"\nsecret_access_key = "${s === SECRET ? SES.secretAccessKey : s}"\nregion = "${SES.region}"`,
    path: '/v2/email/account',
    ok: /sending enabled in eu-west-1, sandbox \(only verified recipients\), quota 200\/24h at 1\/s/,
    badStatus: 403,
    badAdvice: /AWS refused the credentials: check access_key_id and secret_access_key.*region = "eu-west-1"/,
  },
  {
    type: 'mailjet',
    start: () => startMailjetFake('mj-public', SECRET),
    keys: (s) => `api_key = "mj-public"\nsecret_key = "${s}"`,
    path: '/v3/REST/sender',
    ok: /active senders: alice@example\.org/,
    badStatus: 401,
    badAdvice: /Mailjet refused api_key \+ secret_key.*api\.us\.mailjet\.com/,
  },
  {
    type: 'brevo',
    start: () => startBrevoFake(SECRET),
    keys: (s) => `api_key = "${s}"`,
    path: '/v3/account',
    ok: /account ops@example\.org, plan free/,
    badStatus: 401,
    badAdvice: /Brevo refused api_key \(or api_key_file\): use an API v3 key/,
  },
  {
    type: 'sparkpost',
    start: () => startSparkpostFake(SECRET),
    keys: (s) => `api_key = "${s}"`,
    path: '/api/v1/account',
    ok: /account active/,
    badStatus: 401,
    badAdvice: /SparkPost refused api_key \(or api_key_file\).*api\.eu\.sparkpost\.com/,
  },
];

function table(name: string, type: string, url: string, keys: string): string {
  return `[[upstream]]\nname = "${name}"\ntype = "${type}"\n${keys}\nendpoint = "${url}"\ntimeout = "3s"\n`;
}

/** The output block of one upstream: from its "name: type ..." line to the next upstream's. */
function section(stdout: string, name: string): string {
  const start = stdout.indexOf(`${name}: `);
  assert.ok(start >= 0, `no section for ${name} in:\n${stdout}`);
  const next = stdout.slice(start).search(/\n\S/);
  return next < 0 ? stdout.slice(start) : stdout.slice(start, start + next + 1);
}

describe('mailshim test-upstream for REST providers', () => {
  let dir: ReturnType<typeof tempDir>;
  const fakes = new Map<string, Fake<unknown>>();
  let good: string;
  let bad: string;
  let account: string;
  let refused: string;
  let refusedPort: number;
  let noScope: Fake<unknown>;
  let sendOnly: Fake<unknown>;
  let unverified: Fake<unknown>;
  let paused: Fake<unknown>;

  before(async () => {
    dir = tempDir();
    for (const c of CASES) fakes.set(c.type, await c.start());
    const url = (type: string) => fakes.get(type)!.url;
    good = writeConfig(dir.path, restConfig(`${dir.path}/spool`, CASES.map((c) => table(c.type, c.type, url(c.type), c.keys(SECRET))).join('\n')), 'good.toml');
    bad = writeConfig(dir.path, restConfig(`${dir.path}/spool`, CASES.map((c) => table(c.type, c.type, url(c.type), c.keys(WRONG))).join('\n')), 'bad.toml');
    noScope = await startSendgridFake(SECRET, { scopes: ['user.profile.read'] });
    sendOnly = await startResendFake(SECRET, { sendOnlyKey: 're_send_only' });
    unverified = await startMailgunFake(SECRET, DOMAIN, { state: 'unverified' });
    paused = await startSesFake(SES, { sendingEnabled: false });
    account = writeConfig(
      dir.path,
      restConfig(
        `${dir.path}/spool`,
        [
          table('eu-domain', 'mailgun', url('mailgun'), `api_key = "${SECRET}"\ndomain = "mg.example.eu"`),
          table('no-scope', 'sendgrid', noScope.url, `api_key = "${SECRET}"`),
          table('send-only', 'resend', sendOnly.url, 'api_key = "re_send_only"'),
          table('unverified', 'mailgun', unverified.url, `api_key = "${SECRET}"\ndomain = "${DOMAIN}"`),
          table('paused', 'ses', paused.url, CASES.find((c) => c.type === 'ses')!.keys(SECRET)),
          table('not-tls', 'postmark', url('postmark').replace('http:', 'https:'), `api_key = "${SECRET}"`),
        ].join('\n'),
      ),
      'account.toml',
    );
    refusedPort = await closedPort();
    refused = writeConfig(dir.path, restConfig(`${dir.path}/spool`, table('down', 'postmark', `http://127.0.0.1:${refusedPort}`, `api_key = "${SECRET}"`)), 'refused.toml');
  });

  after(async () => {
    await Promise.all([...fakes.values(), noScope, sendOnly, unverified, paused].map((f) => f.close()));
    dir.cleanup();
  });

  const cli = (config: string, ...args: string[]) => runCli(['test-upstream', ...args, '--config', config]);

  it('every provider: connect, then its authenticated read-only call, each timed; exit 0 and nothing sent', async () => {
    const result = await cli(good);
    assert.equal(result.code, 0, result.stdout + result.stderr);
    for (const c of CASES) {
      const fake = fakes.get(c.type)!;
      const port = new URL(fake.url).port;
      const out = section(result.stdout, c.type);
      assert.match(out, new RegExp(`^${c.type}: ${c.type} http://127\\.0\\.0\\.1:${port}`, 'm'));
      assert.match(out, new RegExp(`^  ok   connect 127\\.0\\.0\\.1:${port} \\(DNS \\+ TCP\\) \\(\\d+ ms\\): connected$`, 'm'), c.type);
      assert.match(out, new RegExp(`^  ok   authenticated GET ${c.path.replace(/[.]/g, '\\.')} \\(\\d+ ms\\): HTTP 200, `, 'm'), c.type);
      assert.match(out, c.ok, c.type);
      assert.match(out, /^  result: OK$/m, c.type);
      assert.ok(
        fake.received.some((r) => r.method === 'GET' && r.path === c.path),
        `${c.type}: the fake served GET ${c.path}`,
      );
      assert.equal(fake.accepted.length, 0, `${c.type}: nothing sent without --send-to`);
    }
    assert.ok(!result.stdout.includes(SECRET) && !result.stdout.includes(SES.secretAccessKey), 'never prints a secret');
  });

  it("--send-to sends one real test message through each provider's normal send()", async () => {
    const result = await cli(good, '--send-to', 'ops@example.net', '--from', 'alice@example.org');
    assert.equal(result.code, 0, result.stdout + result.stderr);
    for (const c of CASES) {
      const out = section(result.stdout, c.type);
      assert.match(out, /^  ok   send to ops@example\.net \(\d+ ms\): HTTP 20\d id=/m, c.type);
      assert.match(out, /^  result: OK — test message sent to <ops@example\.net>$/m, c.type);
      const accepted = fakes.get(c.type)!.accepted;
      assert.equal(accepted.length, 1, `${c.type}: exactly one message sent`);
    }
    // Raw-MIME providers carry our test message untouched: check one of them end to end.
    const mime = fakes.get('mailgun')!.accepted[0]!.payload as { message: Buffer; to: string[] };
    assert.deepEqual(mime.to, ['ops@example.net']);
    assert.match(mime.message.toString(), /^Subject: mailshim test message from relay\.test via mailgun$/m);
  });

  it("a wrong key for every provider: the call fails with the API's status, exit 78, advice names the config key; no send attempted", async () => {
    const before = CASES.map((c) => fakes.get(c.type)!.accepted.length);
    const result = await cli(bad, '--send-to', 'ops@example.net');
    assert.equal(result.code, 78, result.stdout + result.stderr);
    for (const c of CASES) {
      const out = section(result.stdout, c.type);
      assert.match(out, /^  ok   connect /m, c.type);
      assert.match(out, new RegExp(`^  FAIL authenticated GET ${c.path.replace(/[.]/g, '\\.')} \\(\\d+ ms\\): HTTP ${c.badStatus}`, 'm'), c.type);
      assert.match(out, new RegExp(`^       → ${c.badAdvice.source}`, 'm'), c.type);
      assert.doesNotMatch(out, /send to/, `${c.type}: no send after a failed check`);
      assert.match(out, /^  result: FAILED$/m, c.type);
    }
    assert.deepEqual(
      CASES.map((c) => fakes.get(c.type)!.accepted.length),
      before,
      'nothing was sent',
    );
    assert.ok(!result.stdout.includes(WRONG), 'never prints the key');
  });

  it('account problems the check call reveals: unknown or unverified Mailgun domain, a SendGrid key without mail.send, SES sending paused; a Resend send-only key passes', async () => {
    const domain = await cli(account, 'eu-domain');
    assert.equal(domain.code, 78, domain.stdout);
    assert.match(domain.stdout, /^  FAIL authenticated GET \/v3\/domains\/mg\.example\.eu \(\d+ ms\): HTTP 404: Domain not found$/m);
    assert.match(domain.stdout, /→ Mailgun does not know domain = "mg\.example\.eu" at .*endpoint = "https:\/\/api\.eu\.mailgun\.net"/);

    const scope = await cli(account, 'no-scope');
    assert.equal(scope.code, 78, scope.stdout);
    assert.match(scope.stdout, /^  FAIL authenticated GET \/v3\/scopes \(\d+ ms\): HTTP 200 mail\.send: the API key lacks the mail\.send permission$/m);
    assert.match(scope.stdout, /→ give the key "Mail Send" access/);

    const domainState = await cli(account, 'unverified', '--send-to', 'ops@example.net');
    assert.equal(domainState.code, 78, domainState.stdout);
    assert.match(domainState.stdout, /^  FAIL authenticated GET \/v3\/domains\/mg\.example\.org \(\d+ ms\): HTTP 200 unverified: domain mg\.example\.org is unverified, not active$/m);
    assert.match(domainState.stdout, /→ finish verifying mg\.example\.org in Mailgun/);
    assert.equal(unverified.accepted.length, 0, 'no send after the check failed');

    const sending = await cli(account, 'paused');
    assert.equal(sending.code, 78, sending.stdout);
    assert.match(
      sending.stdout,
      /^  FAIL authenticated GET \/v2\/email\/account \(\d+ ms\): HTTP 200 SendingPaused: sending is disabled for this account in eu-west-1 \(enforcement status SHUTDOWN\)$/m,
    );
    assert.match(sending.stdout, /→ SES has paused sending for the account in this region/);

    const restricted = await cli(account, 'send-only');
    assert.equal(restricted.code, 0, restricted.stdout);
    assert.match(restricted.stdout, /^  ok   authenticated GET \/domains \(\d+ ms\): HTTP 401, a send-only API key \(it cannot list domains\)$/m);
  });

  it('account-level problems with their fix: SES sandbox, Mailgun sandbox domain, a Resend sender domain not verified, a Mailjet sender not validated', async () => {
    const sandboxDomain = 'sandbox0123abcd.mailgun.org';
    const mgSandbox = await startMailgunFake(SECRET, sandboxDomain);
    const resend = await startResendFake(SECRET, {
      domains: [
        { name: 'example.org', status: 'verified' },
        { name: 'mail.example.com', status: 'pending' },
      ],
    });
    const mailjet = await startMailjetFake('mj-public', SECRET, {
      senders: [
        { Email: 'alice@example.org', Status: 'Active' },
        { Email: 'bob@example.com', Status: 'Inactive' },
      ],
    });
    try {
      const config = writeConfig(
        dir.path,
        restConfig(
          `${dir.path}/spool`,
          [
            table('ses-sandbox', 'ses', fakes.get('ses')!.url, CASES.find((c) => c.type === 'ses')!.keys(SECRET)),
            table('mg-sandbox', 'mailgun', mgSandbox.url, `api_key = "${SECRET}"\ndomain = "${sandboxDomain}"`),
            table('resend-pending', 'resend', resend.url, `api_key = "${SECRET}"`),
            table('mailjet-inactive', 'mailjet', mailjet.url, `api_key = "mj-public"\nsecret_key = "${SECRET}"`),
          ].join('\n'),
        ),
        'warnings.toml',
      );
      const warned = await cli(config);
      assert.equal(warned.code, 0, warned.stdout);
      assert.match(section(warned.stdout, 'ses-sandbox'), /^       ! the account is in the SES sandbox in eu-west-1: it delivers only to verified addresses and domains — request production access/m);
      assert.match(section(warned.stdout, 'mg-sandbox'), /^       ! sandbox0123abcd\.mailgun\.org is a Mailgun sandbox domain: it delivers only to the authorized recipients/m);
      assert.match(section(warned.stdout, 'resend-pending'), /^       ! not verified yet: mail\.example\.com — mail from these domains is refused/m);

      const resendFrom = await cli(config, 'resend-pending', '--send-to', 'ops@example.net', '--from', 'alerts@mail.example.com');
      assert.equal(resendFrom.code, 78, resendFrom.stdout);
      assert.match(
        resendFrom.stdout,
        /FAIL authenticated GET \/domains .*HTTP 200 domain_not_verified: mail\.example\.com is pending on this account, so mail from <alerts@mail\.example\.com> is refused/,
      );
      assert.match(resendFrom.stdout, /→ add mail\.example\.com under Domains in Resend/);
      assert.equal(resend.accepted.length, 0);

      const mailjetFrom = await cli(config, 'mailjet-inactive', '--send-to', 'ops@example.net', '--from', 'bob@example.com');
      assert.equal(mailjetFrom.code, 78, mailjetFrom.stdout);
      assert.match(mailjetFrom.stdout, /HTTP 200 sender-not-active: <bob@example\.com> is a sender with status Inactive on this account/);
      assert.match(mailjetFrom.stdout, /→ validate <bob@example\.com> or its domain in Mailjet/);
    } finally {
      await Promise.all([mgSandbox.close(), resend.close(), mailjet.close()]);
    }
  });

  it('an https endpoint that does not speak TLS: the connect step fails at TLS, exit 78, no API call', async () => {
    const result = await cli(account, 'not-tls');
    const port = new URL(fakes.get('postmark')!.url).port;
    assert.equal(result.code, 78, result.stdout);
    assert.match(result.stdout, new RegExp(`^  FAIL connect 127\\.0\\.0\\.1:${port} \\(DNS \\+ TCP \\+ TLS\\) \\(\\d+ ms\\): .*wrong version number`, 'm'));
    assert.match(result.stdout, /→ 127\.0\.0\.1:\d+ does not speak TLS: check the scheme and port in endpoint = "https:/);
    assert.doesNotMatch(result.stdout, /authenticated GET/);
  });

  it('nothing listening at the endpoint: the connect step fails, exit 69, advice names the endpoint', async () => {
    const result = await cli(refused, '--send-to', 'ops@example.net');
    assert.equal(result.code, 69, result.stdout + result.stderr);
    assert.match(result.stdout, new RegExp(`^  FAIL connect 127\\.0\\.0\\.1:${refusedPort} \\(DNS \\+ TCP\\) \\(\\d+ ms\\): connect ECONNREFUSED`, 'm'));
    assert.match(result.stdout, new RegExp(`→ nothing accepts connections on 127\\.0\\.0\\.1:${refusedPort}: check endpoint = "http://127\\.0\\.0\\.1:${refusedPort}"`));
    assert.doesNotMatch(result.stdout, /authenticated GET|send to/);
  });
});
