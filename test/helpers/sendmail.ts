/** Runs bin/sendmail (or mailq, newaliases, mailshim) as a subprocess, the way callers do. */
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { REPO } from './daemon.js';

export interface BinResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

export function binPath(name: 'sendmail' | 'mailq' | 'newaliases' | 'mailshim'): string {
  return join(REPO, 'bin', name);
}

/** An interactive `sendmail -bs` session: write lines, wait for what it has answered so far to match. */
export function bsSession(config: string): { child: ChildProcess; write: (line: string) => void; waitFor: (pattern: RegExp) => Promise<void>; output: () => string } {
  const child = spawn(process.execPath, [binPath('sendmail'), '-bs'], { env: { ...process.env, MAILSHIM_CONFIG: config }, stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  return {
    child,
    write: (line) => child.stdin.write(line),
    output: () => out,
    async waitFor(pattern) {
      const deadline = Date.now() + 10_000;
      while (!pattern.test(out)) {
        if (Date.now() > deadline) throw new Error(`no ${pattern} in ${JSON.stringify(out)}`);
        await new Promise((r) => setTimeout(r, 20));
      }
    },
  };
}

export async function runBin(
  name: 'sendmail' | 'mailq' | 'newaliases' | 'mailshim',
  args: string[],
  options: { input?: string | Buffer; config?: string; env?: NodeJS.ProcessEnv; uid?: number; gid?: number } = {},
): Promise<BinResult> {
  const env = { ...process.env, ...options.env };
  if (options.config) env.MAILSHIM_CONFIG = options.config;
  const child = spawn(process.execPath, [binPath(name), ...args], { env, stdio: ['pipe', 'pipe', 'pipe'], uid: options.uid, gid: options.gid });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  child.stdin.on('error', () => undefined);
  child.stdin.end(options.input ?? '');
  const code = await new Promise<number | null>((resolve) => child.once('close', (c) => resolve(c)));
  return { code, stdout, stderr };
}

/**
 * Polls mailq (through the daemon) until the queue is empty: every message, bounces included,
 * delivered or bounced, so nothing more can go out. What a test that counts deliveries waits for,
 * instead of a fixed sleep.
 */
export async function waitForEmptyQueue(config: string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const { stdout } = await runBin('mailq', [], { config });
    if (stdout === 'Mail queue is empty\n') return;
    if (Date.now() > deadline) throw new Error(`queue not empty after ${timeoutMs} ms:\n${stdout}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
