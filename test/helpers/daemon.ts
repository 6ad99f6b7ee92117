/** Runs the real daemon (bin/mailshim serve) as a child process and reads its JSON log lines. */
import { spawn, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO = resolve(fileURLToPath(import.meta.url), '../../../..');
export const MAILSHIM = join(REPO, 'bin/mailshim');

export type LogLine = Record<string, unknown> & { msg?: string; event?: string; level?: number };

export interface RunningDaemon {
  child: ChildProcess;
  port: number;
  logs: LogLine[];
  /** Everything written to stdout/stderr, raw. */
  output(): string;
  waitForLog(predicate: (line: LogLine) => boolean, timeoutMs?: number): Promise<LogLine>;
  /** SIGTERM and wait for exit; returns the exit code. */
  stop(): Promise<number | null>;
  kill9(): Promise<void>;
  exited: Promise<number | null>;
}

export function writeConfig(dir: string, toml: string, name = 'mailshim.toml'): string {
  const file = join(dir, name);
  writeFileSync(file, toml, { mode: 0o600 });
  return file;
}

export interface StartOptions {
  /** Listening socket fds handed over as systemd socket activation does (fds 3.., LISTEN_FDS, LISTEN_PID). */
  activationFds?: number[];
}

export async function startDaemon(configFile: string, env: NodeJS.ProcessEnv = {}, options: StartOptions = {}): Promise<RunningDaemon> {
  const args = [MAILSHIM, 'serve', '--config', configFile];
  const fds = options.activationFds ?? [];
  // LISTEN_PID must be the daemon's own pid: a shell sets it to $$ and then execs node in its place.
  const child =
    fds.length > 0
      ? spawn('/bin/sh', ['-c', `LISTEN_PID=$$ LISTEN_FDS=${fds.length} exec "$0" "$@"`, process.execPath, ...args], {
          env: { ...process.env, ...env },
          stdio: ['ignore', 'pipe', 'pipe', ...fds],
        })
      : spawn(process.execPath, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  const logs: LogLine[] = [];
  let raw = '';
  let pending = '';
  const watchers: Array<() => void> = [];
  const onData = (chunk: Buffer) => {
    raw += chunk.toString();
    pending += chunk.toString();
    const lines = pending.split('\n');
    pending = lines.pop() ?? '';
    for (const line of lines) {
      try {
        logs.push(JSON.parse(line) as LogLine);
      } catch {
        /* not JSON (stderr text) */
      }
    }
    for (const w of watchers.splice(0)) w();
  };
  child.stdout!.on('data', onData);
  child.stderr!.on('data', onData);
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  let done = false;
  void exited.then(() => {
    done = true;
    for (const w of watchers.splice(0)) w();
  });

  async function waitForLog(predicate: (line: LogLine) => boolean, timeoutMs = 15_000): Promise<LogLine> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = logs.find(predicate);
      if (found) return found;
      if (done) throw new Error(`daemon exited before the expected log line; output:\n${raw}`);
      if (Date.now() > deadline) throw new Error(`timed out waiting for log line; output:\n${raw}`);
      await new Promise<void>((resolve) => {
        watchers.push(resolve);
        setTimeout(resolve, 200);
      });
    }
  }

  const listening = await waitForLog((l) => l.event === 'listening');
  await waitForLog((l) => l.event === 'started');
  return {
    child,
    port: Number(listening.port),
    logs,
    output: () => raw,
    waitForLog,
    exited,
    async stop() {
      if (!done) child.kill('SIGTERM');
      return exited;
    },
    async kill9() {
      if (!done) child.kill('SIGKILL');
      await exited;
    },
  };
}
