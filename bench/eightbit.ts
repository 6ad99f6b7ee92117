/**
 * `npm run build && node dist/bench/eightbit.js [BASELINE_DIR]`: daemon CPU per message for relaying
 * UTF-8 mail declared 8bit (cron, PHP, git) over SMTP, this build against another build of mailshim
 * (BASELINE_DIR, e.g. a worktree of main beside this checkout: `git worktree add ../mailshim-main main
 * && cd ../mailshim-main && npm ci && npm run build`, then `node dist/bench/eightbit.js ../mailshim-main`). Interleaved rounds (the order alternates each round) on one machine,
 * median and range per workload; the load average is printed, as the machine may be shared.
 *
 * The daemon's CPU is utime + stime from /proc/PID/stat over the measured messages (after a warm-up),
 * so the client and the capture server do not count. Workloads: 2 KB and 1 MB to a server that
 * offers 8BITMIME (sent as is by this build, re-encoded before it), and 1 MB to one that does not.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { startBenchCapture } from './lib/capture.js';
import { runLoad } from './lib/loadgen.js';
import { cpuMsOf, freePort, MAILSHIM, startMailshim } from './lib/procs.js';
import { median } from './lib/report.js';

const baseline = process.argv[2];
if (!baseline) {
  console.error('usage: node dist/bench/eightbit.js BASELINE_DIR (another built checkout of mailshim, e.g. ../mailshim-main)');
  process.exit(64);
}
const builds = [
  { name: 'before', bin: join(baseline, 'bin/mailshim') },
  { name: 'after', bin: MAILSHIM },
];
const workloads = [
  { name: '8-bit 2 KB, server offers 8BITMIME', size: 2048, messages: 1500, sessions: 8, hide: false },
  { name: '8-bit 1 MB, server offers 8BITMIME', size: 1024 * 1024, messages: 60, sessions: 4, hide: false },
  { name: '8-bit 1 MB, server without 8BITMIME', size: 1024 * 1024, messages: 60, sessions: 4, hide: true },
];
const ROUNDS = Number(process.env.ROUNDS ?? 5);
const WARMUP = 10;

async function measure(bin: string, w: (typeof workloads)[number], tag: string): Promise<number> {
  const dir = mkdtempSync(join(tmpdir(), 'bench-eightbit-'));
  const capture = await startBenchCapture(0, { hide8BITMIME: w.hide });
  const daemon = await startMailshim({ dir, bin, port: await freePort(), upstreamPort: capture.port, concurrency: w.sessions });
  try {
    const load = (messages: number, t: string) => runLoad({ port: daemon.port, sessions: w.sessions, messages, size: w.size, tag: t, eightBit: true, timeoutMs: 600_000 });
    await load(WARMUP, `${tag}w`);
    if (!(await capture.waitFor(WARMUP, 120_000))) throw new Error('warm-up not delivered');
    const before = cpuMsOf(daemon.pid);
    const result = await load(w.messages, tag);
    if (result.accepted !== w.messages) throw new Error(`${tag}: ${result.accepted}/${w.messages} accepted ${JSON.stringify(result.failures)}`);
    if (!(await capture.waitFor(WARMUP + w.messages, 600_000))) throw new Error(`${tag}: not all delivered`);
    return (cpuMsOf(daemon.pid) - before) / w.messages;
  } finally {
    await daemon.stop();
    await capture.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

const samples = new Map<string, number[]>();
console.log(
  `baseline ${baseline}; ${ROUNDS} interleaved rounds; load average at start ${loadavg()
    .map((l) => l.toFixed(2))
    .join(' ')}`,
);
for (let round = 0; round < ROUNDS; round++) {
  for (const w of workloads) {
    const order = round % 2 === 0 ? builds : [...builds].reverse();
    for (const b of order) {
      const ms = await measure(b.bin, w, `r${round}${b.name}`);
      const key = `${w.name}|${b.name}`;
      samples.set(key, [...(samples.get(key) ?? []), ms]);
      console.log(`round ${round + 1} ${w.name} ${b.name}: ${ms.toFixed(2)} ms CPU/message (load ${loadavg()[0]!.toFixed(2)})`);
    }
  }
}
console.log(
  `\nload average at end ${loadavg()
    .map((l) => l.toFixed(2))
    .join(' ')}\n`,
);
console.log('| workload | before: ms CPU/msg, median (range) | after | after / before |');
console.log('|---|---:|---:|---:|');
const fmt = (v: number[]) => `${median(v)!.toFixed(2)} (${Math.min(...v).toFixed(2)}–${Math.max(...v).toFixed(2)})`;
for (const w of workloads) {
  const before = samples.get(`${w.name}|before`)!;
  const after = samples.get(`${w.name}|after`)!;
  console.log(`| ${w.name} | ${fmt(before)} | ${fmt(after)} | ${(median(after)! / median(before)!).toFixed(2)} |`);
}
