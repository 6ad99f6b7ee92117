/**
 * Postfix's own load generator and sink, smtp-source(1) and smtp-sink(1) (Debian package postfix),
 * so that the comparison does not rest on a client or server we wrote.
 *
 * - smtp-source disconnects after every message unless given -d ("Don't disconnect after sending
 *   a message; send the next message over the same connection"), so without -d it is the
 *   one-connection-per-message workload of cron jobs and PHP mail().
 * - smtp-sink -c prints `sess=N quit=N mesg=N` counters, ending each update with a carriage
 *   return, whenever "." is received or a session ends; the mesg counter tells when a relay run
 *   has fully arrived. It refuses to run as root without -u.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { freePort, waitForPort } from './procs.js';

/** Where smtp-source and smtp-sink are: the postfix package's /usr/sbin, or MAILSHIM_POSTFIX_TOOLS (e.g. unpacked tools without Postfix installed). */
const TOOLS = process.env.MAILSHIM_POSTFIX_TOOLS || '/usr/sbin';
export const SMTP_SOURCE = join(TOOLS, 'smtp-source');
export const SMTP_SINK = join(TOOLS, 'smtp-sink');

/** The benches' two message sizes (bench, compare, floor): a typical notification and a message with an attachment. */
export const SMALL = 2 * 1024;
export const LARGE = 1024 * 1024;

export const postfixToolsAvailable = () => existsSync(SMTP_SOURCE) && existsSync(SMTP_SINK);

export interface Sink {
  port: number;
  pid: number;
  /** Messages received so far (smtp-sink's mesg counter). */
  messages(): number;
  waitFor(count: number, timeoutMs: number): Promise<boolean>;
  close(): Promise<void>;
}

export async function startSink(): Promise<Sink> {
  const port = await freePort();
  const asRoot = process.getuid?.() === 0 ? ['-u', 'nobody'] : [];
  const child = spawn(SMTP_SINK, [...asRoot, '-c', `127.0.0.1:${port}`, '256'], { stdio: ['ignore', 'pipe', 'inherit'] });
  let mesg = 0;
  let tail = '';
  let wake: (() => void) | undefined;
  child.stdout.setEncoding('latin1');
  child.stdout.on('data', (text: string) => {
    tail = (tail + text).slice(-200);
    const all = [...tail.matchAll(/mesg=(\d+)/g)];
    if (all.length > 0) mesg = Number(all[all.length - 1]![1]);
    wake?.();
  });
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  await waitForPort(port);
  return {
    port,
    pid: child.pid!,
    messages: () => mesg,
    async waitFor(count, timeoutMs) {
      const deadline = Date.now() + timeoutMs;
      while (mesg < count && Date.now() < deadline) {
        await new Promise<void>((r) => {
          wake = r;
          setTimeout(r, 250).unref();
        });
      }
      return mesg >= count;
    },
    async close() {
      child.kill('SIGTERM');
      await exited;
    },
  };
}

export interface SourceOptions {
  port: number;
  sessions: number;
  messages: number;
  /** Payload bytes (smtp-source -l; headers come on top). */
  size: number;
  /** Keep connections open (-d); default one connection per message. */
  keepConnections: boolean;
  timeoutMs: number;
}

export interface SourceResult {
  /** Wall time of the smtp-source run (ms). */
  elapsedMs: number;
  ok: boolean;
  stderr: string;
}

/** Runs smtp-source to completion; it aborts on the first unexpected reply, so ok = every message was accepted. */
export function runSource(o: SourceOptions): Promise<SourceResult> {
  const args = ['-s', String(o.sessions), '-m', String(o.messages), '-l', String(o.size), '-f', 'bench@client.test', '-t', 'sink@upstream.test', '-M', 'client.test'];
  if (o.keepConnections) args.push('-d');
  args.push(`127.0.0.1:${o.port}`);
  const started = performance.now();
  const child: ChildProcess = spawn(SMTP_SOURCE, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const timer = setTimeout(() => child.kill('SIGKILL'), o.timeoutMs);
  return new Promise((resolve) => {
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve({ elapsedMs: performance.now() - started, ok: code === 0, stderr: stderr.trim() });
    });
  });
}
