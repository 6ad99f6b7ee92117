/**
 * `npm run bench:compare`: mailshim against a private Postfix instance, driven by Postfix's own
 * smtp-source and relaying to Postfix's smtp-sink, in interleaved rounds (mailshim, Postfix,
 * mailshim, Postfix, …) so that both meet the same machine load. Each workload reports the
 * median of the per-round ratios with their min–max. The project's own load generator runs the
 * one-connection-per-message workload too, for what smtp-source does not report: connect → 220
 * banner and connect → 250 per message (p50/p99).
 *
 *   npm run bench:compare [-- --rounds 3 --small 2000 --large 200 --sessions 20 --warmup 2000 --quick]
 *
 * Both systems are warmed before each round's measured runs (`--warmup N` 2 KB messages one per
 * connection, and N/100 × 1 MB with connections kept, unmeasured): a server runs for days, and a
 * daemon just started spends its first thousands of messages on V8 compiling its hot code (on the
 * 2-core test machine 3.5 ms of CPU per 2 KB message cold against ~1.8 warm; see
 * docs/performance.md). Postfix gets the same messages; `--warmup 0` measures both cold.
 *
 * Not part of `npm test`: it needs root to install and run Postfix (apt-get install postfix,
 * which replaces any installed MTA; the system instance is stopped and disabled again).
 */
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from './lib/args.js';
import { cpuMeter } from './lib/cpu.js';
import { runLoad } from './lib/loadgen.js';
import { LARGE, postfixToolsAvailable, runSource, SMALL, startSink, type Sink } from './lib/postfix-tools.js';
import { freePort, PostfixInstance, REPO, sleep } from './lib/procs.js';
import { median, percentile, spread, svg, type Row } from './lib/report.js';
import { mailshimTarget, postfixTarget, type Target } from './lib/targets.js';

const DEFAULTS = {
  rounds: 3,
  small: 2000,
  large: 200,
  sessions: 20,
  /** Messages for the own-generator latency run (one connection per message). */
  latency: 1000,
  /** Unmeasured 2 KB messages (and a hundredth as many 1 MB ones, at least 5) before each target's measured runs. */
  warmup: 2000,
};
type Options = typeof DEFAULTS;

function parseOptions(argv: string[]): Options {
  const o = parseArgs(argv, DEFAULTS, { quick: { small: 200, large: 20, latency: 200, warmup: 200 } });
  if (o.rounds < 1) throw new Error('--rounds must be at least 1');
  return o;
}

const PHASE_MS = 120_000;
const log = (line: string) => process.stderr.write(`[compare] ${line}\n`);

interface Workload {
  key: string;
  label: string;
  unit: string;
  better: 'higher' | 'lower';
}

const WORKLOADS: Workload[] = [
  { key: 'relay_2kb_conn_per_msg', label: 'Relay 2 KB, one connection per message (smtp-source)', unit: 'msg/s', better: 'higher' },
  { key: 'relay_2kb_kept', label: 'Relay 2 KB, connections kept (smtp-source -d)', unit: 'msg/s', better: 'higher' },
  { key: 'relay_1mb_kept', label: 'Relay 1 MB, connections kept (smtp-source -d)', unit: 'msg/s', better: 'higher' },
  { key: 'intake_2kb_kept', label: 'Intake 2 KB, upstream down (smtp-source -d)', unit: 'msg/s', better: 'higher' },
  { key: 'intake_1mb_kept', label: 'Intake 1 MB, upstream down (smtp-source -d)', unit: 'msg/s', better: 'higher' },
  { key: 'relay_2kb_conn_per_msg_own', label: 'Relay 2 KB, one connection per message (own generator)', unit: 'msg/s', better: 'higher' },
  { key: 'relay_2kb_conn_per_msg_cpu', label: 'CPU per message, relay 2 KB, one connection per message', unit: 'ms', better: 'lower' },
  { key: 'relay_2kb_kept_cpu', label: 'CPU per message, relay 2 KB, connections kept', unit: 'ms', better: 'lower' },
  { key: 'relay_1mb_kept_cpu', label: 'CPU per message, relay 1 MB, connections kept', unit: 'ms', better: 'lower' },
  { key: 'intake_2kb_kept_cpu', label: 'CPU per message, intake 2 KB', unit: 'ms', better: 'lower' },
  { key: 'intake_1mb_kept_cpu', label: 'CPU per message, intake 1 MB', unit: 'ms', better: 'lower' },
  { key: 'banner_p50_ms', label: 'Connect → 220 banner p50', unit: 'ms', better: 'lower' },
  { key: 'banner_p99_ms', label: 'Connect → 220 banner p99', unit: 'ms', better: 'lower' },
  { key: 'message_p50_ms', label: 'Connect → 250 per message p50 (one connection per message)', unit: 'ms', better: 'lower' },
  { key: 'message_p99_ms', label: 'Connect → 250 per message p99 (one connection per message)', unit: 'ms', better: 'lower' },
];

