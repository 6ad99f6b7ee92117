/**
 * systemd integration: socket activation with real passed sockets, `install --systemd` into a temp
 * prefix, `systemd-analyze verify`/`security` on the units, and whether Node survives
 * MemoryDenyWriteExecute. Where a tool is missing the test checks the unit text instead and says so.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync, statSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { runCli } from './helpers/cli.js';
import { relayConfig } from './helpers/config.js';
import { REPO, startDaemon, writeConfig, type RunningDaemon } from './helpers/daemon.js';
import { RawSmtp } from './helpers/smtp-client.js';
import { tempDir } from './helpers/tmp.js';

const SERVICE = join(REPO, 'systemd/mailshim.service');
const SOCKET = join(REPO, 'systemd/mailshim.socket');

function has(tool: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${tool}`]).status === 0;
}

function fdOf(server: Server): number {
  return (server as unknown as { _handle: { fd: number } })._handle.fd;
}

async function listening(): Promise<Server> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  return server;
}

describe('systemd socket activation', () => {
  let dir: ReturnType<typeof tempDir>;
  let daemon: RunningDaemon;
  let matched: number;
  let unmatched: number;
  let config: string;

  before(async () => {
    dir = tempDir();
    const a = await listening();
    const b = await listening();
    matched = (a.address() as { port: number }).port;
    unmatched = (b.address() as { port: number }).port;
    // The [[listen]] entry names the first socket's address; its allow-list admits nobody from 127.0.0.1
    // except through the explicit entry, which proves the entry (not a default) was applied.
    const toml = relayConfig({ spool: `${dir.path}/spool`, allow: ['127.0.0.2/32'] }).replace('address = "127.0.0.1:0"', `address = "127.0.0.1:${matched}"`);
    config = writeConfig(dir.path, toml);
    daemon = await startDaemon(config, {}, { activationFds: [fdOf(a), fdOf(b)] });
    // The daemon holds its own copies of the sockets now.
    a.close();
    b.close();
  });

  after(async () => {
    assert.equal(await daemon.stop(), 0);
    dir.cleanup();
  });

  it('adopts passed sockets, maps them to [[listen]] entries by address, and binds nothing itself', async () => {
    const lines = daemon.logs.filter((l) => l.event === 'listening');
    assert.deepEqual(
      lines.map((l) => [l.port, l.activated, l.allow]),
      [
        [matched, true, ['127.0.0.2/32']],
        [unmatched, true, ['127.0.0.0/8', '::1/128']],
      ],
    );
    assert.ok(daemon.logs.some((l) => l.level === 40 && /matches no \[\[listen\]\] entry; allowing loopback clients only/.test(String(l.msg))));
    const status = JSON.parse((await runCli(['status', '--json', '--config', config])).stdout) as { listeners: Array<{ port: number; activated: boolean }> };
    assert.deepEqual(
      status.listeners.map((l) => [l.port, l.activated]),
      [
        [matched, true],
        [unmatched, true],
      ],
    );
  });

  it("serves SMTP on both sockets, each with its entry's allow-list", async () => {
    const refused = await RawSmtp.open(matched);
    assert.match(await refused.reply(), /^554 5\.7\.1 /, '127.0.0.1 is outside the matched entry allow-list');
    refused.close();
    const admitted = await RawSmtp.open(unmatched);
    assert.match(await admitted.reply(), /^220 relay\.test ESMTP/);
    admitted.close();
  });
});

describe('mailshim install --systemd', () => {
  let dir: ReturnType<typeof tempDir>;
  before(() => (dir = tempDir()));
  after(() => dir.cleanup());

  it('stages units, sysusers entry, credentials dir and a valid example config under --prefix', async () => {
    const result = await runCli(['install', '--systemd', '--prefix', dir.path]);
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /wrote an example config to .*\/etc\/mailshim\/mailshim\.toml/);
    assert.match(result.stdout, /create the user there with `systemd-sysusers --root=/);
    const unit = readFileSync(join(dir.path, 'etc/systemd/system/mailshim.service'), 'utf8');
    assert.match(unit, new RegExp(`^ExecStart=${process.execPath.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} ${REPO}/bin/mailshim serve --config /etc/mailshim/mailshim\\.toml$`, 'm'));
    assert.equal(readFileSync(join(dir.path, 'etc/systemd/system/mailshim.socket'), 'utf8'), readFileSync(SOCKET, 'utf8'));
    assert.match(readFileSync(join(dir.path, 'etc/sysusers.d/mailshim.conf'), 'utf8'), /^u mailshim - /m);
    assert.equal(statSync(join(dir.path, 'etc/mailshim/credentials')).mode & 0o777, 0o700);
    // Every local user's sendmail (PHP as www-data) reads the config: secrets live in *_file keys.
    assert.equal(statSync(join(dir.path, 'etc/mailshim/mailshim.toml')).mode & 0o777, 0o644);
    const check = await runCli(['check-config', '--config', join(dir.path, 'etc/mailshim/mailshim.toml')]);
    assert.equal(check.code, 0, check.stderr);

    const again = await runCli(['install', '--systemd', '--prefix', dir.path]);
    assert.equal(again.code, 0);
    assert.match(again.stdout, /kept the existing .*mailshim\.toml/);
  });

  it('the installed units pass systemd-analyze verify', async (t) => {
    const service = join(dir.path, 'etc/systemd/system/mailshim.service');
    const socket = join(dir.path, 'etc/systemd/system/mailshim.socket');
    assert.match(readFileSync(service, 'utf8'), /^ExecReload=\/bin\/kill -HUP \$MAINPID$/m);
    if (!has('systemd-analyze')) return t.skip('systemd-analyze not installed (Debian package "systemd"): checked the unit text only');
    const verify = spawnSync('systemd-analyze', ['verify', service, socket], { encoding: 'utf8' });
    assert.equal(verify.status, 0, verify.stderr);
    assert.equal(verify.stderr.trim(), '', 'no warnings');
  });
});

describe('mailshim.service hardening', () => {
  it('systemd-analyze security --offline rates it 2.0 or better', (t) => {
    const unit = readFileSync(SERVICE, 'utf8');
    for (const line of [
      'ProtectSystem=strict',
      'ProtectHome=yes',
      'PrivateTmp=yes',
      'PrivateDevices=yes',
      'NoNewPrivileges=yes',
      'RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX',
      'SystemCallFilter=@system-service',
      'Restart=on-failure',
      'CapabilityBoundingSet=',
    ]) {
      assert.ok(unit.split('\n').includes(line), `${line} in mailshim.service`);
    }
    if (!has('systemd-analyze')) return t.skip('systemd-analyze not installed (Debian package "systemd"): checked the directives only');
    const output = execFileSync('systemd-analyze', ['security', '--offline=true', SERVICE], { encoding: 'utf8' });
    const score = Number(/Overall exposure level for mailshim\.service: (\d+\.\d+)/.exec(output)?.[1]);
    t.diagnostic(`exposure ${score}`);
    assert.ok(score <= 2.0, `exposure ${score} > 2.0:\n${output}`);
  });

  it('restarts are bounded: a daemon that keeps failing at start ends in the failed state, not a loop', () => {
    const unit = readFileSync(SERVICE, 'utf8');
    const value = (key: string) => new RegExp(`^${key}=(.+)$`, 'm').exec(unit)?.[1]?.trim();
    const seconds = (span: string | undefined) => {
      const m = /^(\d+)(s|min)?$/.exec(span ?? '');
      assert.ok(m, `time span ${span}`);
      return Number(m[1]) * (m[2] === 'min' ? 60 : 1);
    };
    assert.equal(value('Restart'), 'on-failure');
    // systemd stops restarting once StartLimitBurst starts fall within StartLimitIntervalSec; with
    // starts RestartSec apart that happens only if the burst fits in the interval.
    const burst = Number(value('StartLimitBurst'));
    assert.ok(burst >= 2, 'StartLimitBurst set');
    assert.ok(seconds(value('RestartSec')) * burst < seconds(value('StartLimitIntervalSec')), 'StartLimitBurst × RestartSec < StartLimitIntervalSec');
    assert.match(value('RestartPreventExitStatus') ?? '', /\b75\b/, 'a damaged or locked spool (75) is never restarted');
  });

  it('MemoryDenyWriteExecute stays off because Node dies under it (and only --jitless survives)', (t) => {
    assert.match(readFileSync(SERVICE, 'utf8'), /^MemoryDenyWriteExecute=no$/m);
    // PR_SET_MDWE (Linux >= 6.3) is the kernel's version of the restriction systemd's seccomp filter applies.
    const underMdwe = (...nodeArgs: string[]) =>
      spawnSync(
        'python3',
        ['-c', 'import ctypes,os,sys\nif ctypes.CDLL(None).prctl(65, 1, 0, 0, 0) != 0: sys.exit(99)\nos.execv(sys.argv[1], sys.argv[1:])', process.execPath, ...nodeArgs, '-e', 'console.log(6*7)'],
        { encoding: 'utf8' },
      );
    if (!has('python3')) return t.skip('python3 not installed: checked the unit only');
    const probe = underMdwe('--jitless');
    if (probe.status === 99) return t.skip('PR_SET_MDWE unavailable (Linux < 6.3): checked the unit only');
    assert.equal(probe.stdout.trim(), '42', 'node --jitless runs under MDWE');
    const jit = underMdwe();
    assert.notEqual(jit.status, 0, 'node with its JIT must fail under MDWE');
    assert.notEqual(jit.stdout.trim(), '42');
  });
});
