/**
 * `npm run bench`: mailshim side by side with a private Postfix instance and the raw ceiling
 * (load generator straight into the capture upstream). Loopback only; every phase has a time
 * limit so the whole run stays under 10 minutes. Prints one table and writes
 * bench/results/latest.json and bench/results/latest.svg.
 *
 *   npm run bench [-- --small N --large N --sessions N --quick]
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from './lib/args.js';
import { startBenchCapture, type BenchCapture } from './lib/capture.js';
import { runLoad, type LoadResult } from './lib/loadgen.js';
import { LARGE, SMALL } from './lib/postfix-tools.js';
import { freePort, PostfixInstance, REPO, sampleTreeRss, sleep, startMailshim } from './lib/procs.js';
import { mailshimTarget, postfixTarget, type Target } from './lib/targets.js';
import { median, percentile, svg, table, type Row } from './lib/report.js';

const DEFAULTS = { small: 5000, large: 500, sessions: 20, sendmailRuns: 200 };
type Options = typeof DEFAULTS;

/** Per-phase limit: a target that cannot finish in time is reported with what it did. */
const PHASE_MS = 90_000;

const log = (line: string) => process.stderr.write(`[bench] ${line}\n`);
const rate = (r: LoadResult) => (r.accepted === 0 ? 0 : r.accepted / (r.elapsedMs / 1000));

interface TargetFigures {
  intakeSmall: number | null;
  intakeLarge: number | null;
  relaySmall: number | null;
  relayLarge: number | null;
  p50: number | null;
  p99: number | null;
  idleRssMb: number | null;
  peakRssMb: number | null;
  sendmailMs: number | null;
  notes: string[];
}

const empty = (): TargetFigures => ({ intakeSmall: null, intakeLarge: null, relaySmall: null, relayLarge: null, p50: null, p99: null, idleRssMb: null, peakRssMb: null, sendmailMs: null, notes: [] });

/** Intake: upstream down (a closed port), so only accept + spool is measured. */
async function intake(target: Target, o: Options, f: TargetFigures): Promise<void> {
  const deadPort = await freePort();
  const port = await target.start(deadPort);
  await sleep(3000);
  f.idleRssMb = target.rssKb() / 1024;
  const sampler = sampleTreeRss(() => target.rootPid());
  try {
    const small = await runLoad({ port, sessions: o.sessions, messages: o.small, size: SMALL, tag: `${target.name}-in-s`, timeoutMs: PHASE_MS });
    f.intakeSmall = rate(small);
    log(`${target.name} intake 2KB: ${small.accepted}/${o.small} accepted in ${(small.elapsedMs / 1000).toFixed(1)} s = ${f.intakeSmall.toFixed(0)} msg/s ${JSON.stringify(small.failures)}`);
    if (small.accepted < o.small) f.notes.push(`intake 2KB: only ${small.accepted}/${o.small} accepted within ${PHASE_MS / 1000} s`);
    const large = await runLoad({ port, sessions: o.sessions, messages: o.large, size: LARGE, tag: `${target.name}-in-l`, timeoutMs: PHASE_MS });
    f.intakeLarge = rate(large);
    log(`${target.name} intake 1MB: ${large.accepted}/${o.large} accepted in ${(large.elapsedMs / 1000).toFixed(1)} s = ${f.intakeLarge.toFixed(1)} msg/s ${JSON.stringify(large.failures)}`);
    if (large.accepted < o.large) f.notes.push(`intake 1MB: only ${large.accepted}/${o.large} accepted within ${PHASE_MS / 1000} s`);
  } finally {
    const sampled = sampler.stop();
    f.peakRssMb = Math.max(f.peakRssMb ?? 0, (target.hwmKb() ?? sampled) / 1024);
    await target.stop();
  }
}

