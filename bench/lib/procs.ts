/** Starting and measuring the systems under test: the mailshim daemon and a private Postfix instance. */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, openSync, readFileSync, readdirSync, writeFileSync, closeSync } from 'node:fs';
import { createServer } from 'node:net';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO = resolve(fileURLToPath(import.meta.url), '../../../..');
export const MAILSHIM = join(REPO, 'bin/mailshim');

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** A free loopback port (bound then released). */
export function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const port = (server.address() as { port: number }).port;
      server.close(() => resolvePort(port));
    });
  });
}

/** Resolves once something accepts TCP connections on the port. */
export async function waitForPort(port: number, timeoutMs = 20_000): Promise<void> {
  const { connect } = await import('node:net');
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const ok = await new Promise<boolean>((r) => {
      const s = connect({ port, host: '127.0.0.1' });
      s.once('connect', () => (s.destroy(), r(true)));
      s.once('error', () => r(false));
    });
    if (ok) return;
    await sleep(50);
  }
  throw new Error(`nothing listening on 127.0.0.1:${port} after ${timeoutMs} ms`);
}

/** The kB fields `names` of /proc/PID/status; all 0 for a process that is gone. */
function statusKb(pid: number, names: string[]): number[] {
  let status = '';
  try {
    status = readFileSync(`/proc/${pid}/status`, 'utf8');
  } catch {
    /* exited */
  }
  return names.map((name) => Number(new RegExp(`^${name}:\\s+(\\d+)`, 'm').exec(status)?.[1] ?? 0));
}

/** kB values of VmRSS and VmHWM from /proc/PID/status. */
export function memoryOf(pid: number): { rssKb: number; hwmKb: number } {
  const [rssKb = 0, hwmKb = 0] = statusKb(pid, ['VmRSS', 'VmHWM']);
  return { rssKb, hwmKb };
}

/** Resident memory split as the kernel reports it: anonymous (heap, stacks) vs file-backed (mapped LMDB pages, code), in kB. */
export function rssSplitOf(pid: number): { anonKb: number; fileKb: number } {
  const [anonKb = 0, file = 0, shmem = 0] = statusKb(pid, ['RssAnon', 'RssFile', 'RssShmem']);
  return { anonKb, fileKb: file + shmem };
}

/**
 * The fields of a /proc stat file (proc(5)) after the command name, which may itself hold ") ":
 * index 0 is field 3 (state), so field N is index N - 3.
 */
export function statFields(path: string): string[] {
  const stat = readFileSync(path, 'utf8');
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
}

/** CPU time (utime + stime, ms) a process has used, from /proc/PID/stat (USER_HZ is 100 on Linux). */
export function cpuMsOf(pid: number, thread?: number): number {
  // utime is field 14, stime 15. A thread's own (the main thread's id is the pid: the event loop
  // without libuv's pool) from /proc/pid/task.
  const fields = statFields(thread === undefined ? `/proc/${pid}/stat` : `/proc/${pid}/task/${thread}/stat`);
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

/** A process and all its descendants (for Postfix's master and its children). */
export function processTree(root: number): number[] {
  const children = new Map<number, number[]>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const ppid = Number(statFields(`/proc/${entry}/stat`)[1]);
      const list = children.get(ppid) ?? [];
      list.push(Number(entry));
      children.set(ppid, list);
    } catch {
      /* exited meanwhile */
    }
  }
  const out = [root];
  for (let i = 0; i < out.length; i++) out.push(...(children.get(out[i]!) ?? []));
  return out;
}

/** Samples the summed RSS of a process tree every 100 ms; stop() returns the peak in kB. */
export function sampleTreeRss(root: () => number | undefined): { stop(): number } {
  let peak = 0;
  const timer = setInterval(() => {
    const pid = root();
    if (pid === undefined) return;
    const total = processTree(pid).reduce((sum, p) => sum + memoryOf(p).rssKb, 0);
    peak = Math.max(peak, total);
  }, 100);
  return {
    stop() {
      clearInterval(timer);
      return peak;
    },
  };
}

