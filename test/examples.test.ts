/** Every examples/*.toml passes `mailshim check-config` once its ${VARS} are set, with the secrets masked. */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { MAILSHIM, REPO } from './helpers/daemon.js';
import { makeServiceAccount } from './helpers/oauth-keys.js';
import { tempDir } from './helpers/tmp.js';

const dir = join(REPO, 'examples');
const files = readdirSync(dir).filter((f) => f.endsWith('.toml'));

function variables(toml: string): string[] {
  const code = toml
    .split('\n')
    .map((line) => line.replace(/#.*$/, ''))
    .join('\n');
  return [...new Set([...code.matchAll(/\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g)].map((m) => m[1]!))];
}

describe('examples/*.toml', () => {
  it('has one example per REST provider', () => {
    for (const provider of ['sendgrid', 'mailgun', 'postmark', 'resend', 'ses', 'mailjet', 'brevo', 'sparkpost']) assert.ok(files.includes(`${provider}.toml`), provider);
  });

  for (const name of files) {
    it(`${name} passes check-config`, () => {
      const toml = readFileSync(join(dir, name), 'utf8');
      const vars = variables(toml);
      const env: NodeJS.ProcessEnv = { ...process.env };
      for (const v of vars) env[v] = `example-value-of-${v}`;
      // A key file the example reads from a systemd credentials directory (gmail.toml).
      const credentials = vars.includes('CREDENTIALS_DIRECTORY') ? tempDir() : undefined;
      if (credentials) {
        makeServiceAccount(credentials.path, 'https://oauth2.googleapis.com/token');
        env.CREDENTIALS_DIRECTORY = credentials.path;
      }
      const run = spawnSync(process.execPath, [MAILSHIM, 'check-config', '--config', join(dir, name)], { env, encoding: 'utf8' });
      credentials?.cleanup();
      assert.equal(run.status, 0, run.stderr);
      assert.match(run.stdout, /: OK\n/);
      const secrets = [...toml.matchAll(/^(?:api_key|secret_key|secret_access_key|session_token|password|client_secret) = "\$\{(\w+)\}"/gm)].map((m) => m[1]!);
      assert.ok(name === 'local.toml' || name === 'gmail.toml' || secrets.length > 0, 'the example has a secret');
      for (const v of secrets) assert.ok(!run.stdout.includes(`example-value-of-${v}`), `${v} is masked`);
      // CREDENTIALS_DIRECTORY has a default (systemd credentials); every other variable must be set.
      if (vars.some((v) => v !== 'CREDENTIALS_DIRECTORY')) {
        const missing = spawnSync(process.execPath, [MAILSHIM, 'check-config', '--config', join(dir, name)], { env: { PATH: process.env.PATH }, encoding: 'utf8' });
        assert.equal(missing.status, 78, 'unset variables are a configuration error (EX_CONFIG)');
        assert.match(missing.stderr, /environment variable \w+ is not set/);
      }
    });
  }
});