/** Relay: load into the target while the capture upstream is up; time until the capture has everything. */
async function relayOnce(
  port: number,
  capture: BenchCapture,
  name: string,
  count: number,
  size: number,
  sessions: number,
  tag: string,
): Promise<{ rate: number | null; latencies: number[]; note?: string }> {
  const before = capture.total;
  const started = performance.now();
  const load = await runLoad({ port, sessions, messages: count, size, tag, timeoutMs: PHASE_MS });
  const complete = await capture.waitFor(before + load.accepted, PHASE_MS);
  const elapsed = (performance.now() - started) / 1000;
  const latencies: number[] = [];
  for (const [token, at] of load.acceptedAt) {
    const arrived = capture.delivered.get(token)?.[0];
    if (arrived !== undefined) latencies.push(arrived - at);
  }
  const got = capture.total - before;
  log(`${name} relay ${size === SMALL ? '2KB' : '1MB'}: ${load.accepted} accepted, ${got} at the upstream after ${elapsed.toFixed(1)} s = ${(got / elapsed).toFixed(1)} msg/s end to end`);
  return {
    rate: got === 0 ? null : got / elapsed,
    latencies,
    note: complete && load.accepted === count ? undefined : `relay ${size === SMALL ? '2KB' : '1MB'}: ${got}/${count} reached the upstream within the time limit`,
  };
}

async function relay(target: Target, capture: BenchCapture, o: Options, f: TargetFigures): Promise<void> {
  const port = await target.start(capture.port);
  await sleep(1000);
  const sampler = sampleTreeRss(() => target.rootPid());
  try {
    const small = await relayOnce(port, capture, target.name, o.small, SMALL, o.sessions, `${target.name}-re-s`);
    f.relaySmall = small.rate;
    if (small.note) f.notes.push(small.note);
    const sorted = small.latencies.sort((a, b) => a - b);
    f.p50 = percentile(sorted, 50);
    f.p99 = percentile(sorted, 99);
    const large = await relayOnce(port, capture, target.name, o.large, LARGE, o.sessions, `${target.name}-re-l`);
    f.relayLarge = large.rate;
    if (large.note) f.notes.push(large.note);
    if (target.name === 'postfix') f.sendmailMs = postfixSendmail(o);
  } finally {
    const sampled = sampler.stop();
    f.peakRssMb = Math.max(f.peakRssMb ?? 0, (target.hwmKb() ?? sampled) / 1024);
    await target.stop();
  }
}

let postfixConfigDir: string | undefined;

/** Median wall time of one command over `runs` runs, with `input` on stdin. */
/**
 * Runs `command` `runs` times in the environment a cron job or PHP gives sendmail: without
 * NODE_EXTRA_CA_CERTS and NODE_OPTIONS, which Node reads at every start (this development machine
 * sets a 215 KB CA bundle, which doubled `node -e 0`; bench/sendmail-startup.mjs does the same).
 */
function medianRun(command: string, args: string[], runs: number, input?: Buffer, env: NodeJS.ProcessEnv = process.env): number | null {
  const times: number[] = [];
  const clean = { ...env };
  delete clean.NODE_EXTRA_CA_CERTS;
  delete clean.NODE_OPTIONS;
  for (let i = 0; i < runs; i++) {
    const t = performance.now();
    const r = spawnSync(command, args, { input, env: clean, stdio: [input ? 'pipe' : 'ignore', 'ignore', 'ignore'] });
    if (r.status !== 0) return null;
    times.push(performance.now() - t);
  }
  return median(times);
}

const SMALL_EML = Buffer.from('From: bench@client.test\nTo: sink@upstream.test\nSubject: sendmail bench\n\nhello\n');

function postfixSendmail(o: Options): number | null {
  if (!postfixConfigDir) return null;
  return medianRun('/usr/sbin/sendmail', ['-C', postfixConfigDir, '-i', 'sink@upstream.test'], o.sendmailRuns, SMALL_EML);
}

