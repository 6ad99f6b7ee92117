/** The [control] and [metrics] config tables. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseConfig } from '../src/config/load.js';
import { ConfigError } from '../src/errors.js';

const BASE = `[spool]\npath = "/var/lib/mailshim/spool"\n[[upstream]]\ntype = "maildir"\npath = "/tmp/out"\n`;

describe('[control] and [metrics]', () => {
  it('defaults: control socket next to the spool, mode 0600, no metrics', () => {
    const config = parseConfig(BASE, '/etc/mailshim/mailshim.toml', {});
    assert.deepEqual(config.control, { socket: '/var/lib/mailshim/spool/control.sock', mode: 0o600 });
    assert.equal(config.metrics, undefined);
  });

  it('reads socket, mode and the metrics address (default 127.0.0.1:9325)', () => {
    const config = parseConfig(`${BASE}[control]\nsocket = "/run/mailshim/control.sock"\nmode = "0660"\n[metrics]\n`, '/etc/m.toml', {});
    assert.deepEqual(config.control, { socket: '/run/mailshim/control.sock', mode: 0o660 });
    assert.deepEqual(config.metrics, { address: '127.0.0.1:9325', host: '127.0.0.1', port: 9325 });
    const v6 = parseConfig(`${BASE}[metrics]\naddress = "[::1]:9400"\n`, '/etc/m.toml', {});
    assert.deepEqual(v6.metrics, { address: '[::1]:9400', host: '::1', port: 9400 });
  });

  it('rejects a bad mode, a bad address and unknown keys, naming the line', () => {
    assert.throws(
      () => parseConfig(`${BASE}[control]\nmode = "0666"\n[metrics]\naddress = "9325"\nport = 1\n`, 'm.toml', {}),
      (error: unknown) => {
        assert.ok(error instanceof ConfigError);
        assert.deepEqual(error.problems, [
          'm.toml:7: control.mode: expected one of "0600", "0660", got "0666"',
          'm.toml:9: metrics.address: expected "host:port" or "[ipv6]:port", got "9325"',
          'm.toml:10: metrics.port: unknown key',
        ]);
        return true;
      },
    );
  });
});