/** Per workload, per target: one value per round (null when the round failed). */
type Samples = Record<string, { mailshim: (number | null)[]; postfix: (number | null)[] }>;

/** Relay workloads: smtp-source into the target, time until smtp-sink has every message. */
async function relayRound(target: Target, sink: Sink, o: Options, record: (key: string, v: number | null) => void): Promise<void> {
  const port = await target.start(sink.port);
  try {
    await sleep(1000);
    await warmUp(target, port, o, sink);
    const runs: Array<[string, number, number, boolean]> = [
      ['relay_2kb_conn_per_msg', o.small, SMALL, false],
      ['relay_2kb_kept', o.small, SMALL, true],
      ['relay_1mb_kept', o.large, LARGE, true],
    ];
    for (const [key, count, size, keep] of runs) {
      const before = sink.messages();
      const started = performance.now();
      const meter = cpuMeter(sink.pid);
      const source = await runSource({ port, sessions: o.sessions, messages: count, size, keepConnections: keep, timeoutMs: PHASE_MS });
      const complete = await sink.waitFor(before + count, PHASE_MS);
      const seconds = (performance.now() - started) / 1000;
      const got = sink.messages() - before;
      const value = source.ok && complete ? got / seconds : null;
      record(key, value);
      const cpu = recordCpu(key, meter, value === null ? 0 : got, record);
      log(
        `${target.name} ${key}: ${got}/${count} at the sink in ${seconds.toFixed(1)} s = ${value?.toFixed(1) ?? 'FAILED'} msg/s; ${cpu}${source.ok ? '' : ` (smtp-source: ${source.stderr.slice(0, 200)})`}`,
      );
    }
    // The own generator, one connection per message: the latencies smtp-source does not report.
    const before = sink.messages();
    const started = performance.now();
    const own = await runLoad({ port, sessions: o.sessions, messages: o.latency, size: SMALL, tag: `${target.name}-cpm`, timeoutMs: PHASE_MS, connectionPerMessage: true });
    const complete = await sink.waitFor(before + own.accepted, PHASE_MS);
    const seconds = (performance.now() - started) / 1000;
    const banner = [...own.bannerMs].sort((a, b) => a - b);
    const message = [...own.messageMs].sort((a, b) => a - b);
    record('relay_2kb_conn_per_msg_own', complete && own.accepted === o.latency ? (sink.messages() - before) / seconds : null);
    record('banner_p50_ms', percentile(banner, 50));
    record('banner_p99_ms', percentile(banner, 99));
    record('message_p50_ms', percentile(message, 50));
    record('message_p99_ms', percentile(message, 99));
    log(
      `${target.name} own generator, one connection per message: ${own.accepted}/${o.latency} accepted, ${((sink.messages() - before) / seconds).toFixed(1)} msg/s end to end; ` +
        `banner p50 ${percentile(banner, 50)?.toFixed(1)} p99 ${percentile(banner, 99)?.toFixed(1)} ms; message p50 ${percentile(message, 50)?.toFixed(1)} p99 ${percentile(message, 99)?.toFixed(1)} ms`,
    );
  } finally {
    await target.stop();
  }
}

/** Unmeasured messages through a just-started target (see the header comment); relayed or queued, as the round does. */
async function warmUp(target: Target, port: number, o: Options, sink?: Sink): Promise<void> {
  if (o.warmup <= 0) return;
  const started = performance.now();
  const before = sink?.messages() ?? 0;
  const large = Math.max(5, Math.round(o.warmup / 100));
  for (const [count, size, keep] of [
    [o.warmup, SMALL, false],
    [large, LARGE, true],
  ] as const) {
    const source = await runSource({ port, sessions: o.sessions, messages: count, size, keepConnections: keep, timeoutMs: PHASE_MS });
    if (!source.ok) throw new Error(`${target.name} warm-up: smtp-source: ${source.stderr.slice(0, 200)}`);
  }
  // Relayed: every warm-up message at the sink before the measured runs count from it.
  if (sink && !(await sink.waitFor(before + o.warmup + large, PHASE_MS))) throw new Error(`${target.name} warm-up: not every message reached the sink`);
  log(`${target.name} warmed with ${o.warmup} × 2 KB and ${large} × 1 MB in ${((performance.now() - started) / 1000).toFixed(1)} s`);
}

