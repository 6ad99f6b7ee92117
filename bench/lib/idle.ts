/**
 * Idle memory of the daemon on the embedded default (`npm start`: examples/local.toml, the capture
 * upstream, no account), for `npm run bench:memory -- --idle` (docs/performance.md, "Idle memory").
 *
 * Each start copies examples/local.toml into a fresh directory (its relative paths then point
 * inside it), changes only the listen port, starts `bin/mailshim serve --config` of the build under
 * test and reads /proc/PID/status and /proc/PID/smaps at three moments: 6 s after start (start-up
 * done), 1 s after three messages were relayed to the capture outbox, and "settled", 30 s after
 * those (V8's memory reducer shrinks the heap of a process that stopped allocating, some seconds
 * later; a long-running daemon spends its idle time in that state). The environment is the caller's, with or without
 * NODE_EXTRA_CA_CERTS (which Node parses at start: a systemd service does not have it).
 */
import { spawn } from 'node:child_process';
import { closeSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runLoad } from './loadgen.js';
import { freePort, memoryOf, REPO, rssSplitOf, sleep, waitForPort } from './procs.js';

/** kB resident, as the kernel counts it for one process. */
export interface IdleSample {
  rss: number;
  anon: number;
  file: number;
  /** Resident pages of the node executable's own mapping (shared with every node process). */
  nodeBinary: number;
  /** Resident pages of the other shared libraries and native addons (libc, libstdc++, lmdb's .node). */
  libraries: number;
  /** Resident pages of the spool's LMDB map (data.mdb). */
  lmdbMap: number;
}

export interface IdleRun {
  started: IdleSample;
  afterMessages: IdleSample;
  settled: IdleSample;
}

/** One /proc/PID/smaps pass: Rss summed per mapping kind. */
function sampleOf(pid: number): IdleSample {
  const { anonKb, fileKb } = rssSplitOf(pid);
  const sample: IdleSample = { rss: memoryOf(pid).rssKb, anon: anonKb, file: fileKb, nodeBinary: 0, libraries: 0, lmdbMap: 0 };
  let mapping = '';
  for (const line of readFileSync(`/proc/${pid}/smaps`, 'utf8').split('\n')) {
    const header = /^[0-9a-f]+-[0-9a-f]+ \S+ \S+ \S+ \S+\s*(.*)$/.exec(line);
    if (header) {
      mapping = header[1]!;
      continue;
    }
    const rss = /^Rss:\s+(\d+)/.exec(line);
    if (!rss || !mapping.startsWith('/')) continue;
    if (mapping === process.execPath) sample.nodeBinary += Number(rss[1]);
    else if (mapping.endsWith('/data.mdb')) sample.lmdbMap += Number(rss[1]);
    else if (/\.so(\.[\d.]+)?$|\.node$/.test(mapping)) sample.libraries += Number(rss[1]);
  }
  return sample;
}

/** Starts `bin` (a checkout's bin/mailshim) on the embedded default and samples it; stops it. */
export async function idleRun(bin: string, repo: string, env: NodeJS.ProcessEnv, tag: string): Promise<IdleRun> {
  const dir = mkdtempSync(join(tmpdir(), 'bench-idle-'));
  const port = await freePort();
  mkdirSync(join(dir, 'examples'));
  const config = join(dir, 'examples/local.toml');
  const embedded = readFileSync(join(repo, 'examples/local.toml'), 'utf8');
  if (!embedded.includes('"127.0.0.1:2525"')) throw new Error(`${repo}/examples/local.toml no longer listens on 127.0.0.1:2525; update bench/lib/idle.ts`);
  writeFileSync(config, embedded.replace('"127.0.0.1:2525"', `"127.0.0.1:${port}"`));
  const log = openSync(join(dir, 'mailshim.log'), 'a');
  const child = spawn(process.execPath, [bin, 'serve', '--config', config], { stdio: ['ignore', log, log], env });
  closeSync(log);
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  const t0 = performance.now();
  try {
    await waitForPort(port, 30_000);
    await sleep(Math.max(0, 6_000 - (performance.now() - t0)));
    const started = sampleOf(child.pid!);
    const sent = await runLoad({ port, sessions: 1, messages: 3, size: 2048, tag, timeoutMs: 20_000 });
    if (sent.accepted !== 3) throw new Error(`only ${sent.accepted}/3 messages accepted; see ${dir}/mailshim.log`);
    await sleep(1_000);
    const afterMessages = sampleOf(child.pid!);
    await sleep(29_000);
    const settled = sampleOf(child.pid!);
    return { started, afterMessages, settled };
  } finally {
    child.kill('SIGTERM');
    await exited;
    rmSync(dir, { recursive: true, force: true });
  }
}

/** A bare `node` with a timer and nothing loaded, sampled at the same moments (no messages): the floor. */
export async function bareNodeRun(env: NodeJS.ProcessEnv): Promise<IdleRun> {
  const child = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore', env });
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  try {
    await sleep(6_000);
    const started = sampleOf(child.pid!);
    await sleep(1_000);
    const afterMessages = sampleOf(child.pid!);
    await sleep(29_000);
    return { started, afterMessages, settled: sampleOf(child.pid!) };
  } finally {
    child.kill('SIGTERM');
    await exited;
  }
}

/** The REPO of this build, for the default `bin`. */
export const THIS_BUILD = { bin: join(REPO, 'bin/mailshim'), repo: REPO };
