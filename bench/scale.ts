/**
 * `npm run bench:scale [-- N]`: how mailshim behaves with a deep queue (issue 18). With the
 * upstream down it fills the queue with N × 2 KB messages over SMTP, then measures the reads an
 * operator and a monitoring system make at that depth (/metrics scrape, `mailshim status`,
 * `mailq`, `queue list --json`: time to the first line, total time, the client's peak RSS), the
 * intake rate at depth against the empty-queue rate, then brings the upstream back and measures the
 * drain, the daemon's RSS (anonymous vs file-backed) and the spool file vs its live data.
 *
 * Every figure is printed with the load average at the moment it was taken: the numbers mean little
 * on a busy machine without it. N defaults to 20,000 (a few minutes on 2 cores); document with
 * 100,000 and 1,000,000.
 *
 *   npm run bench:scale [-- N] [--sessions S] [--concurrency C]
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { cpus, loadavg, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { Spool } from '../src/spool/spool.js';
import { startBenchCapture } from './lib/capture.js';
import { runLoad } from './lib/loadgen.js';
import { freePort, MAILSHIM, rssSplitOf, startMailshim } from './lib/procs.js';
import { markdownTable } from './lib/report.js';

interface Options {
  messages: number;
  sessions: number;
  concurrency: number;
}

function parseArgs(argv: string[]): Options {
  const o: Options = { messages: 20_000, sessions: 20, concurrency: 20 };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const value = () => Number(argv[++i]);
    if (a === '--sessions') o.sessions = value();
    else if (a === '--concurrency') o.concurrency = value();
    else if (/^\d[\d_,]*$/.test(a)) o.messages = Number(a.replace(/[_,]/g, ''));
    else throw new Error(`unknown option ${a} (usage: bench:scale [-- N] [--sessions S] [--concurrency C])`);
  }
  return o;
}

const SIZE = 2 * 1024;
/** Messages used to measure an intake rate (at empty, then at depth). */
const PROBE = 2000;

const log = (line: string) => process.stderr.write(`[scale] ${line}\n`);
const load = () => loadavg()[0]!.toFixed(1);
const mb = (kb: number) => `${Math.round(kb / 1024)} MB`;
const ms = (n: number) => (n >= 1000 ? `${(n / 1000).toFixed(2)} s` : `${Math.round(n)} ms`);

interface Row {
  operation: string;
  result: string;
  load: string;
}

interface ClientRun {
  firstLineMs: number | null;
  totalMs: number;
  peakRssKb: number;
  lines: number;
  code: number | null;
}

/** Runs a mailshim command under /usr/bin/time (its peak RSS), noting when the first line arrives. */
function runClient(args: string[], env: NodeJS.ProcessEnv): Promise<ClientRun> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const child = spawn('/usr/bin/time', ['-f', 'maxrss=%M', process.execPath, MAILSHIM, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let firstLineMs: number | null = null;
    let lines = 0;
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => {
      if (firstLineMs === null && chunk.includes(10)) firstLineMs = performance.now() - started;
      for (let i = chunk.indexOf(10); i !== -1; i = chunk.indexOf(10, i + 1)) lines++;
    });
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.once('error', reject);
    child.once('close', (code) => {
      const rss = /maxrss=(\d+)/.exec(stderr);
      if (code !== 0 && !(args[0] === 'status' && code === 1)) log(`${args.join(' ')} exited ${code}: ${stderr.trim().slice(0, 300)}`);
      resolve({ firstLineMs, totalMs: performance.now() - started, peakRssKb: rss ? Number(rss[1]) : 0, lines, code });
    });
  });
}

function scrape(port: number): Promise<{ ms: number; bytes: number }> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const req = request({ host: '127.0.0.1', port, path: '/metrics' }, (res) => {
      let bytes = 0;
      res.on('data', (d: Buffer) => (bytes += d.length));
      res.on('end', () => resolve({ ms: performance.now() - started, bytes }));
    });
    req.once('error', reject);
    req.end();
  });
}

async function median<T>(times: number, run: () => Promise<T>, value: (t: T) => number): Promise<number> {
  const values: number[] = [];
  for (let i = 0; i < times; i++) values.push(value(await run()));
  values.sort((a, b) => a - b);
  return values[Math.floor(values.length / 2)]!;
}

/** `okCodes`: exit codes that are answers, not failures (status exits 1 = WARNING while the upstream is down). */
function clientRow(operation: string, run: ClientRun, okCodes = [0]): Row {
  const first = run.firstLineMs === null ? 'no output' : ms(run.firstLineMs);
  return { operation, result: `first line ${first}, total ${ms(run.totalMs)}, client peak RSS ${mb(run.peakRssKb)}${okCodes.includes(run.code ?? -1) ? '' : ` (exit ${run.code})`}`, load: load() };
}

