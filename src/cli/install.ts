/**
 * `mailshim install --systemd [--prefix DIR]`: copies the units (ExecStart pointing at this node
 * and this installation), the sysusers.d entry and an example config, creates /etc/mailshim and its
 * credentials directory, and on the real system (no --prefix) creates the mailshim user. It never
 * overwrites an existing config and never starts anything: it prints the systemctl commands.
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CommandError, EXIT } from './exit.js';

/** The package root (dist/src/cli → ../../..). */
const PACKAGE = resolve(fileURLToPath(import.meta.url), '../../../..');
const UNITS = join(PACKAGE, 'systemd');

export interface InstallOptions {
  prefix: string;
  out: NodeJS.WritableStream;
  /** false: never create the user, even when installing into / */
  createUser?: boolean;
}

export function serviceUnit(template: string, execStart: string): string {
  return template.replace(/^ExecStart=.*$/m, `ExecStart=${execStart}`);
}

function userExists(name: string): boolean {
  return readFileSync('/etc/passwd', 'utf8')
    .split('\n')
    .some((line) => line.startsWith(`${name}:`));
}

function createUser(sysusersFile: string, out: NodeJS.WritableStream): void {
  if (userExists('mailshim')) return void out.write('user mailshim exists\n');
  try {
    execFileSync('systemd-sysusers', [sysusersFile], { stdio: 'inherit' });
  } catch {
    execFileSync('useradd', ['--system', '--user-group', '--home-dir', '/var/lib/mailshim', '--no-create-home', '--shell', '/usr/sbin/nologin', 'mailshim'], { stdio: 'inherit' });
  }
  out.write('created system user and group mailshim\n');
}

export function install(options: InstallOptions): number {
  const real = resolve(options.prefix) === '/';
  if (real && process.getuid?.() !== 0) throw new CommandError(EXIT.NO_PERMISSION, 'installing into / needs root (or use --prefix DIR to stage the files)');
  const root = resolve(options.prefix);
  const at = (path: string) => join(root, path);
  const unitDir = at('/etc/systemd/system');
  const configDir = at('/etc/mailshim');
  for (const dir of [unitDir, at('/etc/sysusers.d'), configDir]) mkdirSync(dir, { recursive: true, mode: 0o755 });
  mkdirSync(join(configDir, 'credentials'), { recursive: true, mode: 0o700 });
  chmodSync(join(configDir, 'credentials'), 0o700);

  const execStart = `${process.execPath} ${join(PACKAGE, 'bin/mailshim')} serve --config /etc/mailshim/mailshim.toml`;
  if (/^\/(home|root|run\/user)\//.test(process.execPath) || /^\/(home|root|run\/user)\//.test(PACKAGE)) {
    out(options, `warning: ${execStart.split(' serve')[0]} is under a home directory, which ProtectHome=yes hides from the service; install node and mailshim system-wide`);
  }
  writeFileSync(join(unitDir, 'mailshim.service'), serviceUnit(readFileSync(join(UNITS, 'mailshim.service'), 'utf8'), execStart), { mode: 0o644 });
  copyFileSync(join(UNITS, 'mailshim.socket'), join(unitDir, 'mailshim.socket'));
  const sysusers = at('/etc/sysusers.d/mailshim.conf');
  copyFileSync(join(UNITS, 'mailshim.sysusers.conf'), sysusers);
  out(options, `installed ${join(unitDir, 'mailshim.service')}, ${join(unitDir, 'mailshim.socket')}, ${sysusers}`);

  const config = join(configDir, 'mailshim.toml');
  if (existsSync(config)) {
    out(options, `kept the existing ${config}`);
  } else {
    copyFileSync(join(UNITS, 'mailshim.toml.example'), config);
    // Readable by everyone: every local user's sendmail reads it (secrets belong in *_file keys).
    chmodSync(config, 0o644);
    out(options, `wrote an example config to ${config}`);
  }
  if (real && options.createUser !== false) {
    createUser(sysusers, options.out);
  } else {
    out(options, `staged under ${root}: create the user there with \`systemd-sysusers --root=${root}\``);
  }
  out(options, 'next: edit the config, `mailshim check-config`, then `systemctl daemon-reload && systemctl enable --now mailshim.socket mailshim.service`');
  return EXIT.OK;
}

function out(options: InstallOptions, line: string): void {
  options.out.write(line + '\n');
}