/**
 * Records `<key>_cpu`: the machine's busy time over the run minus the load generator's, per message
 * (bench/lib/cpu.ts) — what the system under test cost, whichever processes and threads it used.
 */
function recordCpu(key: string, meter: ReturnType<typeof cpuMeter>, messages: number, record: (key: string, v: number | null) => void): string {
  const { machineMs, generatorMs } = meter.stop();
  const perMessage = messages > 0 ? (machineMs - generatorMs) / messages : null;
  record(`${key}_cpu`, perMessage);
  return `CPU ${perMessage?.toFixed(2) ?? '—'} ms/msg (machine ${machineMs} ms, of it smtp-source + smtp-sink ${generatorMs} ms)`;
}

/** Intake workloads: upstream down (a closed port), so only accept + durable queueing is measured. */
async function intakeRound(target: Target, sink: Sink, o: Options, record: (key: string, v: number | null) => void): Promise<void> {
  const port = await target.start(await freePort());
  try {
    await sleep(1000);
    await warmUp(target, port, o);
    for (const [key, count, size] of [
      ['intake_2kb_kept', o.small, SMALL],
      ['intake_1mb_kept', o.large, LARGE],
    ] as const) {
      const meter = cpuMeter(sink.pid);
      const source = await runSource({ port, sessions: o.sessions, messages: count, size, keepConnections: true, timeoutMs: PHASE_MS });
      const value = source.ok ? count / (source.elapsedMs / 1000) : null;
      record(key, value);
      const cpu = recordCpu(key, meter, value === null ? 0 : count, record);
      log(
        `${target.name} ${key}: ${count} in ${(source.elapsedMs / 1000).toFixed(1)} s = ${value?.toFixed(1) ?? 'FAILED'} msg/s; ${cpu}${source.ok ? '' : ` (smtp-source: ${source.stderr.slice(0, 200)})`}`,
      );
    }
  } finally {
    await target.stop();
  }
}

interface Summary {
  key: string;
  label: string;
  unit: string;
  better: 'higher' | 'lower';
  mailshim: (number | null)[];
  postfix: (number | null)[];
  /** mailshim vs Postfix per round, "better" direction (> 1 = mailshim ahead). */
  ratios: number[];
  ratioMedian: number | null;
  ratioMin: number | null;
  ratioMax: number | null;
}

function summarize(samples: Samples): Summary[] {
  return WORKLOADS.map((w) => {
    const s = samples[w.key] ?? { mailshim: [], postfix: [] };
    const ratios: number[] = [];
    s.mailshim.forEach((m, i) => {
      const p = s.postfix[i];
      if (m && p) ratios.push(w.better === 'higher' ? m / p : p / m);
    });
    return {
      ...w,
      mailshim: s.mailshim,
      postfix: s.postfix,
      ratios,
      ratioMedian: median(ratios),
      ratioMin: ratios.length ? Math.min(...ratios) : null,
      ratioMax: ratios.length ? Math.max(...ratios) : null,
    };
  });
}

const num = (v: number) => (v >= 100 ? v.toFixed(0) : v.toFixed(1));
const range = (values: (number | null)[]) => spread(values, num);

function table(summaries: Summary[]): string {
  const header = ['workload', 'unit', 'mailshim median (min–max)', 'Postfix median (min–max)', 'mailshim vs Postfix, median of per-round ratios (min–max); > 1 = mailshim better'];
  const lines = summaries.map((s) => [
    s.label,
    s.unit,
    range(s.mailshim),
    range(s.postfix),
    s.ratioMedian === null ? '—' : `${s.ratioMedian.toFixed(2)}× (${s.ratioMin!.toFixed(2)}–${s.ratioMax!.toFixed(2)})`,
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i]!.length)));
  const row = (cells: string[]) => '| ' + cells.map((c, i) => c.padEnd(widths[i]!)).join(' | ') + ' |';
  return [row(header), '|' + widths.map((w) => '-'.repeat(w + 2)).join('|') + '|', ...lines.map(row)].join('\n');
}

