/**
 * A/B of two mailshim builds on the one-connection-per-message workload, driven by Postfix's own
 * smtp-source (no -d: banner, EHLO, MAIL, RCPT, DATA, body, QUIT, each a round trip) and relaying
 * to smtp-sink, in interleaved rounds (A, B, B, A, …) so that both meet the same machine load.
 *
 *   node dist/bench/ab-oneconn.js --base /path/to/other/checkout [--rounds 3 --messages 2000
 *     --sessions 20 --size 2048 --warmup 2000 --profile DIR]
 *
 * `--warmup N` (default 2000): messages sent the same way before the measured run, unmeasured. A
 * fresh daemon spends its first thousands of messages compiling its hot code (V8's optimising
 * compiler, on background threads): on the 2-core test machine the first 3,000 messages cost
 * 3.5-3.7 ms of CPU each, 1.1 ms of it off the main thread, and messages after the first 4,000
 * 1.8 ms (0.35 off the main thread). A cold round measures the JIT more than the relay;
 * `--warmup 0` measures that (a daemon just started).
 *
 * `--base`: the other checkout (built); this checkout is "this". Per round it reports msg/s (start
 * of smtp-source until smtp-sink has every message), the daemon's CPU (utime + stime over the run)
 * per message, the event loop's delay in the daemon (bench/lib/loop-delay.ts), and from a 21st
 * client that does the same one-connection transactions one after another: connect → 220 banner
 * and connect → 250 to the data (p50/p99). `--profile DIR` adds `--cpu-prof` to this checkout's
 * daemon. MAILSHIM_POSTFIX_TOOLS points at smtp-source/smtp-sink outside /usr/sbin.
 */
import { readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { fmt, interleaved, parseAbArgs, type AbOptions, type AbRound } from './lib/ab.js';
import { runSource, startSink } from './lib/postfix-tools.js';
import { cpuMsOf, freePort, REPO, startMailshim } from './lib/procs.js';
import { percentile, spread } from './lib/report.js';

type Options = AbOptions;

interface Round extends AbRound {
  cpuMsPerMsg: number;
  bannerP50: number | null;
  bannerP99: number | null;
  messageP50: number | null;
  messageP99: number | null;
  loop: { p50: number; p99: number; max: number; mean: number } | undefined;
  load: number;
}

/** One whole one-connection transaction (banner to QUIT); ms from connect to the banner and to the 250 after the data. */
function probeTransaction(port: number, body: string): Promise<{ banner: number; message: number }> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const socket = connect({ port, host: '127.0.0.1' });
    let buffer = '';
    let banner = 0;
    const steps: Array<[string | null, string]> = [
      [null, '220'],
      ['EHLO probe.test\r\n', '250'],
      ['MAIL FROM:<probe@client.test>\r\n', '250'],
      ['RCPT TO:<sink@upstream.test>\r\n', '250'],
      ['DATA\r\n', '354'],
      [body + '.\r\n', '250'],
      ['QUIT\r\n', '221'],
    ];
    let step = 0;
    let message = 0;
    socket.setEncoding('latin1');
    socket.on('error', reject);
    socket.on('data', (text: string) => {
      buffer += text;
      // A complete reply ends with a line "NNN " (not "NNN-").
      const m = /(?:^|\r\n)(\d{3}) [^\r\n]*\r\n$/.exec(buffer);
      if (!m) return;
      if (m[1] !== steps[step]![1]) return reject(new Error(`probe: expected ${steps[step]![1]}, got ${buffer.trim()}`));
      buffer = '';
      if (step === 0) banner = performance.now() - started;
      if (step === 5) message = performance.now() - started;
      step++;
      if (step === steps.length) {
        socket.end();
        return resolve({ banner, message });
      }
      socket.write(steps[step]![0]!);
    });
  });
}

