/**
 * A/B of two mailshim builds relaying large messages over kept-open connections, driven by
 * Postfix's own smtp-source (-d) and relaying to smtp-sink, in interleaved rounds (A, B, B, A, …)
 * so that both meet the same machine load. The 1 MB row of `npm run bench:compare` in isolation:
 * where bench/ab-oneconn.ts measures the cost of a session, this measures the cost of the bytes.
 *
 *   node dist/bench/ab-relay.js [--base /path/to/other/checkout] [--rounds 3 --messages 200
 *     --sessions 20 --size 1048576 --profile DIR]
 *
 * `--base`: the other checkout (built); this checkout is "this". Per round it reports msg/s (start
 * of smtp-source until smtp-sink has every message) and the daemon's CPU (utime + stime over the
 * run) per message, all threads and the main thread's alone: on a shared machine the CPU per
 * message is the steadier figure, and the main thread's is the one that caps msg/s.
 * `--profile DIR` adds `--cpu-prof` to this checkout's daemon. MAILSHIM_POSTFIX_TOOLS points at
 * smtp-source/smtp-sink outside /usr/sbin.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { postfixToolsAvailable, runSource, startSink } from './lib/postfix-tools.js';
import { cpuMsOf, freePort, REPO, startMailshim } from './lib/procs.js';
import { median } from './lib/report.js';

interface Options {
  base: string | undefined;
  rounds: number;
  messages: number;
  sessions: number;
  size: number;
  profile: string | undefined;
}

function parseArgs(argv: string[]): Options {
  const o: Options = { base: undefined, rounds: 3, messages: 200, sessions: 20, size: 1 << 20, profile: undefined };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const next = () => argv[++i]!;
    if (a === '--base') o.base = next();
    else if (a === '--rounds') o.rounds = Number(next());
    else if (a === '--messages') o.messages = Number(next());
    else if (a === '--sessions') o.sessions = Number(next());
    else if (a === '--size') o.size = Number(next());
    else if (a === '--profile') o.profile = next();
    else throw new Error(`unknown option ${a}`);
  }
  return o;
}

interface Round {
  build: string;
  msgPerSec: number;
  cpuMsPerMsg: number;
  /** The main thread's share (the event loop; libuv's pool does the fsyncs and the async closes). */
  mainMsPerMsg: number;
  load: number;
}

async function round(build: string, repo: string, o: Options, work: string, n: number): Promise<Round> {
  const sink = await startSink();
  const port = await freePort();
  const nodeArgs = o.profile && build === 'this' ? ['--cpu-prof', '--cpu-prof-dir', o.profile] : [];
  const daemon = await startMailshim({ dir: join(work, `${build}-${n}`), port, upstreamPort: sink.port, concurrency: o.sessions, bin: join(repo, 'bin/mailshim'), nodeArgs });
  try {
    // Warm-up: the first message loads the relay path's modules and opens the upstream pool.
    const warm = await runSource({ port, sessions: 1, messages: 1, size: o.size, keepConnections: true, timeoutMs: 60_000 });
    if (!warm.ok || !(await sink.waitFor(1, 60_000))) throw new Error(`warm-up failed: ${warm.stderr}`);
    const cpuBefore = cpuMsOf(daemon.pid);
    const mainBefore = cpuMsOf(daemon.pid, daemon.pid);
    const load = loadavg()[0]!;
    const started = performance.now();
    const result = await runSource({ port, sessions: o.sessions, messages: o.messages, size: o.size, keepConnections: true, timeoutMs: 600_000 });
    if (!result.ok) throw new Error(`smtp-source failed: ${result.stderr}`);
    if (!(await sink.waitFor(o.messages + 1, 300_000))) throw new Error(`sink has ${sink.messages()} of ${o.messages + 1}`);
    const elapsed = performance.now() - started;
    const cpu = cpuMsOf(daemon.pid) - cpuBefore;
    const main = cpuMsOf(daemon.pid, daemon.pid) - mainBefore;
    return { build, msgPerSec: (o.messages / elapsed) * 1000, cpuMsPerMsg: cpu / o.messages, mainMsPerMsg: main / o.messages, load };
  } finally {
    await daemon.stop();
    await sink.close();
  }
}

const fmt = (v: number, d = 1) => v.toFixed(d);

async function main(): Promise<void> {
  const o = parseArgs(process.argv.slice(2));
  if (!postfixToolsAvailable()) throw new Error('smtp-source/smtp-sink not found (set MAILSHIM_POSTFIX_TOOLS)');
  const builds: Array<[string, string]> = o.base
    ? [
        ['base', o.base],
        ['this', REPO],
      ]
    : [['this', REPO]];
  const work = mkdtempSync(join(tmpdir(), 'ab-relay-'));
  const rounds: Round[] = [];
  try {
    for (let n = 1; n <= o.rounds; n++) {
      for (const [build, repo] of n % 2 === 1 ? builds : [...builds].reverse()) {
        const r = await round(build, repo, o, work, n);
        rounds.push(r);
        process.stdout.write(`round ${n} ${build}: ${fmt(r.msgPerSec)} msg/s, ${fmt(r.cpuMsPerMsg, 2)} ms CPU/msg (main thread ${fmt(r.mainMsPerMsg, 2)}), load ${fmt(r.load, 2)}\n`);
      }
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
  for (const [build] of builds) {
    const mine = rounds.filter((r) => r.build === build);
    const col = (f: (r: Round) => number, d = 1) => {
      const v = mine.map(f);
      return `${fmt(median(v)!, d)} (${fmt(Math.min(...v), d)}–${fmt(Math.max(...v), d)})`;
    };
    process.stdout.write(`${build}: msg/s ${col((r) => r.msgPerSec)}, CPU ms/msg ${col((r) => r.cpuMsPerMsg, 2)}, main thread ${col((r) => r.mainMsPerMsg, 2)}\n`);
  }
  if (o.base) {
    const ratio = (f: (r: Round) => number) => {
      const per: number[] = [];
      for (let n = 1; n <= o.rounds; n++) {
        const [a, b] = ['base', 'this'].map((build) => f(rounds.filter((r) => r.build === build)[n - 1]!));
        per.push(b! / a!);
      }
      return `${per.map((r) => r.toFixed(2)).join(', ')}; median ${fmt(median(per)!, 2)}`;
    };
    process.stdout.write(`this / base msg/s per round: ${ratio((r) => r.msgPerSec)}\nthis / base CPU per message per round: ${ratio((r) => r.cpuMsPerMsg)}\nthis / base main-thread CPU per message per round: ${ratio((r) => r.mainMsPerMsg)}\n`);
  }
}

await main();
