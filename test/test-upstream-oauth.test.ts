/**
 * `mailshim test-upstream` for m365 and gmail through the real CLI against the strict fakes: a
 * working setup shows the granted roles / scope and sends with --send-to; each broken setup
 * prints the admin step that fixes it (consent missing, wrong secret, expired certificate,
 * mailbox not found, delegation missing, Exchange service principal missing) and exits 78.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { GMAIL_SEND, startGoogle, type GoogleFake } from './fakes/google.js';
import { EXCHANGE_SCOPE, GRAPH_SCOPE, startMicrosoft, type MicrosoftFake } from './fakes/microsoft.js';
import { startOAuthSmtp, type OAuthSmtp } from './fakes/oauth-smtp.js';
import { runCli } from './helpers/cli.js';
import { writeConfig } from './helpers/daemon.js';
import { makeAppCertificate, makeServiceAccount, type ServiceAccount } from './helpers/oauth-keys.js';
import { gmailUpstream, m365Upstream, type M365Keys } from './helpers/oauth.js';
import { restConfig } from './helpers/rest.js';
import { tempDir } from './helpers/tmp.js';

describe('mailshim test-upstream for m365 and gmail', () => {
  let ms: MicrosoftFake;
  let google: GoogleFake;
  let exchange: OAuthSmtp;
  let account: ServiceAccount;
  let dir: ReturnType<typeof tempDir>;
  let configs = 0;

  before(async () => {
    dir = tempDir();
    const cert = makeAppCertificate(dir.path, 'app');
    ms = await startMicrosoft({ certificate: cert.cert });
    account = makeServiceAccount(dir.path, 'https://oauth2.googleapis.com/token');
    google = await startGoogle(account);
    exchange = await startOAuthSmtp({ style: 'exchange', scope: EXCHANGE_SCOPE, valid: (token) => Boolean(ms.validToken(token, EXCHANGE_SCOPE)?.roles.includes('SMTP.SendAsApp')) });
  });

  after(async () => {
    await ms.close();
    await google.close();
    await exchange.close();
    dir.cleanup();
  });

  const config = (upstream: string) => writeConfig(dir.path, restConfig(join(dir.path, 'spool'), upstream), `c${++configs}.toml`);
  const m365 = (keys: Partial<M365Keys> = {}) =>
    config(m365Upstream(dir.path, { url: ms.url, tenant: ms.tenant, clientId: ms.clientId, secret: ms.secret, smtpPort: exchange.port, ...keys }, `m365-${configs}`));
  const cli = (file: string, ...args: string[]) => runCli(['test-upstream', ...args, '--config', file]);

  it('m365 graph, working: shows the granted roles and sends with --send-to', async () => {
    const run = await cli(m365(), '--send-to', 'bob@example.net', '--from', 'scanner@contoso.com');
    assert.equal(run.code, 0, run.stdout + run.stderr);
    assert.match(run.stdout, /ok {3}token .*roles: Mail\.Send/);
    assert.match(run.stdout, /ok {3}send to bob@example\.net as scanner@contoso\.com/);
    assert.ok(!run.stdout.includes(ms.tokens.at(-1)!.value), 'the token is not printed');
  });

  it('consent missing: the token has no Mail.Send role → grant admin consent', async () => {
    ms.roles[GRAPH_SCOPE] = [];
    try {
      const run = await cli(m365());
      assert.equal(run.code, 78);
      assert.match(run.stdout, /FAIL permission Mail\.Send/);
      assert.match(run.stdout, /→ grant the application permission: .*Microsoft Graph → Application permissions → Mail\.Send, then "Grant admin consent"/);
    } finally {
      ms.roles[GRAPH_SCOPE] = ['Mail.Send'];
    }
  });

  it('wrong secret (AADSTS7000215) → put the secret Value, not its ID', async () => {
    const run = await cli(m365({ secret: 'not-the-secret' }));
    assert.equal(run.code, 78);
    assert.match(run.stdout, /FAIL token .*AADSTS7000215/);
    assert.match(run.stdout, /→ the client secret is wrong: .*create a new client secret and put its Value \(not the Secret ID\) in client_secret_file/);
    assert.ok(!run.stdout.includes('not-the-secret'));
  });

  it('expired certificate → upload a new certificate', async () => {
    const old = makeAppCertificate(dir.path, 'expired', true);
    const run = await cli(m365({ secret: undefined, certificate: old }));
    assert.equal(run.code, 78);
    assert.match(run.stdout, /FAIL token .*expired on Feb +1 00:00:00 2020 GMT/);
    assert.match(run.stdout, /→ create a new certificate, upload its public part in .* → Certificates & secrets → Certificates/);
  });

  it('mailbox not found (with User.ReadBasic.All to look it up) → set send_as to an existing mailbox', async () => {
    ms.roles[GRAPH_SCOPE] = ['Mail.Send', 'User.ReadBasic.All'];
    try {
      const run = await cli(m365(), '--from', 'nobody@contoso.com');
      assert.equal(run.code, 78);
      assert.match(run.stdout, /FAIL mailbox nobody@contoso\.com .*Request_ResourceNotFound/);
      assert.match(run.stdout, /→ nobody@contoso\.com is not a mailbox in tenant .*: set send_as/);
    } finally {
      ms.roles[GRAPH_SCOPE] = ['Mail.Send'];
    }
  });

  it('mailbox not found at send time (Mail.Send only) → the same fix', async () => {
    const run = await cli(m365(), '--send-to', 'bob@example.net', '--from', 'nobody@contoso.com');
    assert.equal(run.code, 78);
    assert.match(run.stdout, /mailbox nobody@contoso\.com .*not looked up/);
    assert.match(run.stdout, /FAIL send to bob@example\.net as nobody@contoso\.com .*ErrorInvalidUser|The requested user 'nobody@contoso\.com' is invalid/);
    assert.match(run.stdout, /→ nobody@contoso\.com is not a mailbox in tenant/);
  });

  it('m365 smtp: AUTH refused (service principal not registered in Exchange) → New-ServicePrincipal / Add-MailboxPermission', async () => {
    ms.roles[EXCHANGE_SCOPE] = ['SMTP.SendAsApp'];
    const ok = await cli(m365({ via: 'smtp' }));
    assert.equal(ok.code, 0, ok.stdout);
    assert.match(ok.stdout, /ok {3}auth XOAUTH2 as scanner@contoso\.com/);
    const validToken = exchange.auths.length;
    // The token is fine but Exchange refuses it: the service principal has no mailbox permission.
    const refusing = await startOAuthSmtp({ style: 'exchange', scope: EXCHANGE_SCOPE, valid: () => false });
    try {
      const run = await cli(m365({ via: 'smtp', smtpPort: refusing.port }));
      assert.equal(run.code, 78);
      assert.match(run.stdout, /FAIL auth XOAUTH2 as scanner@contoso\.com .*535 5\.7\.3/);
      assert.match(run.stdout, /→ register the app in Exchange Online .*New-ServicePrincipal -AppId 11111111-2222-3333-4444-555555555555 .*Add-MailboxPermission -Identity scanner@contoso\.com/);
      assert.ok(exchange.auths.length >= validToken);
    } finally {
      await refusing.close();
    }
  });

  it('gmail, working: token for the mailbox and a test message', async () => {
    const run = await cli(config(gmailUpstream({ url: google.url, file: account.file })), '--send-to', 'bob@example.net');
    assert.equal(run.code, 0, run.stdout + run.stderr);
    assert.match(run.stdout, /ok {3}token .*scope: https:\/\/www\.googleapis\.com\/auth\/gmail\.send/);
    assert.match(run.stdout, /ok {3}send to bob@example\.net as scanner@example\.com/);
  });

  it('gmail delegation missing → the admin console step with client id and scope', async () => {
    google.delegated.delete(GMAIL_SEND);
    try {
      const run = await cli(config(gmailUpstream({ url: google.url, file: account.file })));
      assert.equal(run.code, 78);
      assert.match(run.stdout, /FAIL token .*unauthorized_client/);
      assert.match(
        run.stdout,
        new RegExp(
          `→ configure domain-wide delegation: admin\\.google\\.com → .*Manage Domain Wide Delegation → Add new: client ID ${account.clientId}, OAuth scopes https://www\\.googleapis\\.com/auth/gmail\\.send`,
        ),
      );
    } finally {
      google.delegated.add(GMAIL_SEND);
    }
  });

  it('gmail mailbox not found → set send_as to an existing user', async () => {
    const run = await cli(config(gmailUpstream({ url: google.url, file: account.file })), '--from', 'gone@example.com');
    assert.equal(run.code, 78);
    assert.match(run.stdout, /FAIL token .*Invalid email or User ID/);
    assert.match(run.stdout, /→ gone@example\.com is not a user of the Workspace/);
  });
});
