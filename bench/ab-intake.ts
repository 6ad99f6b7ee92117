/**
 * A/B of two mailshim builds on intake alone, driven by Postfix's own smtp-source with connections
 * kept open (-d) and the upstream down (a port nothing listens on), so messages stay queued: what
 * is measured is accept + durable queueing (bench/compare.ts's "Intake … upstream down" rows), in
 * interleaved rounds (A, B, B, A, …) so that both meet the same machine load.
 *
 *   node dist/bench/ab-intake.js --base /path/to/other/checkout [--rounds 5 --messages 200
 *     --sessions 20 --size 1048576 --warmup 100 --profile DIR]
 *
 * `--base`: the other checkout (built); this checkout is "this". Per round: msg/s (the smtp-source
 * run's wall time), the daemon's CPU (utime + stime) per message and its peak RSS (VmHWM), after
 * `--warmup N` unmeasured messages (see bench/ab-oneconn.ts; 0 measures a daemon just started).
 * `--profile DIR` adds `--cpu-prof` to this checkout's daemon. MAILSHIM_POSTFIX_TOOLS points at
 * smtp-source outside /usr/sbin.
 */
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { fmt, interleaved, parseAbArgs, type AbOptions, type AbRound } from './lib/ab.js';
import { runSource } from './lib/postfix-tools.js';
import { cpuMsOf, freePort, memoryOf, startMailshim } from './lib/procs.js';
import { spread } from './lib/report.js';

type Options = AbOptions;

interface Round extends AbRound {
  cpuMsPerMsg: number;
  peakRssMb: number;
  load: number;
}

async function round(build: string, repo: string, o: Options, dir: string): Promise<Round> {
  const port = await freePort();
  const nodeArgs = o.profile && build === 'this' ? ['--cpu-prof', '--cpu-prof-dir', o.profile] : [];
  const daemon = await startMailshim({ dir, port, upstreamPort: await freePort(), concurrency: 20, bin: join(repo, 'bin/mailshim'), nodeArgs });
  try {
    if (o.warmup > 0) {
      const warm = await runSource({ port, sessions: o.sessions, messages: o.warmup, size: o.size, keepConnections: true, timeoutMs: 300_000 });
      if (!warm.ok) throw new Error(`smtp-source (warm-up) failed: ${warm.stderr}`);
    }
    const cpuBefore = cpuMsOf(daemon.pid);
    const load = loadavg()[0]!;
    const result = await runSource({ port, sessions: o.sessions, messages: o.messages, size: o.size, keepConnections: true, timeoutMs: 300_000 });
    if (!result.ok) throw new Error(`smtp-source failed: ${result.stderr}`);
    const cpu = cpuMsOf(daemon.pid) - cpuBefore;
    const peakRssMb = memoryOf(daemon.pid).hwmKb / 1024;
    return { build, msgPerSec: (o.messages / result.elapsedMs) * 1000, cpuMsPerMsg: cpu / o.messages, peakRssMb, load };
  } finally {
    await daemon.stop();
  }
}

const options = parseAbArgs(process.argv.slice(2), { rounds: 5, messages: 200, sessions: 20, size: 1 << 20, warmup: 100 });
await interleaved({
  name: 'ab-intake',
  base: options.base,
  rounds: options.rounds,
  run: (build, repo, dir) => round(build, repo, options, dir),
  describe: (r) => `${fmt(r.msgPerSec, 0)} msg/s, ${fmt(r.cpuMsPerMsg, 2)} ms CPU/msg, peak RSS ${fmt(r.peakRssMb, 0)} MB, load ${fmt(r.load, 2)}`,
  summary: (mine) => {
    const col = (f: (r: Round) => number, digits: number) => spread(mine.map(f), digits);
    return `msg/s ${col((r) => r.msgPerSec, 0)}, CPU ms/msg ${col((r) => r.cpuMsPerMsg, 2)}, peak RSS MB ${col((r) => r.peakRssMb, 0)}`;
  },
});
