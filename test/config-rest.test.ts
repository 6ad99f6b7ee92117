/** Validation of the REST [[upstream]] tables: every error message, and the masked output. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseConfig } from '../src/config/load.js';
import { maskedConfig } from '../src/config/mask.js';
import { configProblems } from './helpers/config.js';

const file = '/etc/mailshim/test.toml';
const doc = (upstream: string) => `hostname = "h.test"\n[spool]\npath = "/tmp/x"\n\n[[upstream]]\n${upstream.trim()}\n`;
// The [[upstream]] header is line 5; keys follow from line 6.

const problems = (upstream: string, env: NodeJS.ProcessEnv = {}) => configProblems(doc(upstream), file, env);

describe('REST upstream config', () => {
  it('reads every provider type with its defaults', () => {
    const config = parseConfig(
      `${doc('type = "sendgrid"\napi_key = "${SG}"\nrate_limit = "10/s"\nmax_concurrency = 3\ntimeout = "20s"')}
[[upstream]]\nname = "mg"\ntype = "mailgun"\napi_key = "k"\ndomain = "mg.example.com"\nendpoint = "https://api.eu.mailgun.net/"
[[upstream]]\nname = "ses"\ntype = "ses"\naccess_key_id = "AKID"\nsecret_access_key = "s"\nregion = "eu-west-1"
[[upstream]]\nname = "mj"\ntype = "mailjet"\napi_key = "k"\nsecret_key = "s"
[[upstream]]\nname = "local"\ntype = "postmark"\napi_key = "k"\nendpoint = "http://127.0.0.1:8080"\n`,
      file,
      { SG: 'SG.secret' },
    );
    const [sg, mg, ses, mj, local] = config.upstreams;
    assert.deepEqual(sg, {
      name: 'primary',
      matchFrom: [],
      maxConcurrency: 3,
      timeout: 20_000,
      rateLimit: { count: 10, perMs: 1000 },
      unsupported: 'fallback',
      type: 'sendgrid',
      apiKey: 'SG.secret',
      endpoint: 'https://api.sendgrid.com',
    });
    assert.equal(mg?.type === 'mailgun' && mg.endpoint, 'https://api.eu.mailgun.net');
    assert.equal(ses?.type === 'ses' && ses.endpoint, 'https://email.eu-west-1.amazonaws.com');
    assert.equal(mj?.type === 'mailjet' && mj.secretKey, 's');
    assert.equal(local?.type === 'postmark' && local.endpoint, 'http://127.0.0.1:8080');
    const masked = maskedConfig(config);
    assert.ok(!masked.includes('SG.secret'), 'api_key masked');
    assert.match(masked, /api_key = "\*\*\*\*\*\*\*\*"/);
    assert.match(masked, /secret_access_key = "\*\*\*\*\*\*\*\*"/);
    assert.match(masked, /rate_limit = "10\/s"/);
  });

  it('ships each provider\'s documented default rate_limit, which rate_limit overrides or "none" turns off', () => {
    const rate = (upstream: string) => {
      const [u] = parseConfig(doc(upstream), file, {}).upstreams;
      return u && 'rateLimit' in u ? u.rateLimit : undefined;
    };
    assert.deepEqual(rate('type = "resend"\napi_key = "k"'), { count: 2, perMs: 1000 });
    assert.deepEqual(rate('type = "brevo"\napi_key = "k"'), { count: 1000, perMs: 1000 });
    assert.deepEqual(rate('type = "ses"\naccess_key_id = "A"\nsecret_access_key = "s"\nregion = "eu-west-1"'), { count: 1, perMs: 1000 });
    assert.equal(rate('type = "postmark"\napi_key = "k"'), undefined, 'Postmark documents no number: 429 and its reset are honoured');
    assert.deepEqual(rate('type = "resend"\napi_key = "k"\nrate_limit = "10/s"'), { count: 10, perMs: 1000 });
    assert.equal(rate('type = "resend"\napi_key = "k"\nrate_limit = "none"'), undefined);
  });

  it("reads unsupported (default fallback) and Postmark's message_stream (default outbound)", () => {
    const [a, b] = parseConfig(
      `${doc('type = "postmark"\napi_key = "k"\nmessage_stream = "alerts"\nunsupported = "degrade"')}[[upstream]]\nname = "b"\ntype = "brevo"\napi_key = "k"\n`,
      file,
      {},
    ).upstreams;
    assert.ok(a?.type === 'postmark' && a.messageStream === 'alerts' && a.unsupported === 'degrade');
    assert.ok(b?.type === 'brevo' && b.unsupported === 'fallback');
    const [c] = parseConfig(doc('type = "postmark"\napi_key = "k"'), file, {}).upstreams;
    assert.ok(c?.type === 'postmark' && c.messageStream === 'outbound');
    assert.deepEqual(problems('type = "brevo"\napi_key = "k"\nunsupported = "drop"'), [`${file}:8: upstream[0].unsupported: expected one of "fallback", "degrade", "bounce", got "drop"`]);
  });

  const cases: Array<[string, string, string | string[]]> = [
    [
      'http endpoint to a remote host',
      'type = "resend"\napi_key = "k"\nendpoint = "http://api.resend.com"',
      `${file}:8: upstream[0].endpoint: must use https (http is only allowed for a loopback host), got "http://api.resend.com"`,
    ],
    [
      'endpoint that is not a URL',
      'type = "resend"\napi_key = "k"\nendpoint = "api.resend.com"',
      `${file}:8: upstream[0].endpoint: expected a URL like "https://api.eu.example.com", got "api.resend.com"`,
    ],
    [
      'endpoint with credentials',
      'type = "resend"\napi_key = "k"\nendpoint = "https://u:p@api.resend.com"',
      `${file}:8: upstream[0].endpoint: must be a base URL without query, fragment or credentials, got "https://u:p@api.resend.com"`,
    ],
    ['missing api_key', 'type = "postmark"', `${file}:5: upstream[0].api_key: is required (or api_key_file)`],
    ['empty api_key', 'type = "postmark"\napi_key = ""', `${file}:7: upstream[0].api_key: must not be empty`],
    ['api_key and api_key_file', 'type = "postmark"\napi_key = "k"\napi_key_file = "/nonexistent"', `${file}:8: upstream[0].api_key_file: set either api_key or api_key_file, not both`],
    ['unreadable api_key_file', 'type = "postmark"\napi_key_file = "/nonexistent/key"', `${file}:7: upstream[0].api_key_file: cannot read /nonexistent/key: ENOENT`],
    ['unset environment variable', 'type = "brevo"\napi_key = "${BREVO_KEY}"', `${file}:7: upstream[0].api_key: environment variable BREVO_KEY is not set`],
    ['misspelt key', 'type = "sparkpost"\napi_kye = "k"', [`${file}:5: upstream[0].api_key: is required (or api_key_file)`, `${file}:7: upstream[0].api_kye: unknown key (did you mean "api_key"?)`]],
    ['mailgun without domain', 'type = "mailgun"\napi_key = "k"', `${file}:5: upstream[0].domain: is required`],
    [
      'mailgun bad domain',
      'type = "mailgun"\napi_key = "k"\ndomain = "https://mg.example.com"',
      `${file}:8: upstream[0].domain: expected a sending domain like "mg.example.com", got "https://mg.example.com"`,
    ],
    ['mailjet without secret_key', 'type = "mailjet"\napi_key = "k"', `${file}:5: upstream[0].secret_key: is required (or secret_key_file)`],
    ['ses without access_key_id', 'type = "ses"\nsecret_access_key = "s"\nregion = "us-east-1"', `${file}:5: upstream[0].access_key_id: is required`],
    ['ses bad region', 'type = "ses"\naccess_key_id = "A"\nsecret_access_key = "s"\nregion = "Frankfurt"', `${file}:9: upstream[0].region: expected an AWS region like "eu-west-1", got "Frankfurt"`],
    ['bad rate_limit', 'type = "resend"\napi_key = "k"\nrate_limit = "10 per second"', `${file}:8: upstream[0].rate_limit: expected a rate like "10/s" or "120/m", got "10 per second"`],
    [
      'bad match_from',
      'type = "resend"\napi_key = "k"\nmatch_from = ["billing.example.com"]',
      `${file}:8: upstream[0].match_from: expected sender patterns like "*@billing.example.com", got "billing.example.com"`,
    ],
    ['smtp key on a REST upstream', 'type = "resend"\napi_key = "k"\nhost = "smtp.resend.com"', `${file}:8: upstream[0].host: unknown key`],
    [
      'unknown type',
      'type = "sendgird"',
      `${file}:6: upstream[0].type: expected one of "smtp", "maildir", "sendgrid", "mailgun", "postmark", "resend", "ses", "mailjet", "brevo", "sparkpost", "m365", "gmail", got "sendgird"`,
    ],
  ];
  for (const [name, table, expected] of cases) {
    it(`reports ${name}`, () => {
      assert.deepEqual(problems(table), Array.isArray(expected) ? expected : [expected]);
    });
  }
});
