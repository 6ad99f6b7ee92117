/**
 * The m365 and gmail upstreams through the real daemon: a scanner-style message submitted over
 * SMTP arrives at the Graph / Gmail fakes with its body byte-identical; tokens that expire
 * between messages are refreshed once with no failed delivery; a wrong secret holds the mail as a
 * configuration error whose log line carries the fix; no log line ever contains a token or the
 * client secret; a secret file readable by others stops the daemon like every other secret.
 */
import assert from 'node:assert/strict';
import { chmodSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startGoogle, type GoogleFake } from './fakes/google.js';
import { EXCHANGE_SCOPE, startMicrosoft, type MicrosoftFake } from './fakes/microsoft.js';
import { startOAuthSmtp } from './fakes/oauth-smtp.js';
import { runCli } from './helpers/cli.js';
import { startDaemon, writeConfig, type RunningDaemon } from './helpers/daemon.js';
import { makeServiceAccount } from './helpers/oauth-keys.js';
import { bodyOf, gmailUpstream, m365Upstream, scannerMessage } from './helpers/oauth.js';
import { restConfig, submit } from './helpers/rest.js';
import { tempDir } from './helpers/tmp.js';

describe('m365 and gmail through the daemon', () => {
  let ms: MicrosoftFake;
  let google: GoogleFake;
  let daemon: RunningDaemon;
  let dir: ReturnType<typeof tempDir>;

  before(async () => {
    dir = tempDir();
    ms = await startMicrosoft();
    const account = makeServiceAccount(dir.path, 'https://oauth2.googleapis.com/token');
    google = await startGoogle(account);
    // m365 serves contoso.com senders, gworkspace example.com senders (match_from).
    const upstreams = [
      m365Upstream(dir.path, { url: ms.url, tenant: ms.tenant, clientId: ms.clientId, secret: ms.secret, extra: 'match_from = ["*@contoso.com"]' }),
      gmailUpstream({ url: google.url, file: account.file, extra: 'match_from = ["*@example.com"]' }),
    ].join('\n\n');
    daemon = await startDaemon(writeConfig(dir.path, restConfig(join(dir.path, 'spool'), upstreams)));
  });

  after(async () => {
    const code = await daemon.stop();
    await ms.close();
    await google.close();
    dir.cleanup();
    assert.equal(code, 0);
  });

  const results = (id: string) => daemon.logs.filter((l) => l.event === 'delivery' && l.queueId === id).map((l) => l.result);
  const delivered = (id: string) => daemon.waitForLog((l) => l.event === 'delivery' && l.queueId === id && l.result === 'delivered');

  it('m365 (graph): the message arrives byte-identical in body; an expired token mid-queue costs one refresh and no failed delivery', async () => {
    const send = async (tag: string) => {
      const raw = scannerMessage('scanner@contoso.com', ['bob@example.net'], tag);
      const id = await submit(daemon.port, { raw, envelope: { from: 'scanner@contoso.com', to: ['bob@example.net'] } });
      return { id, raw };
    };
    const first = await send('e2e-1');
    await delivered(first.id);
    const got = ms.accepted.at(-1)!;
    assert.ok(bodyOf(got.payload.mime).equals(bodyOf(first.raw)), 'body byte-identical');
    assert.equal(ms.tokenRequests, 1);
    ms.expireTokens();
    const rest = await Promise.all([send('e2e-2'), send('e2e-3'), send('e2e-4')]);
    for (const m of rest) await delivered(m.id);
    for (const m of [first, ...rest]) assert.deepEqual(results(m.id), ['delivered'], `${m.id} delivered at the first attempt`);
    assert.equal(ms.tokenRequests, 2, 'one refresh');
  });

  it('gmail (api): the message arrives byte-identical, impersonating the sender', async () => {
    const raw = scannerMessage('alerts@example.com', ['bob@example.net'], 'e2e-gmail');
    const id = await submit(daemon.port, { raw, envelope: { from: 'alerts@example.com', to: ['bob@example.net'] } });
    await delivered(id);
    const got = google.accepted.at(-1)!;
    assert.equal(got.payload.userId, 'alerts@example.com');
    assert.ok(got.payload.raw.subarray(got.payload.raw.length - raw.length).equals(raw), 'after our Received: line, the submitted bytes unchanged');
  });

  it('no log line contains an access token or the client secret', () => {
    const output = daemon.output();
    assert.ok(ms.tokens.length > 0 && google.tokens.length > 0);
    for (const token of [...ms.tokens.map((t) => t.value), ...google.tokens.map((t) => t.value)]) assert.ok(!output.includes(token), 'token not logged');
    assert.ok(!output.includes(ms.secret), 'secret not logged');
  });
});