export interface MailshimOptions {
  dir: string;
  port: number;
  upstreamPort: number;
  concurrency: number;
  maxSize?: string;
  maxMessageSize?: string;
  retry?: { initial: string; max: string; age: string };
  spoolPath?: string;
  /** Replaces the [[upstream]] table (the REST workload); default: the SMTP capture on upstreamPort. */
  upstreamToml?: string;
  /** Appended verbatim (e.g. a [metrics] table). */
  extraToml?: string;
  /** Another build's bin/mailshim (a before/after comparison); default this checkout's. */
  bin?: string;
  /** Node options placed before the script (e.g. --cpu-prof). */
  nodeArgs?: string[];
}

export function mailshimConfig(o: MailshimOptions): string {
  return `hostname = "bench-mailshim.test"
bounce_from = "postmaster@bench-mailshim.test"

[spool]
path = ${JSON.stringify(o.spoolPath ?? join(o.dir, 'spool'))}
max_message_size = "${o.maxMessageSize ?? '25MB'}"
max_recipients = 100
${o.maxSize ? `max_size = "${o.maxSize}"` : ''}

[retry]
initial_delay = "${o.retry?.initial ?? '30s'}"
max_delay = "${o.retry?.max ?? '10m'}"
max_age = "${o.retry?.age ?? '1d'}"

[control]
socket = ${JSON.stringify(join(o.dir, 'control.sock'))}

[[listen]]
address = "127.0.0.1:${o.port}"
allow = ["127.0.0.0/8"]
max_connections = 200
max_connections_per_ip = 200

${
  o.upstreamToml ??
  `[[upstream]]
name = "capture"
type = "smtp"
host = "127.0.0.1"
port = ${o.upstreamPort}
tls = "none"
max_concurrency = ${o.concurrency}
timeout = "30s"`
}
${o.extraToml ?? ''}
`;
}

export interface RunningMailshim {
  child: ChildProcess;
  pid: number;
  port: number;
  logFile: string;
  exited: Promise<number | null>;
  kill9(): Promise<void>;
  stop(): Promise<void>;
}

/** Starts bin/mailshim serve with its JSON log going to a file (not parsed during the run). */
export async function startMailshim(o: MailshimOptions, logName = 'mailshim.log'): Promise<RunningMailshim> {
  mkdirSync(o.dir, { recursive: true });
  const configFile = join(o.dir, 'mailshim.toml');
  writeFileSync(configFile, mailshimConfig(o), { mode: 0o600 });
  const logFile = join(o.dir, logName);
  const fd = openSync(logFile, 'a');
  const child = spawn(process.execPath, [...(o.nodeArgs ?? []), o.bin ?? MAILSHIM, 'serve', '--config', configFile], { stdio: ['ignore', fd, fd] });
  closeSync(fd);
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  let done = false;
  void exited.then(() => (done = true));
  const started = Promise.race([waitForPort(o.port, 30_000), exited.then((code) => Promise.reject(new Error(`mailshim exited (${code}); see ${logFile}`)))]);
  await started;
  return {
    child,
    pid: child.pid!,
    port: o.port,
    logFile,
    exited,
    async kill9() {
      if (!done) child.kill('SIGKILL');
      await exited;
    },
    async stop() {
      if (!done) child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), 30_000);
      await exited;
      clearTimeout(t);
    },
  };
}

/**
 * A private Postfix instance: its own config, queue and data directories under `dir`, listening on
 * 127.0.0.1:`port`, relaying everything to [127.0.0.1]:`relayPort`; no local delivery, no DNS.
 * The system's /etc/postfix and port 25 are not touched.
 */
export class PostfixInstance {
  readonly configDir: string;
  readonly queueDir: string;

  constructor(
    readonly dir: string,
    readonly port: number,
    readonly relayPort: number,
  ) {
    this.configDir = join(dir, 'etc');
    this.queueDir = join(dir, 'queue');
  }

  static available(): boolean {
    return existsSync('/usr/sbin/postfix') && existsSync('/usr/sbin/postconf');
  }

