/**
 * `npm run bench:memory`: the daemon's memory with 20 concurrent 1 MB sessions (issue 14: peak
 * RSS ≤ 150 MB), for intake alone (upstream down) and for relay (to the capture sink). Samples
 * /proc/PID/status every 50 ms and reports the peak of VmRSS with its split at that moment:
 * anonymous (heap, Buffers: what the daemon holds) and file-backed (the node binary and LMDB's
 * memory-mapped pages, which the kernel may drop under pressure), plus VmHWM.
 *
 *   npm run bench:memory [-- --messages 100 --sessions 20 --size 1048576]
 *
 * With --idle: the idle daemon on the embedded default instead (issue 14: idle RSS ≤ 50 MB),
 * bench/lib/idle.ts; --starts N (default 5) starts per build and environment, --baseline DIR
 * another built checkout (e.g. ../mailshim-main) measured in the same rounds, all at once per round,
 * beside a bare `node` (a timer, nothing loaded) sampled at the same moments.
 * Each start is measured without NODE_EXTRA_CA_CERTS (as systemd runs the daemon) and, when the
 * caller's environment sets it, with it.
 *
 *   npm run bench:memory -- --idle [--starts 5] [--baseline ../mailshim-main]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from './lib/args.js';
import { startBenchCapture } from './lib/capture.js';
import { runLoad } from './lib/loadgen.js';
import { bareNodeRun, idleRun, THIS_BUILD, type IdleRun, type IdleSample } from './lib/idle.js';
import { freePort, memoryOf, rssSplitOf, sleep, startMailshim } from './lib/procs.js';
import { spread } from './lib/report.js';

const { messages, sessions, size, idle, starts, baseline } = parseArgs(process.argv.slice(2), {
  messages: 100,
  sessions: 20,
  size: 1024 * 1024,
  idle: false,
  starts: 5,
  baseline: undefined as string | undefined,
});
const mb = (kb: number) => (kb / 1024).toFixed(0);

interface Peak {
  rssKb: number;
  anonKb: number;
  fileKb: number;
}

async function phase(name: 'intake' | 'relay', base: string): Promise<string> {
  const capture = await startBenchCapture();
  if (name === 'intake') await capture.setDown(true);
  const port = await freePort();
  const daemon = await startMailshim({ dir: join(base, name), port, upstreamPort: capture.port, concurrency: sessions });
  try {
    await sleep(2000);
    const idle = memoryOf(daemon.pid).rssKb;
    const peak: Peak = { rssKb: 0, anonKb: 0, fileKb: 0 };
    const timer = setInterval(() => {
      const { rssKb } = memoryOf(daemon.pid);
      if (rssKb > peak.rssKb) Object.assign(peak, { rssKb }, rssSplitOf(daemon.pid));
    }, 50);
    const load = loadavg()[0]!.toFixed(1);
    const started = performance.now();
    const result = await runLoad({ port, sessions, messages, size, tag: `mem-${name}`, timeoutMs: 300_000 });
    if (name === 'relay') await capture.waitFor(result.accepted, 300_000);
    const seconds = (performance.now() - started) / 1000;
    clearInterval(timer);
    const hwm = memoryOf(daemon.pid).hwmKb;
    return `${name.padEnd(6)} ${result.accepted}/${messages} in ${seconds.toFixed(1)} s | idle ${mb(idle)} MB | peak VmRSS ${mb(peak.rssKb)} MB = ${mb(peak.anonKb)} anon + ${mb(peak.fileKb)} file | VmHWM ${mb(hwm)} MB | load ${load}`;
  } finally {
    await daemon.stop();
    await capture.close();
  }
}

/** `--idle`: median (min–max) per build, environment and moment, in MB. */
async function idleReport(): Promise<void> {
  const builds = [{ name: 'bare node', bin: '', repo: '' }, ...(baseline ? [{ name: 'baseline', bin: join(baseline, 'bin/mailshim'), repo: baseline }] : []), { name: 'this build', ...THIS_BUILD }];
  const withoutCa = { ...process.env };
  delete withoutCa.NODE_EXTRA_CA_CERTS;
  delete withoutCa.NODE_OPTIONS;
  const envs = [{ name: 'without NODE_EXTRA_CA_CERTS', env: withoutCa }];
  if (process.env.NODE_EXTRA_CA_CERTS) envs.push({ name: `with NODE_EXTRA_CA_CERTS`, env: { ...withoutCa, NODE_EXTRA_CA_CERTS: process.env.NODE_EXTRA_CA_CERTS } });
  const cases = envs.flatMap((e) => builds.map((b) => ({ ...b, envName: e.name, env: e.env, runs: [] as IdleRun[] })));
  console.log(`idle daemon, embedded default (examples/local.toml), ${starts} rounds of ${cases.length} starts at once, ${new Date().toISOString()}, load ${loadavg()[0]!.toFixed(1)}`);
  for (let round = 0; round < starts; round++) {
    const order = round % 2 === 0 ? cases : [...cases].reverse();
    const runs = await Promise.all(order.map((c, i) => (c.bin === '' ? bareNodeRun(c.env) : idleRun(c.bin, c.repo, c.env, `idle-${round}-${i}`))));
    order.forEach((c, i) => c.runs.push(runs[i]!));
  }
  const mbOf = (values: number[]) => spread(values, (kb) => (kb / 1024).toFixed(1));
  const columns: (keyof IdleSample)[] = ['rss', 'anon', 'file', 'nodeBinary', 'libraries', 'lmdbMap'];
  console.log(`| environment | build | moment | ${columns.join(' | ')} |`);
  console.log(`|---|---|---|${columns.map(() => '---:').join('|')}|`);
  for (const c of cases) {
    for (const moment of ['started', 'afterMessages', 'settled'] as const) {
      console.log(`| ${c.envName} | ${c.name} | ${moment} | ${columns.map((k) => mbOf(c.runs.map((r) => r[moment][k]))).join(' | ')} |`);
    }
  }
  console.log(`load average at the end ${loadavg()[0]!.toFixed(1)}; MB = 1024 kB; median (min–max) over ${starts} starts`);
}

if (idle) {
  await idleReport();
  process.exit(0);
}

const base = mkdtempSync(join(tmpdir(), 'mailshim-memory-'));
try {
  console.log(`${sessions} sessions, ${messages} x ${(size / 1024).toFixed(0)} KB, ${new Date().toISOString()}`);
  for (const name of ['intake', 'relay'] as const) console.log(await phase(name, base));
} finally {
  rmSync(base, { recursive: true, force: true });
}