describe('m365 misconfigured, through the daemon', () => {
  it('a wrong client secret holds the mail (config, never a bounce) with the fix in the log line, and the secret never logged', async () => {
    const dir = tempDir();
    const ms = await startMicrosoft();
    const wrong = 'b7e1c0de-the-secret-id-not-the-value';
    const daemon = await startDaemon(writeConfig(dir.path, restConfig(join(dir.path, 'spool'), m365Upstream(dir.path, { url: ms.url, tenant: ms.tenant, clientId: ms.clientId, secret: wrong }))));
    try {
      const raw = scannerMessage('scanner@contoso.com', ['bob@example.net'], 'held');
      const id = await submit(daemon.port, { raw, envelope: { from: 'scanner@contoso.com', to: ['bob@example.net'] } });
      const line = await daemon.waitForLog((l) => l.event === 'delivery' && l.queueId === id);
      assert.equal(line.result, 'config');
      assert.match(String(line.reply), /AADSTS7000215.*fix: the client secret is wrong/);
      assert.ok(!daemon.output().includes(wrong), 'the secret is not logged');
      assert.equal(daemon.logs.filter((l) => l.event === 'delivery' && l.result === 'permanent').length, 0, 'nothing bounced');
    } finally {
      await daemon.stop();
      await ms.close();
      dir.cleanup();
    }
  });

  it('client_secret_file readable by others stops the daemon like every secret file', async () => {
    const dir = tempDir();
    try {
      const file = writeConfig(
        dir.path,
        restConfig(join(dir.path, 'spool'), m365Upstream(dir.path, { url: 'http://127.0.0.1:1', tenant: 'contoso.onmicrosoft.com', clientId: '11111111-2222-3333-4444-555555555555', secret: 's' })),
      );
      chmodSync(join(dir.path, 'm365.secret'), 0o644);
      const run = await runCli(['serve', '--config', file]);
      assert.equal(run.code, 78);
      assert.match(run.stderr, /refusing to start: .*m365\.secret holds a secret and is accessible by group\/others \(mode 644\); fix: chmod 600/);
    } finally {
      dir.cleanup();
    }
  });
});

describe('m365 graph with an smtp upstream behind it, through the daemon', () => {
  it("a message over Graph's 4 MB limit, or whose headers name an address outside the envelope, goes out by SMTP XOAUTH2 byte-identical", async () => {
    const dir = tempDir();
    const ms = await startMicrosoft();
    const smtp = await startOAuthSmtp({ style: 'exchange', scope: EXCHANGE_SCOPE, valid: (token) => Boolean(ms.validToken(token, EXCHANGE_SCOPE)) });
    const keys = { url: ms.url, tenant: ms.tenant, clientId: ms.clientId, secret: ms.secret, smtpPort: smtp.port };
    const upstreams = `${m365Upstream(dir.path, keys, 'm365')}\n\n${m365Upstream(dir.path, { ...keys, via: 'smtp' }, 'm365-smtp')}`;
    const toml = restConfig(join(dir.path, 'spool'), upstreams).replace('max_message_size = "1MB"', 'max_message_size = "10MB"');
    const daemon = await startDaemon(writeConfig(dir.path, toml));
    try {
      const graphSends = () => ms.received.filter((r) => r.path.endsWith('/sendMail')).length;
      const large = scannerMessage('scanner@contoso.com', ['bob@example.net'], 'large', 3_200_000);
      const id = await submit(daemon.port, { raw: large, envelope: { from: 'scanner@contoso.com', to: ['bob@example.net'] } });
      const line = await daemon.waitForLog((l) => l.event === 'delivery' && l.queueId === id && l.result === 'delivered');
      assert.equal(line.upstream, 'm365-smtp');
      assert.equal(graphSends(), 0, 'Graph was never called with it');
      const got = (await smtp.waitFor(1))[0]!;
      assert.ok(got.raw.subarray(got.raw.length - large.length).equals(large), 'byte-identical after our Received: line');

      const aliased = scannerMessage('scanner@contoso.com', ['bob@example.net', 'root@box.lan'], 'alias');
      const id2 = await submit(daemon.port, { raw: aliased, envelope: { from: 'scanner@contoso.com', to: ['bob@example.net'] } });
      const line2 = await daemon.waitForLog((l) => l.event === 'delivery' && l.queueId === id2 && l.result === 'delivered');
      assert.equal(line2.upstream, 'm365-smtp');
      assert.deepEqual(smtp.messages[1]!.recipients, ['bob@example.net'], 'exactly the envelope');
      assert.equal(graphSends(), 0);
    } finally {
      await daemon.stop();
      await ms.close();
      await smtp.close();
      dir.cleanup();
    }
  });
});
