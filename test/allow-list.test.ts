/**
 * Issue 10 item 10: every spelling of "the whole IPv4 Internet" in a listener's `allow` is caught
 * by the open-relay check, and the matcher admits exactly the ranges the check examined.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { allowMatcher, normalizeCidr, parseCidr } from '../src/config/address.js';
import { parseConfig } from '../src/config/load.js';
import { ConfigError } from '../src/errors.js';
import { runCli } from './helpers/cli.js';
import { relayConfig } from './helpers/config.js';
import { startDaemon, writeConfig } from './helpers/daemon.js';
import { greetingFrom } from './helpers/smtp-client.js';
import { tempDir } from './helpers/tmp.js';

const listen = (allow: string, extra = '') => `[[listen]]\naddress = "[::]:25"\nallow = [${JSON.stringify(allow)}]\n${extra}\n[[upstream]]\ntype = "maildir"\npath = "/tmp/out"\n`;

function problems(source: string): string[] {
  try {
    parseConfig(source, 'mailshim.toml', {});
    return [];
  } catch (error) {
    assert.ok(error instanceof ConfigError, String(error));
    return error.problems;
  }
}

describe('allow-list normalisation', () => {
  it('refuses every spelling of an open IPv4 relay without auth = "required"', () => {
    const open: Array<[string, string]> = [
      ['0.0.0.0/0', '0.0.0.0/0 without'],
      ['0.0.0.0/00', '0.0.0.0/0 without'],
      ['::ffff:0:0/96', '::ffff:0:0/96 (covers 0.0.0.0/0) without'],
      ['::ffff:0.0.0.0/96', '::ffff:0.0.0.0/96 (covers 0.0.0.0/0) without'],
      ['0:0:0:0:0:ffff:0:0/96', '0:0:0:0:0:ffff:0:0/96 (covers 0.0.0.0/0) without'],
      ['::ffff:0:0/95', '::ffff:0:0/95 (covers 0.0.0.0/0) without'],
      ['::ffff:0.0.0.0/97', '::ffff:0.0.0.0/97 (covers 0.0.0.0/1) without'],
      ['::ffff:128.0.0.0/100', '::ffff:128.0.0.0/100 (covers 128.0.0.0/4) without'],
      ['::/80', '::/80 (covers 0.0.0.0/0) without'],
      ['::/0', '::/0 without'],
      ['0::0/0', '0::0/0 without'],
      ['::/1', '::/1 without'],
      ['2000::/3', '2000::/3 without'],
    ];
    for (const [allow, message] of open) {
      const found = problems(listen(allow));
      assert.equal(found.length, 1, `${allow}: ${found.join('; ')}`);
      assert.ok(found[0]!.includes(`listen[0].allow: ${message} auth = "required" would make an open relay`), `${allow}: ${found[0]}`);
    }
  });

  it('accepts narrow ranges, however spelled, and wide ones behind auth = "required"', () => {
    for (const allow of ['::ffff:10.0.0.0/104', '::ffff:a00:0/104', '10.0.0.0/8', '::ffff:127.0.0.1', '::1/128', '2001:db8::/32']) {
      assert.deepEqual(problems(listen(allow)), [], allow);
    }
    const required = 'auth = "required"\nusers_file = "/u"\ntls = "implicit"\ncert = "/c"\nkey = "/k"';
    assert.deepEqual(problems(listen('::ffff:0:0/96', required)), []);
  });

  it('normalises IPv4-mapped ranges to the IPv4 range they cover', () => {
    const norm = (text: string) => normalizeCidr(parseCidr(text)!).map((c) => `${c.address}/${c.prefix}`);
    assert.deepEqual(norm('::ffff:10.0.0.0/104'), ['10.0.0.0/8']);
    assert.deepEqual(norm('::ffff:c000:200/120'), ['192.0.2.0/24']);
    assert.deepEqual(norm('::ffff:0:0/96'), ['::ffff:0:0/96', '0.0.0.0/0']);
    assert.deepEqual(norm('::/0'), ['::/0', '0.0.0.0/0']);
    assert.deepEqual(norm('2001:db8::/32'), ['2001:db8::/32']);
    assert.deepEqual(norm('192.0.2.0/24'), ['192.0.2.0/24']);
  });

  it('matches IPv4 clients, plain or IPv4-mapped, against the IPv4 ranges only', () => {
    const mapped = allowMatcher(['::ffff:10.0.0.0/104']);
    assert.equal(mapped('10.1.2.3'), true);
    assert.equal(mapped('::ffff:10.1.2.3'), true);
    assert.equal(mapped('::ffff:a01:203'), true);
    assert.equal(mapped('192.0.2.2'), false);
    assert.equal(mapped('::ffff:192.0.2.2'), false);
    const loopback = allowMatcher(['127.0.0.0/8', '::1/128']);
    assert.equal(loopback('::ffff:127.0.0.1'), true);
    assert.equal(loopback('::ffff:192.0.2.2'), false);
    assert.equal(loopback('::1'), true);
    assert.equal(loopback('::2'), false);
    // An IPv6 range that holds no mapped addresses never admits an IPv4 client.
    const v6 = allowMatcher(['2001:db8::/32', '::/96']);
    assert.equal(v6('192.0.2.2'), false);
    assert.equal(v6('::ffff:192.0.2.2'), false);
    assert.equal(v6('2001:db8::5'), true);
    assert.equal(v6('junk'), false);
  });

  it('check-config refuses allow = ["::ffff:0:0/96"]; a dual-stack listener admits only the mapped range it was given', async () => {
    const dir = tempDir();
    try {
      const open = writeConfig(dir.path, relayConfig({ spool: `${dir.path}/spool`, allow: ['::ffff:0:0/96'] }), 'open.toml');
      const checked = await runCli(['check-config', '--config', open]);
      assert.notEqual(checked.code, 0, checked.stdout);
      assert.match(checked.stderr, /::ffff:0:0\/96 \(covers 0\.0\.0\.0\/0\) without auth = "required" would make an open relay/);

      const narrow = relayConfig({ spool: `${dir.path}/spool`, allow: ['::ffff:127.0.0.1/128'] }).replace('address = "127.0.0.1:0"', 'address = "[::]:0"');
      const daemon = await startDaemon(writeConfig(dir.path, narrow));
      try {
        assert.match(await greetingFrom(daemon.port, '127.0.0.2'), /^554 5\.7\.1 /);
        assert.match(await greetingFrom(daemon.port, '127.0.0.1'), /^220 /);
      } finally {
        await daemon.stop();
      }
    } finally {
      dir.cleanup();
    }
  });
});
