/** Config validation: every error names the file, the line and the key. */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { loadConfig, parseConfig } from '../src/config/load.js';
import { maskedConfig } from '../src/config/mask.js';
import { parseDuration, parseSize } from '../src/config/units.js';
import { type ConfigError } from '../src/errors.js';
import { makeCert } from './helpers/tls.js';
import { tempDir } from './helpers/tmp.js';
import { configProblems } from './helpers/config.js';

const MINIMAL = `[[upstream]]\ntype = "maildir"\npath = "/tmp/out"\n`;

const problems = (source: string, env: NodeJS.ProcessEnv = {}) => configProblems(source, 'mailshim.toml', env);

describe('config', () => {
  it('applies documented defaults', () => {
    const config = parseConfig(MINIMAL, '/etc/mailshim/mailshim.toml', {});
    assert.equal(config.spool.path, '/var/spool/mailshim');
    assert.equal(config.spool.maxMessageSize, 25 * 1024 * 1024);
    assert.equal(config.spool.maxRecipients, 100);
    assert.deepEqual(config.retry, { initialDelay: 60_000, maxDelay: 3_600_000, maxAge: 5 * 86_400_000, delayWarning: 0 });
    assert.equal(config.listen.length, 1);
    const listen = config.listen[0]!;
    assert.deepEqual([listen.address, listen.allow, listen.tls, listen.auth], ['127.0.0.1:25', ['127.0.0.0/8', '::1/128'], 'none', 'off']);
    assert.equal(config.bounceFrom, `MAILER-DAEMON@${config.hostname}`);
    assert.equal(config.upstreams[0]!.name, 'primary');
  });

  it('names file, line and key for a bad port', () => {
    const source = `hostname = "a.example"\n\n[[upstream]]\nname = "p"\ntype = "smtp"\nhost = "smtp.example.com"\nport = "abc"\n`;
    assert.deepEqual(problems(source), ['mailshim.toml:7: upstream[0].port: expected an integer 1-65535, got "abc"']);
  });

  it('reports unknown keys with a did-you-mean, in nested tables too', () => {
    const source = `hostnme = "x"\n[spool]\nmax_mesage_size = "1MB"\n${MINIMAL}`;
    assert.deepEqual(problems(source), ['mailshim.toml:3: spool.max_mesage_size: unknown key (did you mean "max_message_size"?)', 'mailshim.toml:1: hostnme: unknown key (did you mean "hostname"?)']);
  });

  it('rejects bad durations, sizes, enums, CIDRs and addresses', () => {
    const source = `[spool]\nmax_message_size = "lots"\n[retry]\ninitial_delay = "soon"\n[[listen]]\naddress = "localhost"\nallow = ["10.0.0.0/33"]\n[[upstream]]\ntype = "smtp"\nhost = "h.example"\ntls = "maybe"\n`;
    assert.deepEqual(problems(source), [
      'mailshim.toml:2: spool.max_message_size: expected a size like "512KB" or "25MB", got "lots"',
      'mailshim.toml:4: retry.initial_delay: expected a duration like "30s", "5m", "2h" or "5d", got "soon"',
      'mailshim.toml:6: listen[0].address: expected "host:port" or "[ipv6]:port", got "localhost"',
      'mailshim.toml:7: listen[0].allow: expected CIDR networks like "192.168.1.0/24", got "10.0.0.0/33"',
      'mailshim.toml:11: upstream[0].tls: expected one of "starttls", "implicit", "none", got "maybe"',
    ]);
  });

  it('requires an upstream and its type', () => {
    assert.deepEqual(problems(`hostname = "x"\n`), ['mailshim.toml: upstream: at least one [[upstream]] table is required']);
    assert.deepEqual(problems(`[[upstream]]\nname = "a"\n`), ['mailshim.toml:1: upstream[0].type: is required']);
    assert.deepEqual(problems(`[[upstream]]\ntype = "carrier-pigeon"\n`), [
      'mailshim.toml:2: upstream[0].type: expected one of "smtp", "maildir", "sendgrid", "mailgun", "postmark", "resend", "ses", "mailjet", "brevo", "sparkpost", "m365", "gmail", got "carrier-pigeon"',
    ]);
  });

  it('refuses tls = "none" unless the host is loopback', () => {
    assert.deepEqual(problems(`[[upstream]]\ntype = "smtp"\nhost = "smtp.example.com"\ntls = "none"\n`), [
      'mailshim.toml:4: upstream[0].tls: "none" sends credentials and mail in clear text; it is only allowed when host is loopback, got "smtp.example.com"',
    ]);
    const ok = parseConfig(`[[upstream]]\ntype = "smtp"\nhost = "127.0.0.1"\ntls = "none"\n`, 'm.toml', {});
    assert.equal(ok.upstreams[0]!.type === 'smtp' && ok.upstreams[0]!.port, 25);
  });

  it('expands ${VAR} and treats an unset variable as an error', () => {
    const source = `[[upstream]]\ntype = "smtp"\nhost = "\${SMTP_HOST}"\nusername = "u"\npassword = "\${SMTP_PASS}"\n`;
    const config = parseConfig(source, 'm.toml', { SMTP_HOST: 'smtp.example.com', SMTP_PASS: 's3cret' });
    const upstream = config.upstreams[0]!;
    assert.ok(upstream.type === 'smtp');
    assert.equal(upstream.host, 'smtp.example.com');
    assert.equal(upstream.password, 's3cret');
    assert.equal(upstream.port, 587);
    assert.deepEqual(problems(source, { SMTP_HOST: 'h.example' }), ['mailshim.toml:5: upstream[0].password: environment variable SMTP_PASS is not set']);
  });

  it('reads *_file secrets relative to the config file, trimming the newline; check-config masks them', () => {
    const dir = tempDir();
    try {
      writeFileSync(join(dir.path, 'primary.secret'), 'hunter2-secret\n', { mode: 0o600 });
      const file = join(dir.path, 'mailshim.toml');
      writeFileSync(file, `[spool]\npath = "spool"\n[[upstream]]\ntype = "smtp"\nhost = "smtp.example.com"\nusername = "apikey"\npassword_file = "primary.secret"\n`);
      const config = loadConfig(file, {});
      const upstream = config.upstreams[0]!;
      assert.ok(upstream.type === 'smtp');
      assert.equal(upstream.password, 'hunter2-secret');
      assert.equal(config.spool.path, join(dir.path, 'spool'));
      const printed = maskedConfig(config);
      assert.ok(!printed.includes('hunter2'), printed);
      assert.match(printed, /password = "\*{8}"/);
      writeFileSync(file, `[[upstream]]\ntype = "smtp"\nhost = "smtp.example.com"\nusername = "apikey"\npassword_file = "missing.secret"\n`);
      assert.throws(
        () => loadConfig(file, {}),
        (e: ConfigError) => e.problems[0] === `${file}:5: upstream[0].password_file: cannot read ${join(dir.path, 'missing.secret')}: ENOENT`,
      );
    } finally {
      dir.cleanup();
    }
  });

  it('check-config output loads back as a config with the same settings', () => {
    const dir = tempDir();
    try {
      const cert = makeCert(dir.path, 'ca', 'relay.example.com');
      writeFileSync(
        join(dir.path, 'mailshim.toml'),
        `hostname = "relay.test"
[spool]
path = "spool"
[retry]
max_age = "3d"
delay_warning_time = "4h"
[[listen]]
address = "127.0.0.1:2525"
[[upstream]]
name = "private"
type = "smtp"
host = "relay.example.com"
ca_file = "${cert.cert}"
username = "u"
password = "secret-pw"
match_from = ["*@example.org"]
[[upstream]]
name = "api"
type = "postmark"
api_key = "secret-key"
`,
      );
      const config = loadConfig(join(dir.path, 'mailshim.toml'), {});
      const printed = maskedConfig(config);
      assert.doesNotMatch(printed, /secret-|PEM/);
      writeFileSync(join(dir.path, 'printed.toml'), printed);
      const again = loadConfig(join(dir.path, 'printed.toml'), {});
      const strip = (c: typeof config) => ({
        ...c,
        file: '',
        upstreams: c.upstreams.map((u) => ({ ...u, password: undefined, apiKey: undefined })),
        secretFiles: [],
        inlineSecrets: false,
        warnings: [],
      });
      assert.deepEqual(strip(again), strip(config));
      const smtp = again.upstreams[0]!;
      assert.ok(smtp.type === 'smtp' && smtp.ca === cert.pem, 'ca_file names the same certificate');
    } finally {
      dir.cleanup();
    }
  });

  it('listener rules: never an open relay, TLS needs cert and key, clear-text AUTH only when asked', () => {
    const listen = (body: string) => `[[listen]]\naddress = "0.0.0.0:25"\n${body}\n${MINIMAL}`;
    assert.deepEqual(problems(listen('allow = ["0.0.0.0/0"]')), ['mailshim.toml:3: listen[0].allow: 0.0.0.0/0 without auth = "required" would make an open relay']);
    assert.deepEqual(problems(listen('tls = "starttls"\ncert = "/c.pem"')), ['mailshim.toml:1: listen[0].key: is required when tls = "starttls"']);
    assert.deepEqual(problems(listen('auth = "required"')), [
      'mailshim.toml:1: listen[0].users_file: is required when auth = "required"',
      'mailshim.toml:3: listen[0].auth: auth = "required" with tls = "none" can never succeed: set tls, or require_tls_for_auth = false for old appliances',
    ]);
    assert.deepEqual(problems(listen('auth = "optional"\nusers_file = "/u"\nrequire_tls_for_auth = false')), [
      'mailshim.toml:1: listen[0].allow: a wildcard listener accepting clear-text AUTH needs an explicit allow list',
    ]);
    const lan = parseConfig(listen('allow = ["192.168.10.0/24"]\nauth = "optional"\nusers_file = "/u"\nrequire_tls_for_auth = false\nrate_limit = "120/m"'), 'mailshim.toml', {});
    assert.deepEqual(lan.warnings, ['mailshim.toml:6: listen[0].require_tls_for_auth: passwords are accepted in clear text on a network listener']);
    assert.deepEqual(lan.listen[0]!.rateLimit, { count: 120, perMs: 60_000 });
    assert.deepEqual(lan.secretFiles, ['/u']);
    const open = parseConfig(listen('allow = ["0.0.0.0/0"]\nauth = "required"\nusers_file = "/u"\ntls = "implicit"\ncert = "/c"\nkey = "/k"'), 'mailshim.toml', {});
    assert.equal(open.listen[0]!.requireTlsForAuth, true, 'TLS required for AUTH by default off loopback');
  });

  it('reports a TOML syntax error with its line', () => {
    assert.throws(
      () => parseConfig(`[spool]\npath = \n`, 'mailshim.toml', {}),
      (e: ConfigError) => /^mailshim\.toml:2: /.test(e.message),
    );
  });

  it('parses durations and sizes', () => {
    assert.equal(parseDuration('30s'), 30_000);
    assert.equal(parseDuration('5m'), 300_000);
    assert.equal(parseDuration('1h30m'), 5_400_000);
    assert.equal(parseDuration('5d'), 432_000_000);
    assert.equal(parseDuration('5 days'), undefined);
    assert.equal(parseSize('512KB'), 524_288);
    assert.equal(parseSize('25MB'), 26_214_400);
    assert.equal(parseSize('25XB'), undefined);
  });
});