interface RestFake {
  url: string;
  received: Array<{ body: Buffer }>;
  accepted: unknown[];
  close(): Promise<void>;
}

/**
 * Workload 3: the same load relayed through the SendGrid upstream to the strict loopback fake of
 * its API (keep-alive HTTP, max_concurrency 20). Both are loaded at run time, so the workload
 * runs as soon as the build has a "sendgrid" upstream type and test/fakes/sendgrid.ts.
 */
async function restRelay(base: string, o: Options): Promise<{ line: string; rate: number | null; p50: number | null; p99: number | null }> {
  const mod = (await import(join(REPO, 'dist/src/config/upstream.js'))) as { UPSTREAM_TYPES?: readonly string[] };
  const types = [...(mod.UPSTREAM_TYPES ?? [])];
  const fakeFile = join(REPO, 'dist/test/fakes/sendgrid.js');
  if (!types.includes('sendgrid') || !existsSync(fakeFile)) {
    return { line: `REST relay: not available in this build (upstream types: ${types.join(', ')})`, rate: null, p50: null, p99: null };
  }
  const { startSendgridFake } = (await import(fakeFile)) as { startSendgridFake: (key: string) => Promise<RestFake> };
  const fake = await startSendgridFake('SG.bench');
  const port = await freePort();
  const daemon = await startMailshim({
    dir: join(base, 'mailshim-rest'),
    port,
    upstreamPort: 0,
    concurrency: 20,
    upstreamToml: `[[upstream]]\nname = "sendgrid"\ntype = "sendgrid"\napi_key = "SG.bench"\nendpoint = "${fake.url}"\nmax_concurrency = 20\ntimeout = "30s"`,
  });
  // The fake keeps every request; stamp each new one as it shows up (10 ms resolution).
  const arrived = new Map<string, number>();
  let seen = 0;
  const token = /<(rest\.\d+)@bench\.test>/;
  const poll = setInterval(() => {
    for (; seen < fake.received.length; seen++) {
      const m = token.exec(fake.received[seen]!.body.toString('latin1'));
      if (m && !arrived.has(m[1]!)) arrived.set(m[1]!, performance.now());
    }
  }, 10);
  try {
    const started = performance.now();
    const load = await runLoad({ port, sessions: o.sessions, messages: o.small, size: SMALL, tag: 'rest', timeoutMs: PHASE_MS });
    const deadline = Date.now() + PHASE_MS;
    while (fake.accepted.length < load.accepted && Date.now() < deadline) await sleep(20);
    const elapsed = (performance.now() - started) / 1000;
    const got = fake.accepted.length;
    const latencies = [...load.acceptedAt].flatMap(([t, at]) => (arrived.has(t) ? [arrived.get(t)! - at] : [])).sort((a, b) => a - b);
    const rate = got === 0 ? null : got / elapsed;
    return {
      line: `REST relay (SendGrid fake): ${load.accepted} accepted, ${got} accepted by the fake after ${elapsed.toFixed(1)} s = ${rate?.toFixed(0) ?? 0} msg/s end to end`,
      rate,
      p50: percentile(latencies, 50),
      p99: percentile(latencies, 99),
    };
  } finally {
    clearInterval(poll);
    await daemon.stop();
    await fake.close();
  }
}