  /** Installs Debian's postfix package without configuring or starting the system instance. */
  static ensureInstalled(log: (line: string) => void): boolean {
    if (PostfixInstance.available()) return true;
    if (process.getuid?.() !== 0) {
      log('postfix is not installed and we are not root: skipping the Postfix side');
      return false;
    }
    log('installing postfix (apt-get, "No configuration": the system instance is not set up or started)...');
    try {
      execFileSync('sh', ['-c', 'echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections'], { stdio: 'ignore' });
      execFileSync('apt-get', ['update', '-qq'], { stdio: 'ignore' });
      execFileSync('apt-get', ['install', '-y', '-q', 'postfix'], { stdio: 'ignore', env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
    } catch (error) {
      log(`apt-get install postfix failed: ${(error as Error).message}`);
      return false;
    }
    // The package enables the system service; the bench only ever runs private instances, so
    // make sure nothing of Postfix's holds port 25 now or after a reboot.
    for (const [command, ...args] of [
      ['/usr/sbin/postfix', 'stop'],
      ['systemctl', 'disable', '--now', 'postfix'],
      ['update-rc.d', 'postfix', 'disable'],
    ] as const) {
      try {
        execFileSync(command, args, { stdio: 'ignore' });
      } catch {
        /* not running, or no such init system */
      }
    }
    return PostfixInstance.available();
  }

  private postconf(...args: string[]): void {
    execFileSync('/usr/sbin/postconf', ['-c', this.configDir, ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
  }

  setup(): void {
    mkdirSync(this.configDir, { recursive: true });
    mkdirSync(join(this.dir, 'data'), { recursive: true });
    mkdirSync(this.queueDir, { recursive: true });
    // Postfix's daemons run as the postfix user: they must reach and own their data directory.
    chmodSync(this.dir, 0o755);
    execFileSync('chown', ['postfix:postfix', join(this.dir, 'data')]);
    writeFileSync(join(this.configDir, 'master.cf'), readFileSync('/etc/postfix/master.cf', 'utf8'));
    writeFileSync(
      join(this.configDir, 'main.cf'),
      `compatibility_level = 3.6
queue_directory = ${this.queueDir}
data_directory = ${join(this.dir, 'data')}
mail_owner = postfix
setgid_group = postdrop
myhostname = bench-postfix.test
mydomain = test
myorigin = $myhostname
mydestination =
local_recipient_maps =
local_transport = error:5.1.1 local delivery is disabled
relay_domains =
relayhost = [127.0.0.1]:${this.relayPort}
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
smtpd_relay_restrictions = permit_mynetworks, reject
smtpd_recipient_restrictions = permit_mynetworks, reject
disable_dns_lookups = yes
smtp_dns_support_level = disabled
smtpd_peername_lookup = no
message_size_limit = 30000000
smtp_tls_security_level = none
smtpd_tls_security_level = none
alias_maps =
alias_database =
biff = no
append_dot_mydomain = no
maillog_file_prefixes = ${this.dir}
maillog_file = ${join(this.dir, 'maillog')}
default_destination_concurrency_limit = 20
smtp_destination_concurrency_limit = 20
`,
    );
    // Listen on our port instead of 25, and run nothing chrooted (no copies of /etc files needed).
    this.postconf('-MX', 'smtp/inet');
    this.postconf('-M', `127.0.0.1:${this.port}/inet=127.0.0.1:${this.port} inet n - n - - smtpd`);
    this.postconf('-F', '*/*/chroot=n');
  }

  start(): void {
    execFileSync('/usr/sbin/postfix', ['-c', this.configDir, 'start'], { stdio: ['ignore', 'ignore', 'pipe'] });
  }

  stop(): void {
    try {
      execFileSync('/usr/sbin/postfix', ['-c', this.configDir, 'stop'], { stdio: ['ignore', 'ignore', 'pipe'] });
    } catch {
      /* not running */
    }
  }

  /** The master process id, from its pid file. */
  masterPid(): number | undefined {
    try {
      return Number(readFileSync(join(this.queueDir, 'pid/master.pid'), 'utf8').trim()) || undefined;
    } catch {
      return undefined;
    }
  }
}