async function main(): Promise<void> {
  const o = parseArgs(process.argv.slice(2));
  const dir = mkdtempSync(join(tmpdir(), 'mailshim-scale-'));
  const rows: Row[] = [];
  const capture = await startBenchCapture();
  await capture.setDown(true);
  const [port, metricsPort] = [await freePort(), await freePort()];
  const configFile = join(dir, 'mailshim.toml');
  const env = { MAILSHIM_CONFIG: configFile };
  // A long first retry: while the upstream is down each message is tried once, then waits, so the
  // reads below measure the queue and not a retry loop. The drain starts with `queue flush`.
  const daemon = await startMailshim({
    dir,
    port,
    upstreamPort: capture.port,
    concurrency: o.concurrency,
    retry: { initial: '6h', max: '6h', age: '5d' },
    // The default max_size (4 GB of live data) holds about 900,000 × 2 KB messages: beyond that
    // intake answers 452 (as designed). Room for N messages at ~8 KB each, body plus records.
    maxSize: `${Math.max(4, Math.ceil((o.messages * 8) / 1024 / 1024))}GB`,
    extraToml: `[metrics]\naddress = "127.0.0.1:${metricsPort}"\n`,
  });
  try {
    log(`machine: ${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}, ${mb(totalmem() / 1024)} RAM, node ${process.version}; load ${load()}`);
    log(`filling ${o.messages} × ${SIZE} bytes with the upstream down (${o.sessions} SMTP sessions)...`);
    const send = (messages: number, tag: string) => runLoad({ port, sessions: o.sessions, messages, size: SIZE, tag, timeoutMs: 3_600_000 });
    const emptyRun = await send(Math.min(PROBE, o.messages), 'empty');
    const emptyRate = emptyRun.accepted / (emptyRun.elapsedMs / 1000);
    rows.push({ operation: `intake, empty queue (${emptyRun.accepted} msgs)`, result: `${Math.round(emptyRate)} msg/s`, load: load() });
    const rest = o.messages - emptyRun.accepted;
    if (rest > 0) {
      const fill = await send(rest, 'fill');
      log(`filled: ${fill.accepted} more at ${Math.round(fill.accepted / (fill.elapsedMs / 1000))} msg/s (${fill.refused} refused)`);
    }
    const depthRun = await send(PROBE, 'depth');
    const depthRate = depthRun.accepted / (depthRun.elapsedMs / 1000);
    const queued = o.messages + depthRun.accepted;
    rows.push({
      operation: `intake at ${queued} queued (${depthRun.accepted} msgs)`,
      result: `${Math.round(depthRate)} msg/s (${Math.round((100 * depthRate) / emptyRate)} % of empty)`,
      load: load(),
    });

    log('measuring reads at depth...');
    const scrapeMs = await median(
      3,
      () => scrape(metricsPort),
      (s) => s.ms,
    );
    rows.push({ operation: 'Prometheus scrape of /metrics (median of 3)', result: ms(scrapeMs), load: load() });
    // Node's own start-up is part of every command's time: this row is the floor.
    rows.push(clientRow('client start-up floor (mailshim --version)', await runClient(['--version'], env)));
    // status exits 1 (WARNING) while the upstream is down; 2 would mean CRITICAL (e.g. the spool full).
    rows.push(clientRow('mailshim status', await runClient(['status'], env), [0, 1]));
    rows.push(clientRow('mailq', await runClient(['mailq'], env)));
    rows.push(clientRow('mailshim queue list --json', await runClient(['queue', 'list', '--json'], env)));
    const atDepth = rssSplitOf(daemon.pid);
    rows.push({ operation: `daemon RSS at ${queued} queued`, result: `${mb(atDepth.anonKb + atDepth.fileKb)} (${mb(atDepth.anonKb)} anonymous + ${mb(atDepth.fileKb)} file-backed)`, load: load() });

    log('upstream back; flushing...');
    await capture.setDown(false);
    const drainStart = performance.now();
    await runClient(['queue', 'flush'], env);
    const drained = await capture.waitFor(queued, 3_600_000);
    const drainMs = performance.now() - drainStart;
    rows.push({
      operation: `drain of ${queued} (concurrency ${o.concurrency})`,
      result: `${Math.round(capture.total / (drainMs / 1000))} msg/s${drained ? '' : ` (only ${capture.total} delivered)`}`,
      load: load(),
    });
    const after = rssSplitOf(daemon.pid);
    rows.push({ operation: 'daemon RSS after the drain', result: `${mb(after.anonKb + after.fileKb)} (${mb(after.anonKb)} anonymous + ${mb(after.fileKb)} file-backed)`, load: load() });
    // Deliveries are recorded a moment after the upstream's 250: wait until the daemon has emptied the queue.
    const spool = Spool.openExisting(join(dir, 'spool'));
    try {
      const deadline = Date.now() + 120_000;
      while (spool.counts().messages > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 500));
      const file = statSync(join(dir, 'spool', 'queue.mdb')).size;
      rows.push({ operation: 'spool file after the drain', result: `${mb(file / 1024)} file, ${mb(spool.liveBytes() / 1024)} live`, load: load() });
    } finally {
      await spool.close();
    }
  } finally {
    await daemon.stop();
    await capture.close();
  }

  const text =
    `mailshim bench:scale, ${o.messages} × 2 KB queued with the upstream down; ${new Date().toISOString()}\n` +
    `machine: ${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}, ${mb(totalmem() / 1024)} RAM, node ${process.version}\n\n` +
    markdownTable(
      ['operation', 'result', 'load (1 min)'],
      rows.map((r) => [r.operation, r.result, r.load]),
    ) +
    '\n';
  process.stdout.write(text);
  writeFileSync(join(process.cwd(), 'bench', 'results', `scale-${o.messages}.txt`), text);
  rmSync(dir, { recursive: true, force: true });
}

main().catch((error) => {
  process.stderr.write(`${(error as Error).stack ?? String(error)}\n`);
  process.exit(1);
});