async function main(): Promise<number> {
  const o = parseArgs(process.argv.slice(2), DEFAULTS, { quick: { small: 500, large: 50, sendmailRuns: 20 } });
  const startedAt = new Date();
  const load0 = loadavg();
  const base = mkdtempSync(join(tmpdir(), 'mailshim-bench-'));
  chmodSync(base, 0o755); // Postfix's daemons (user postfix) must reach their directories inside
  log(`work directory ${base}; ${cpus().length} CPU(s), load average ${load0.map((l) => l.toFixed(2)).join(' ')}`);
  const ours = empty();
  const theirs = empty();
  const ceiling = empty();

  const haveSendmail = existsSync(join(REPO, 'bin/sendmail'));
  const capture = await startBenchCapture();
  try {
    // Ceiling: the generator straight into the capture upstream.
    const cs = await runLoad({ port: capture.port, sessions: o.sessions, messages: o.small, size: SMALL, tag: 'ceil-s', timeoutMs: PHASE_MS });
    const cl = await runLoad({ port: capture.port, sessions: o.sessions, messages: o.large, size: LARGE, tag: 'ceil-l', timeoutMs: PHASE_MS });
    ceiling.intakeSmall = ceiling.relaySmall = rate(cs);
    ceiling.intakeLarge = ceiling.relayLarge = rate(cl);
    log(`ceiling: 2KB ${rate(cs).toFixed(0)} msg/s, 1MB ${rate(cl).toFixed(1)} msg/s`);
    ceiling.sendmailMs = medianRun(process.execPath, ['-e', '0'], o.sendmailRuns);
    log(`node -e 0: median ${ceiling.sendmailMs?.toFixed(1)} ms over ${o.sendmailRuns} runs`);

    const ms = mailshimTarget(base);
    await intake(ms, o, ours);
    await relay(ms, capture, o, ours);
    if (haveSendmail) {
      // bin/sendmail submits through the daemon's socket or the spool; measure it against a running daemon.
      await ms.start(capture.port);
      const env = { ...process.env, MAILSHIM_CONFIG: join(base, 'mailshim-3', 'mailshim.toml') };
      ours.sendmailMs = medianRun(join(REPO, 'bin/sendmail'), ['-i', 'sink@upstream.test'], o.sendmailRuns, SMALL_EML, env);
      await ms.stop();
    } else {
      ours.notes.push('sendmail: not available in this build (bin/sendmail is absent)');
      log('sendmail: not available in this build (bin/sendmail is absent) — skipped');
    }

    if (PostfixInstance.ensureInstalled(log)) {
      const pf = postfixTarget(base);
      await intake(pf, o, theirs);
      // The sendmail figure needs a running instance: measured inside relay() while it runs.
      const wrapped: Target = {
        ...pf,
        async start(upstreamPort) {
          const port = await pf.start(upstreamPort);
          postfixConfigDir = join(base, 'postfix-2', 'etc');
          return port;
        },
      };
      await relay(wrapped, capture, o, theirs);
    } else theirs.notes.push('Postfix could not be installed: no Postfix figures');
  } finally {
    await capture.close();
  }

  const rest = await restRelay(base, o);
  const restLine = rest.line;
  log(restLine);

  const rows: Row[] = [
    {
      key: 'intake_2kb',
      label: 'Intake, 2 KB messages',
      unit: 'msg/s',
      better: 'higher',
      mailshim: ours.intakeSmall,
      postfix: theirs.intakeSmall,
      ceiling: ceiling.intakeSmall,
      target: { ratio: 2, text: '≥ 2× Postfix' },
    },
    {
      key: 'intake_1mb',
      label: 'Intake, 1 MB messages',
      unit: 'msg/s',
      better: 'higher',
      mailshim: ours.intakeLarge,
      postfix: theirs.intakeLarge,
      ceiling: ceiling.intakeLarge,
      target: { ratio: 2, text: '≥ 2× Postfix' },
    },
    {
      key: 'relay_2kb',
      label: 'Relay end to end, 2 KB',
      unit: 'msg/s',
      better: 'higher',
      mailshim: ours.relaySmall,
      postfix: theirs.relaySmall,
      ceiling: ceiling.relaySmall,
      target: { ratio: 1.5, text: '≥ 1.5× Postfix' },
    },
    {
      key: 'relay_1mb',
      label: 'Relay end to end, 1 MB',
      unit: 'msg/s',
      better: 'higher',
      mailshim: ours.relayLarge,
      postfix: theirs.relayLarge,
      ceiling: ceiling.relayLarge,
      target: { ratio: 1.5, text: '≥ 1.5× Postfix' },
    },
    { key: 'relay_p50_ms', label: 'Relay latency p50 (250 → upstream)', unit: 'ms', better: 'lower', mailshim: ours.p50, postfix: theirs.p50, ceiling: null },
    { key: 'relay_p99_ms', label: 'Relay latency p99 (250 → upstream)', unit: 'ms', better: 'lower', mailshim: ours.p99, postfix: theirs.p99, ceiling: null },
    { key: 'rest_relay_2kb', label: 'REST relay (SendGrid fake), 2 KB', unit: 'msg/s', better: 'higher', mailshim: rest.rate, postfix: null, ceiling: null, note: 'Postfix has no REST upstream' },
    { key: 'rest_p50_ms', label: 'REST relay latency p50 (250 → API)', unit: 'ms', better: 'lower', mailshim: rest.p50, postfix: null, ceiling: null },
    { key: 'rest_p99_ms', label: 'REST relay latency p99 (250 → API)', unit: 'ms', better: 'lower', mailshim: rest.p99, postfix: null, ceiling: null },
    {
      key: 'sendmail_ms',
      label: 'sendmail, one small message (median)',
      unit: 'ms',
      better: 'lower',
      mailshim: ours.sendmailMs,
      postfix: theirs.sendmailMs,
      ceiling: ceiling.sendmailMs,
      target: { ratio: 1.5, text: '≤ 1.5× node -e 0' },
    },
    { key: 'idle_rss_mb', label: 'Memory, idle RSS', unit: 'MB', better: 'lower', mailshim: ours.idleRssMb, postfix: theirs.idleRssMb, ceiling: null, target: { ratio: 60, text: '≤ 60 MB' } },
    { key: 'peak_rss_mb', label: 'Memory, peak RSS during intake/relay', unit: 'MB', better: 'lower', mailshim: ours.peakRssMb, postfix: theirs.peakRssMb, ceiling: null },
  ];
  const load1 = loadavg();
  const finishedAt = new Date();
  const conditions = `${cpus().length} CPU(s) (${cpus()[0]?.model ?? '?'}), load average ${load0[0]!.toFixed(2)} at start, ${load1[0]!.toFixed(2)} at end; ${o.sessions} sessions, ${o.small} × 2 KB and ${o.large} × 1 MB`;
  const text = table(rows);
  process.stdout.write(`\n${text}\n\n`);
  const notes = [
    ...ours.notes.map((n) => `mailshim: ${n}`),
    ...theirs.notes.map((n) => `Postfix: ${n}`),
    restLine,
    'ceiling = load generator straight into the capture upstream (no MTA); for sendmail, the ceiling column is `node -e 0`.',
    "Postfix memory = summed RSS of master and all its children, sampled every 100 ms (shared pages counted once per process, so it overstates). mailshim peak = the daemon's VmHWM.",
    `conditions: ${conditions}`,
  ];
  for (const n of notes) process.stdout.write(`${n}\n`);
  const results = join(REPO, 'bench/results');
  mkdirSync(results, { recursive: true });
  writeFileSync(
    join(results, 'latest.json'),
    JSON.stringify(
      { startedAt: startedAt.toISOString(), finishedAt: finishedAt.toISOString(), node: process.version, cpus: cpus().length, loadavgStart: load0, loadavgEnd: load1, options: o, rows, notes },
      null,
      2,
    ) + '\n',
  );
  writeFileSync(join(results, 'latest.svg'), svg(rows, `${startedAt.toISOString().slice(0, 16)}Z — ${conditions}`));
  log(`wrote bench/results/latest.json and latest.svg (${((finishedAt.getTime() - startedAt.getTime()) / 1000).toFixed(0)} s)`);
  rmSync(base, { recursive: true, force: true });
  return 0;
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(`bench failed: ${(error as Error).stack ?? String(error)}\n`);
    process.exit(1);
  },
);
