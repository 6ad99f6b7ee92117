/**
 * A/B of two mailshim builds relaying large messages over kept-open connections, driven by
 * Postfix's own smtp-source (-d) and relaying to smtp-sink, in interleaved rounds (A, B, B, A, …)
 * so that both meet the same machine load. The 1 MB row of `npm run bench:compare` in isolation:
 * where bench/ab-oneconn.ts measures the cost of a session, this measures the cost of the bytes.
 *
 *   node dist/bench/ab-relay.js [--base /path/to/other/checkout] [--rounds 3 --messages 200
 *     --sessions 20 --size 1048576 --warmup 40 --profile DIR]
 *
 * `--base`: the other checkout (built); this checkout is "this". Per round it reports msg/s (start
 * of smtp-source until smtp-sink has every message) and the daemon's CPU (utime + stime over the
 * run) per message, all threads and the main thread's alone: on a shared machine the CPU per
 * message is the steadier figure, and the main thread's is the one that caps msg/s.
 * `--profile DIR` adds `--cpu-prof` to this checkout's daemon. MAILSHIM_POSTFIX_TOOLS points at
 * smtp-source/smtp-sink outside /usr/sbin.
 */
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { describeCpu, fmt, interleaved, parseAbArgs, printCpuRatios, summarizeCpu, type AbOptions, type CpuRound } from './lib/ab.js';
import { runSource, startSink } from './lib/postfix-tools.js';
import { cpuMsOf, freePort, startMailshim } from './lib/procs.js';

interface Round extends CpuRound {
  load: number;
}

async function round(build: string, repo: string, o: AbOptions, dir: string): Promise<Round> {
  const sink = await startSink();
  const port = await freePort();
  const nodeArgs = o.profile && build === 'this' ? ['--cpu-prof', '--cpu-prof-dir', o.profile] : [];
  const daemon = await startMailshim({ dir, port, upstreamPort: sink.port, concurrency: o.sessions, bin: join(repo, 'bin/mailshim'), nodeArgs });
  try {
    // Warm-up (unmeasured): loads the relay path's modules, opens the upstream pool, lets V8 compile the hot code.
    const warmup = Math.max(1, o.warmup);
    const warm = await runSource({ port, sessions: Math.min(o.sessions, warmup), messages: warmup, size: o.size, keepConnections: true, timeoutMs: 300_000 });
    if (!warm.ok || !(await sink.waitFor(warmup, 120_000))) throw new Error(`warm-up failed: ${warm.stderr}`);
    const cpu0 = cpuMsOf(daemon.pid);
    const main0 = cpuMsOf(daemon.pid, daemon.pid); // the main thread's id is the pid
    const load = loadavg()[0]!;
    const started = performance.now();
    const result = await runSource({ port, sessions: o.sessions, messages: o.messages, size: o.size, keepConnections: true, timeoutMs: 600_000 });
    if (!result.ok) throw new Error(`smtp-source failed: ${result.stderr}`);
    if (!(await sink.waitFor(warmup + o.messages, 300_000))) throw new Error(`sink has ${sink.messages()} of ${warmup + o.messages}`);
    const elapsed = performance.now() - started;
    return {
      build,
      msgPerSec: (o.messages / elapsed) * 1000,
      cpuMsPerMsg: (cpuMsOf(daemon.pid) - cpu0) / o.messages,
      mainMsPerMsg: (cpuMsOf(daemon.pid, daemon.pid) - main0) / o.messages,
      load,
    };
  } finally {
    await daemon.stop();
    await sink.close();
  }
}

const options = parseAbArgs(process.argv.slice(2), { rounds: 3, messages: 200, sessions: 20, size: 1 << 20, warmup: 40 });
const rounds = await interleaved({
  name: 'ab-relay',
  base: options.base,
  rounds: options.rounds,
  run: (build, repo, dir) => round(build, repo, options, dir),
  describe: (r) => `${describeCpu(r)}, load ${fmt(r.load, 2)}`,
  summary: summarizeCpu,
});
printCpuRatios(rounds);
