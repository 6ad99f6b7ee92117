/** Validation of [[upstream]] tables of type m365 and gmail: defaults, every error message, masking, secret files listed for the permission check. */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { parseConfig } from '../src/config/load.js';
import { maskedConfig } from '../src/config/mask.js';
import type { GmailUpstreamConfig, M365UpstreamConfig } from '../src/config/types.js';
import { makeAppCertificate, makeServiceAccount, type AppCertificate } from './helpers/oauth-keys.js';
import { tempDir } from './helpers/tmp.js';
import { configProblems } from './helpers/config.js';

const doc = (upstream: string) => `hostname = "h.test"\n[spool]\npath = "/tmp/x"\n\n[[upstream]]\n${upstream.trim()}\n`;
const M365 = 'type = "m365"\ntenant = "contoso.onmicrosoft.com"\nclient_id = "11111111-2222-3333-4444-555555555555"';

describe('m365 / gmail upstream config', () => {
  let dir: ReturnType<typeof tempDir>;
  let cert: AppCertificate;
  let other: AppCertificate;
  let file: string;
  before(() => {
    dir = tempDir();
    cert = makeAppCertificate(dir.path, 'app');
    other = makeAppCertificate(dir.path, 'other');
    file = join(dir.path, 'mailshim.toml');
  });
  after(() => dir.cleanup());

  const problems = (upstream: string, env: NodeJS.ProcessEnv = {}) => configProblems(doc(upstream), file, env);

  it('m365 defaults: Graph, the tenant token endpoint, smtp.office365.com:587 starttls, mailbox_domains from send_as; the secret masked and its file permission-checked', () => {
    const secret = join(dir.path, 'm365.secret');
    writeFileSync(secret, 'S3cret~value\n', { mode: 0o600 });
    const config = parseConfig(doc(`${M365}\nclient_secret_file = "${secret}"\nsend_as = "scanner@contoso.com"`), file, {});
    const u = config.upstreams[0] as M365UpstreamConfig;
    assert.equal(u.via, 'graph');
    assert.equal(u.clientSecret, 'S3cret~value');
    assert.equal(u.endpoint, 'https://graph.microsoft.com');
    assert.equal(u.tokenEndpoint, 'https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/token');
    assert.deepEqual(u.smtp, { host: 'smtp.office365.com', port: 587, tls: 'starttls', ca: undefined });
    assert.deepEqual(u.mailboxDomains, ['contoso.com']);
    assert.ok(config.secretFiles.includes(secret));
    assert.ok(!maskedConfig(config).includes('S3cret~value'));
  });

  it('m365 with a certificate: the pair must match; the private key is masked', () => {
    const ok = parseConfig(doc(`${M365}\ncertificate_file = "${cert.certFile}"\nprivate_key_file = "${cert.keyFile}"`), file, {});
    assert.ok(ok.secretFiles.includes(cert.keyFile));
    assert.ok(!maskedConfig(ok).includes('PRIVATE KEY'));
    assert.match(problems(`${M365}\ncertificate_file = "${cert.certFile}"\nprivate_key_file = "${other.keyFile}"`).join('\n'), /private_key_file: does not belong to the certificate/);
  });

  it('m365 errors: credential missing, both kinds, half a certificate, bad tenant, bad client_id, bad via', () => {
    assert.match(problems(M365).join('\n'), /client_secret: is required \(client_secret_file\), or certificate_file \+ private_key_file/);
    assert.match(problems(`${M365}\nclient_secret = "x"\ncertificate_file = "${cert.certFile}"\nprivate_key_file = "${cert.keyFile}"`).join('\n'), /either client_secret\(_file\) or certificate_file/);
    assert.match(problems(`${M365}\ncertificate_file = "${cert.certFile}"`).join('\n'), /private_key_file: certificate_file and private_key_file go together/);
    assert.match(problems('type = "m365"\ntenant = "not a tenant"\nclient_id = "11111111-2222-3333-4444-555555555555"\nclient_secret = "x"').join('\n'), /tenant: expected the tenant's domain/);
    assert.match(
      problems('type = "m365"\ntenant = "contoso.onmicrosoft.com"\nclient_id = "my-app"\nclient_secret = "x"').join('\n'),
      /client_id: expected the app's Application \(client\) ID, a GUID/,
    );
    assert.match(problems(`${M365}\nclient_secret = "x"\nvia = "api"`).join('\n'), /via: expected one of "graph", "smtp"/);
    assert.match(problems(`${M365}\nclient_secret = "x"\nendpoint = "http://graph.example.com"`).join('\n'), /endpoint: must use https/);
  });

  it('gmail: reads the key file (permission-checked), token_uri https is used, api by default; bad files are refused', () => {
    const account = makeServiceAccount(dir.path, 'https://oauth2.googleapis.com/token');
    const config = parseConfig(doc(`type = "gmail"\nservice_account_file = "${account.file}"\nvia = "smtp"`), file, {});
    const u = config.upstreams[0] as GmailUpstreamConfig;
    assert.equal(u.clientEmail, account.clientEmail);
    assert.equal(u.clientId, account.clientId);
    assert.equal(u.tokenEndpoint, 'https://oauth2.googleapis.com/token');
    assert.equal(u.smtp.host, 'smtp.gmail.com');
    assert.ok(config.secretFiles.includes(account.file));
    assert.ok(!maskedConfig(config).includes('PRIVATE KEY'));
    const notJson = join(dir.path, 'bad.json');
    writeFileSync(notJson, 'nope', { mode: 0o600 });
    assert.match(problems(`type = "gmail"\nservice_account_file = "${notJson}"`).join('\n'), /is not JSON/);
    const wrongType = join(dir.path, 'user.json');
    writeFileSync(wrongType, JSON.stringify({ type: 'authorized_user', client_id: 'x' }), { mode: 0o600 });
    assert.match(problems(`type = "gmail"\nservice_account_file = "${wrongType}"`).join('\n'), /expected "type": "service_account"/);
    assert.match(problems('type = "gmail"').join('\n'), /service_account_file: is required/);
  });
});
