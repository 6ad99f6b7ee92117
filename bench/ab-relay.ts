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
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { builds, interleaved, option } from './lib/ab.js';
import { postfixToolsAvailable, runSource, startSink } from './lib/postfix-tools.js';
import { cpuMsOf, freePort, startMailshim } from './lib/procs.js';

const argv = process.argv.slice(2);
const messages = Number(option(argv, '--messages', '200'));
const sessions = Number(option(argv, '--sessions', '20'));
const size = Number(option(argv, '--size', String(1 << 20)));
const profile = option(argv, '--profile', '');

async function round(build: string, root: string, work: string, n: number) {
  const sink = await startSink();
  const port = await freePort();
  const nodeArgs = profile && build === 'this' ? ['--cpu-prof', '--cpu-prof-dir', profile] : [];
  const daemon = await startMailshim({ dir: join(work, `${build}-${n}`), port, upstreamPort: sink.port, concurrency: sessions, bin: join(root, 'bin/mailshim'), nodeArgs });
  try {
    // Warm-up: the first message loads the relay path's modules and opens the upstream pool.
    const warm = await runSource({ port, sessions: 1, messages: 1, size, keepConnections: true, timeoutMs: 60_000 });
    if (!warm.ok || !(await sink.waitFor(1, 60_000))) throw new Error(`warm-up failed: ${warm.stderr}`);
    const cpu0 = cpuMsOf(daemon.pid);
    const main0 = cpuMsOf(daemon.pid, daemon.pid);
    const started = performance.now();
    const result = await runSource({ port, sessions, messages, size, keepConnections: true, timeoutMs: 600_000 });
    if (!result.ok) throw new Error(`smtp-source failed: ${result.stderr}`);
    if (!(await sink.waitFor(messages + 1, 300_000))) throw new Error(`sink has ${sink.messages()} of ${messages + 1}`);
    const elapsed = performance.now() - started;
    return {
      'msg/s': (messages / elapsed) * 1000,
      'CPU ms/msg': (cpuMsOf(daemon.pid) - cpu0) / messages,
      // The main thread's id is the pid: the event loop without libuv's pool and V8's GC threads.
      'main thread ms/msg': (cpuMsOf(daemon.pid, daemon.pid) - main0) / messages,
    };
  } finally {
    await daemon.stop();
    await sink.close();
  }
}

if (!postfixToolsAvailable()) throw new Error('smtp-source/smtp-sink not found (set MAILSHIM_POSTFIX_TOOLS)');
const work = mkdtempSync(join(tmpdir(), 'ab-relay-'));
try {
  await interleaved(builds(option(argv, '--base', '')), Number(option(argv, '--rounds', '3')), (build, root, n) => round(build, root, work, n));
} finally {
  rmSync(work, { recursive: true, force: true });
}