async function round(build: string, repo: string, o: Options, dir: string): Promise<Round> {
  const sink = await startSink();
  const port = await freePort();
  const loopFile = join(dir, 'loop-delay.json');
  process.env.MAILSHIM_LOOP_DELAY_FILE = loopFile;
  const nodeArgs = ['--import', join(REPO, 'dist/bench/lib/loop-delay.js')];
  if (o.profile && build === 'this') nodeArgs.push('--cpu-prof', '--cpu-prof-dir', o.profile);
  const daemon = await startMailshim({ dir, port, upstreamPort: sink.port, concurrency: 20, bin: join(repo, 'bin/mailshim'), nodeArgs });
  try {
    const body = `Subject: probe\r\n\r\n${'x'.repeat(76)}\r\n`.repeat(1) + `${'y'.repeat(76)}\r\n`.repeat(Math.ceil(o.size / 78));
    await probeTransaction(port, body); // warm-up
    if (o.warmup > 0) {
      const warm = await runSource({ port, sessions: o.sessions, messages: o.warmup, size: o.size, keepConnections: false, timeoutMs: 300_000 });
      if (!warm.ok) throw new Error(`smtp-source (warm-up) failed: ${warm.stderr}`);
      if (!(await sink.waitFor(o.warmup + 1, 120_000))) throw new Error(`sink has ${sink.messages()} of ${o.warmup + 1} after the warm-up`);
    }
    daemon.child.kill('SIGUSR2'); // reset the loop-delay histogram: measure the loaded phase only
    const cpuBefore = cpuMsOf(daemon.pid);
    const load = loadavg()[0]!;
    const started = performance.now();
    const source = runSource({ port, sessions: o.sessions, messages: o.messages, size: o.size, keepConnections: false, timeoutMs: 300_000 });
    const banners: number[] = [];
    const messages: number[] = [];
    let done = false;
    const probe = (async () => {
      while (!done) {
        const t = await probeTransaction(port, body);
        banners.push(t.banner);
        messages.push(t.message);
      }
    })();
    const result = await source;
    done = true;
    await probe;
    if (!result.ok) throw new Error(`smtp-source failed: ${result.stderr}`);
    const expected = o.warmup + o.messages + messages.length + 1;
    if (!(await sink.waitFor(expected, 120_000))) throw new Error(`sink has ${sink.messages()} of ${expected}`);
    const elapsed = performance.now() - started;
    const cpu = cpuMsOf(daemon.pid) - cpuBefore;
    await daemon.stop();
    const loop = JSON.parse(readFileSync(loopFile, 'utf8')) as Round['loop'];
    banners.sort((a, b) => a - b);
    messages.sort((a, b) => a - b);
    const total = o.messages + messages.length;
    return {
      build,
      msgPerSec: (total / elapsed) * 1000,
      cpuMsPerMsg: cpu / total,
      bannerP50: percentile(banners, 50),
      bannerP99: percentile(banners, 99),
      messageP50: percentile(messages, 50),
      messageP99: percentile(messages, 99),
      loop,
      load,
    };
  } finally {
    await daemon.stop();
    await sink.close();
  }
}

const options = parseAbArgs(process.argv.slice(2), { rounds: 3, messages: 2000, sessions: 20, size: 2048, warmup: 2000 });
await interleaved({
  name: 'ab-oneconn',
  base: options.base,
  rounds: options.rounds,
  run: (build, repo, dir) => round(build, repo, options, dir),
  describe: (r) =>
    `${fmt(r.msgPerSec, 0)} msg/s, ${fmt(r.cpuMsPerMsg, 2)} ms CPU/msg, banner p50/p99 ${fmt(r.bannerP50)}/${fmt(r.bannerP99)} ms, ` +
    `message p50/p99 ${fmt(r.messageP50)}/${fmt(r.messageP99)} ms, loop delay p50/p99/max ${fmt(r.loop?.p50)}/${fmt(r.loop?.p99)}/${fmt(r.loop?.max)} ms, load ${fmt(r.load, 2)}`,
  summary: (mine) => {
    const col = (f: (r: Round) => number | null) => spread(mine.map(f));
    return (
      `msg/s ${col((r) => r.msgPerSec)}, CPU ms/msg ${col((r) => r.cpuMsPerMsg)}, banner p50 ${col((r) => r.bannerP50)} p99 ${col((r) => r.bannerP99)}, ` +
      `message p50 ${col((r) => r.messageP50)} p99 ${col((r) => r.messageP99)}, loop p99 ${col((r) => r.loop?.p99 ?? null)}`
    );
  },
});
