/**
 * Tools for the fault suite (`npm run faults`): syscall fault injection with strace, a small
 * tmpfs that really fills up, and an SMTP send that reports the final reply.
 *
 * Every test/faults/*.test.ts is part of the suite (and of `npm test`). Scenarios that belong
 * here as they land from other work on issue 10: the same-id race on the submission socket, two
 * daemons on one spool, a throwing DSN builder (all-or-nothing mutations), and the submission
 * socket memory attack — each as its own file, printing what it checked with `checked()`.
 */
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { closeSync, mkdirSync, openSync, writeSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { RawSmtp } from '../helpers/smtp-client.js';

/** Why strace fault injection cannot run here, or undefined when it can. */
export function straceMissing(): string | undefined {
  const version = spawnSync('strace', ['-V'], { encoding: 'utf8' });
  if (version.error || version.status !== 0) return 'strace not installed (apt-get install strace)';
  const probe = spawnSync('strace', ['-f', '-o', '/dev/null', '-e', 'inject=getpid:retval=42', 'true'], { encoding: 'utf8' });
  if (probe.status !== 0) return `strace cannot trace here (ptrace not permitted?): ${probe.stderr.trim()}`;
  return undefined;
}

/** Why a tmpfs cannot be mounted here (not root, no CAP_SYS_ADMIN), or undefined when it can. */
export function mountMissing(dir: string): string | undefined {
  if (process.getuid?.() !== 0) return 'mounting a small tmpfs needs root';
  mkdirSync(dir, { recursive: true });
  const r = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', dir], { encoding: 'utf8' });
  if (r.status !== 0) return `cannot mount a tmpfs here: ${r.stderr.trim()}`;
  spawnSync('umount', [dir]);
  return undefined;
}

export function mountTmpfs(dir: string, size: string): () => void {
  mkdirSync(dir, { recursive: true });
  execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${size},mode=0700`, 'tmpfs', dir]);
  return () => {
    spawnSync('umount', ['-l', dir]);
  };
}

/** Writes until the file system says ENOSPC (the tmpfs is full); returns the bytes written. */
export function fill(file: string): number {
  const fd = openSync(file, 'w');
  let total = 0;
  try {
    for (const size of [1 << 20, 1 << 16, 4096, 512, 1]) {
      const chunk = Buffer.alloc(size, 0x55);
      for (;;) {
        try {
          total += writeSync(fd, chunk);
        } catch (error) {
          if ((error as NodeJS.ErrnoException).code !== 'ENOSPC') throw error;
          break;
        }
      }
    }
  } finally {
    closeSync(fd);
  }
  return total;
}

export interface Injector {
  child: ChildProcess;
  /** Detaches strace (the traced process carries on, no longer faulted). */
  detach(): Promise<void>;
}

/**
 * Attaches strace to every thread of `pid` (and threads it starts later) and makes the named
 * syscalls fail, e.g. ['writev:error=ENOSPC']. Resolves once strace reports it is attached.
 * With `record`, the named syscalls (plus `also`) are logged to `record.file` with timestamps.
 */
export async function inject(pid: number, faults: string[], record?: { file: string; also: string[] }): Promise<Injector> {
  const syscalls = [...new Set([...faults.map((f) => f.split(':')[0]!), ...(record?.also ?? [])])].join(',');
  const output = record ? ['-tt', '-s', '8192', '-o', record.file] : ['-o', '/dev/null'];
  const args = ['-f', '-p', String(pid), ...output, '-e', `trace=${syscalls}`, ...faults.flatMap((f) => ['-e', `inject=${f}`])];
  const child = spawn('strace', args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  await new Promise<void>((resolve, reject) => {
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
      if (/attached/.test(stderr)) resolve();
    });
    child.once('exit', () => reject(new Error(`strace exited: ${stderr}`)));
  });
  return {
    child,
    async detach() {
      if (child.exitCode === null) child.kill('SIGINT');
      await exited;
    },
  };
}

/** One message with `Subject: <subject>` and about `bodyBytes` of body over SMTP; returns the reply to the end of DATA ('' when the connection dropped). */
export async function sendMessage(port: number, subject: string, bodyBytes = 2000): Promise<string> {
  const line = 'x'.repeat(76) + '\r\n';
  return sendData(port, `Subject: ${subject}\r\n\r\n${line.repeat(Math.ceil(bodyBytes / line.length))}`);
}

/** `message` (CRLF lines, none starting with a dot) as one SMTP transaction; returns the reply to the end of DATA. */
export async function sendData(port: number, message: string): Promise<string> {
  const c = await RawSmtp.open(port);
  try {
    await c.reply();
    await c.command('EHLO faults.test');
    await c.command('MAIL FROM:<sender@example.org>');
    await c.command('RCPT TO:<rcpt@example.net>');
    await c.command('DATA');
    return await c.command(`${message}.`);
  } finally {
    c.close();
  }
}

/** Polls `check` every 20 ms until it returns something truthy (returned), or fails after `timeoutMs`. */
export async function until<T>(what: string, check: () => T | undefined | false, timeoutMs = 15_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const value = check();
    if (value) return value;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

/** Reports what a scenario checked (the suite's output is its report). */
export function checked(t: { diagnostic(message: string): void }, what: string): void {
  t.diagnostic(`checked: ${what}`);
}