async function main(): Promise<number> {
  const o = parseOptions(process.argv.slice(2));
  if (!PostfixInstance.ensureInstalled(log) || !postfixToolsAvailable()) {
    log('Postfix (with smtp-source and smtp-sink) is not available: nothing to compare');
    return 2;
  }
  const startedAt = new Date();
  const load0 = loadavg();
  const base = mkdtempSync(join(tmpdir(), 'mailshim-compare-'));
  chmodSync(base, 0o755); // Postfix's daemons (user postfix) must reach their directories inside
  log(`work directory ${base}; ${cpus().length} CPU(s), load average ${load0.map((l) => l.toFixed(2)).join(' ')}; ${o.rounds} interleaved rounds`);
  const samples: Samples = {};
  const loads: number[] = [];
  const sink = await startSink();
  const targets = [mailshimTarget(base), postfixTarget(base)];
  try {
    for (let round = 1; round <= o.rounds; round++) {
      for (const target of targets) {
        const name = target.name as 'mailshim' | 'postfix';
        const record = (key: string, v: number | null) => {
          const entry = (samples[key] ??= { mailshim: [], postfix: [] });
          entry[name][round - 1] = v;
        };
        loads.push(loadavg()[0]!);
        log(`round ${round}/${o.rounds}: ${name} (load average ${loadavg()[0]!.toFixed(2)})`);
        await relayRound(target, sink, o, record);
        await intakeRound(target, sink, o, record);
      }
    }
  } finally {
    await sink.close();
  }
  const load1 = loadavg();
  const finishedAt = new Date();
  const summaries = summarize(samples);
  const conditions = `${cpus().length} CPU(s) (${cpus()[0]?.model ?? '?'}), load average ${load0[0]!.toFixed(2)} at start, ${load1[0]!.toFixed(2)} at end (${Math.min(...loads).toFixed(1)}–${Math.max(...loads).toFixed(1)} at round starts); ${o.rounds} interleaved rounds; ${o.sessions} sessions, ${o.small} × 2 KB, ${o.large} × 1 MB; ${o.warmup > 0 ? `warmed with ${o.warmup} × 2 KB + ${Math.max(5, Math.round(o.warmup / 100))} × 1 MB before each round` : 'not warmed (cold daemons)'}`;
  const text = `${table(summaries)}\n\nconditions: ${conditions}\nstarted ${startedAt.toISOString()}, ${((finishedAt.getTime() - startedAt.getTime()) / 1000).toFixed(0)} s\n`;
  process.stdout.write(`\n${text}`);
  const results = join(REPO, 'bench/results');
  mkdirSync(results, { recursive: true });
  writeFileSync(join(results, 'compare-latest.txt'), text);
  writeFileSync(
    join(results, 'compare-latest.json'),
    JSON.stringify(
      {
        startedAt: startedAt.toISOString(),
        finishedAt: finishedAt.toISOString(),
        node: process.version,
        cpus: cpus().length,
        loadavgStart: load0,
        loadavgEnd: load1,
        loadavgAtRounds: loads,
        options: o,
        workloads: summaries,
      },
      null,
      2,
    ) + '\n',
  );
  // The chart shows rates and latencies; the CPU rows are in the table.
  const rows: Row[] = summaries
    .filter((s) => !s.key.endsWith('_cpu'))
    .map((s) => ({
      key: s.key,
      label: s.label.replace(/ \((smtp-source.*|own generator|one connection per message)\)$/, ''),
      unit: s.unit,
      better: s.better,
      mailshim: median(s.mailshim.filter((v): v is number => v !== null)),
      postfix: median(s.postfix.filter((v): v is number => v !== null)),
      ceiling: null,
    }));
  writeFileSync(
    join(results, 'compare-latest.svg'),
    svg(rows, `${startedAt.toISOString().slice(0, 16)}Z — medians of ${o.rounds} interleaved rounds; load average ${load0[0]!.toFixed(1)}–${load1[0]!.toFixed(1)}`),
  );
  log('wrote bench/results/compare-latest.{txt,json,svg}');
  rmSync(base, { recursive: true, force: true });
  return summaries.every((s) => s.ratios.length === o.rounds) ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(`compare failed: ${(error as Error).stack ?? String(error)}\n`);
    process.exit(1);
  },
);
