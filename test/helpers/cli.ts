/** Runs the real `mailshim` CLI as a child process and collects its output and exit code. */
import { execFile } from 'node:child_process';
import { MAILSHIM } from './daemon.js';

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
  /** stdout as raw bytes (for `queue show --raw`). */
  bytes: Buffer;
}

export function runCli(args: string[], env: NodeJS.ProcessEnv = {}): Promise<CliResult> {
  return new Promise((resolve) => {
    // stdin is /dev/null (never a terminal), as under cron or a config-management run.
    execFile(process.execPath, [MAILSHIM, ...args], { env: { ...process.env, ...env }, encoding: 'buffer', timeout: 60_000 }, (error, stdout, stderr) => {
      const code = error ? (typeof error.code === 'number' ? error.code : -1) : 0;
      resolve({ code, stdout: stdout.toString('utf8'), stderr: stderr.toString('utf8'), bytes: stdout });
    });
  });
}

/** The JSON log lines an operator command wrote to stderr (its audit trail). */
export function auditLines(stderr: string): Array<Record<string, unknown>> {
  return stderr
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}
