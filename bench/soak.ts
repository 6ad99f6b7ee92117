/**
 * `npm run soak`: a bounded fault soak that proves nothing accepted is lost.
 *
 * Phase 1 — crashes and a bad upstream: N messages (default 20,000) from parallel clients while the
 * daemon is kill -9'd and restarted 10 times at random moments, and the upstream answers 4xx (30%)
 * and 5xx (2%, bounces expected) at random, drops connections (3%), and goes down for 20 s.
 * Phase 2 — full disk: the spool on a small tmpfs with the upstream down until clients get 452;
 * then the upstream comes back, space returns, and new mail is accepted again.
 *
 * Tally per phase: accepted (250s received by clients), delivered, bounced (DSNs received for the
 * sender), lost (accepted but neither delivered nor bounced — must be 0), duplicates. Exits 1 on
 * any loss or if a phase cannot finish within its time limit.
 *
 *   npm run soak [-- --messages N --kills N --sessions N --skip-tmpfs]
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { startBenchCapture, type BenchCapture } from './lib/capture.js';
import { runLoad } from './lib/loadgen.js';
import { freePort, REPO, sleep, startMailshim, type MailshimOptions, type RunningMailshim } from './lib/procs.js';

interface Options {
  messages: number;
  kills: number;
  sessions: number;
  tmpfs: boolean;
  crash: boolean;
}

function parseArgs(argv: string[]): Options {
  const o: Options = { messages: 20_000, kills: 10, sessions: 20, tmpfs: true, crash: true };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--messages') o.messages = Number(argv[++i]);
    else if (a === '--kills') o.kills = Number(argv[++i]);
    else if (a === '--sessions') o.sessions = Number(argv[++i]);
    else if (a === '--skip-tmpfs') o.tmpfs = false;
    else if (a === '--skip-crash') o.crash = false;
    else throw new Error(`unknown option ${a}`);
  }
  return o;
}

const log = (line: string) => process.stderr.write(`[soak ${new Date().toISOString().slice(11, 19)}] ${line}\n`);
const SENDER = 'soak@client.test';
/** The whole soak stays under 10 minutes. */
const PHASE1_MS = Number(process.env.SOAK_PHASE1_MS ?? 6 * 60_000);
const PHASE2_MS = 150_000;

export interface Tally {
  submitted: number;
  accepted: number;
  delivered: number;
  bounced: number;
  lost: number;
  duplicates: number;
  /** Accepted messages both delivered and bounced (one copy of a duplicate met a 5xx). */
  deliveredAndBounced: number;
  duplicateBound: number;
  refusals: Record<string, number>;
  lostTokens: string[];
}

/** accepted tokens vs what reached the capture upstream. */
function tally(submitted: number, accepted: Map<string, string>, capture: BenchCapture, duplicateBound: number, refusals: Record<string, number>): Tally {
  let delivered = 0;
  let bounced = 0;
  let both = 0;
  const lostTokens: string[] = [];
  for (const token of accepted.keys()) {
    const d = capture.delivered.has(token);
    const b = capture.bounced.has(token);
    if (d) delivered++;
    if (b) bounced++;
    if (d && b) both++;
    if (!d && !b) lostTokens.push(token);
  }
  let duplicates = 0;
  for (const times of capture.delivered.values()) duplicates += times.length - 1;
  for (const count of capture.bounced.values()) duplicates += count - 1;
  return { submitted, accepted: accepted.size, delivered, bounced, lost: lostTokens.length, duplicates, deliveredAndBounced: both, duplicateBound, refusals, lostTokens: lostTokens.slice(0, 20) };
}

/** Waits until every accepted token was delivered or bounced, or the deadline passes. */
async function drain(accepted: Map<string, string>, capture: BenchCapture, deadline: number): Promise<boolean> {
  for (;;) {
    let open = 0;
    for (const token of accepted.keys()) if (!capture.delivered.has(token) && !capture.bounced.has(token)) open++;
    if (open === 0) return true;
    if (Date.now() > deadline) return false;
    await sleep(500);
  }
}

async function crashSoak(o: Options, base: string): Promise<{ tally: Tally; kills: number; finished: boolean }> {
  const capture = await startBenchCapture();
  capture.faults = { tempfail: 0.3, permfail: 0.02, drop: 0.03 };
  const port = await freePort();
  const daemonOptions: MailshimOptions = { dir: join(base, 'crash'), port, upstreamPort: capture.port, concurrency: 20, retry: { initial: '1s', max: '5s', age: '1d' } };
  let daemon: RunningMailshim = await startMailshim(daemonOptions);
  const deadline = Date.now() + PHASE1_MS;
  const accepted = new Map<string, string>();
  let inData = 0;
  let kills = 0;
  let duplicateBound = 0;
  let submitting = true;

  // The weather: kills at random moments while clients submit, and one 20 s upstream outage.
  const chaos = (async () => {
    const outageAt = Date.now() + 5_000 + Math.random() * 15_000;
    let outageDone = false;
    while (kills < o.kills && Date.now() < deadline) {
      // 1–4 s apart: most kills land while clients are still submitting, the rest during the drain.
      await sleep(1_000 + Math.random() * 3_000);
      if (!outageDone && Date.now() >= outageAt) {
        outageDone = true;
        log('upstream down for 20 s');
        await capture.setDown(true);
        setTimeout(() => void capture.setDown(false).then(() => log('upstream up again')), 20_000);
      }
      // Worst case for duplicates at this kill: every session waiting for its DATA reply, plus every delivery in flight.
      const waiting = inData;
      duplicateBound += waiting + daemonOptions.concurrency;
      await daemon.kill9();
      kills++;
      log(`kill -9 #${kills} (${accepted.size} accepted so far, ${waiting} sessions waiting for their DATA reply); restarting`);
      daemon = await startMailshim(daemonOptions);
    }
    if (!outageDone) {
      log('upstream down for 20 s');
      await capture.setDown(true);
      await sleep(20_000);
      await capture.setDown(false);
      log('upstream up again');
    }
  })();

  const load = runLoad({
    port,
    sessions: o.sessions,
    messages: o.messages,
    size: 1024,
    tag: 'soak',
    sender: SENDER,
    retry: true,
    timeoutMs: PHASE1_MS - 60_000,
    onAccepted: (token, reply) => accepted.set(token, /queued as (\S+)/.exec(reply)?.[1] ?? '?'),
    onData: (delta) => (inData += delta),
  }).then((r) => {
    submitting = false;
    return r;
  });
  const result = await load;
  log(`clients done: ${result.accepted}/${o.messages} accepted in ${(result.elapsedMs / 1000).toFixed(0)} s; waiting for the remaining kills and the drain`);
  await chaos;
  void submitting;
  const finished = await drain(accepted, capture, deadline);
  await daemon.stop();
  await capture.close();
  return { tally: tally(o.messages, accepted, capture, duplicateBound, result.failures), kills, finished };
}

/**
 * Full disk: a 16 MB tmpfs holds the spool; with the upstream down, 64 KB messages fill it until
 * clients get 452. Then the upstream comes back, delivery frees space, and a second wave must be
 * accepted. Falls back to the spool's max_size cap when tmpfs cannot be mounted.
 */
async function fullDiskSoak(base: string): Promise<{ tally: Tally; mode: string; got452: number; resumed: boolean; finished: boolean }> {
  const mountPoint = join(base, 'tmpfs');
  mkdirSync(mountPoint, { recursive: true });
  let mode = 'tmpfs (16 MB)';
  let mounted = false;
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=16m,mode=0700', 'tmpfs', mountPoint], { stdio: 'ignore' });
    mounted = true;
  } catch {
    mode = 'emulated: mount -t tmpfs is not permitted here, so the spool max_size cap (12MB) produced the 452s';
  }
  log(`full-disk phase: ${mode}`);
  const capture = await startBenchCapture();
  const deadPort = await freePort();
  const port = await freePort();
  const options: MailshimOptions = {
    dir: join(base, 'full'),
    spoolPath: join(mountPoint, 'spool'),
    port,
    upstreamPort: deadPort,
    concurrency: 10,
    retry: { initial: '1s', max: '2s', age: '1d' },
    maxSize: mounted ? undefined : '12MB',
    // The daemon keeps 1.5 × max_message_size free (1.5 MB here) so the queue can still drain.
    maxMessageSize: '1MB',
  };
  let daemon = await startMailshim(options);
  const accepted = new Map<string, string>();
  const onAccepted = (token: string, reply: string) => accepted.set(token, /queued as (\S+)/.exec(reply)?.[1] ?? '?');
  const deadline = Date.now() + PHASE2_MS;
  try {
    // Wave 1: more than fits; no client retries, so refusals are counted.
    const wave1 = await runLoad({ port, sessions: 4, messages: 600, size: 64 * 1024, tag: 'full1', sender: SENDER, onAccepted, timeoutMs: 60_000 });
    const got452 = Object.entries(wave1.failures)
      .filter(([k]) => k.startsWith('452'))
      .reduce((s, [, n]) => s + n, 0);
    log(`wave 1: ${wave1.accepted} accepted, refusals ${JSON.stringify(wave1.failures)}`);
    // Space returns: the upstream comes back on the port the daemon is configured for.
    await daemon.stop();
    options.upstreamPort = capture.port;
    daemon = await startMailshim(options);
    const firstDrained = await drain(accepted, capture, deadline);
    const wave2 = await runLoad({ port, sessions: 4, messages: 50, size: 64 * 1024, tag: 'full2', sender: SENDER, onAccepted, timeoutMs: 60_000 });
    log(`wave 2 after space returned: ${wave2.accepted}/50 accepted ${JSON.stringify(wave2.failures)}`);
    const finished = (await drain(accepted, capture, deadline)) && firstDrained;
    const failures = { ...wave1.failures };
    for (const [k, v] of Object.entries(wave2.failures)) failures[`wave2 ${k}`] = v;
    return { tally: tally(650, accepted, capture, 0, failures), mode, got452, resumed: wave2.accepted === 50, finished };
  } finally {
    await daemon.stop();
    await capture.close();
    if (mounted) execFileSync('umount', [mountPoint], { stdio: 'ignore' });
  }
}

function show(name: string, t: Tally): void {
  process.stdout.write(
    `${name}: submitted ${t.submitted}, accepted ${t.accepted}, delivered ${t.delivered}, bounced ${t.bounced}, lost ${t.lost}, duplicates ${t.duplicates}` +
      (t.duplicateBound ? ` (bound ${t.duplicateBound})` : '') +
      (t.deliveredAndBounced ? `; ${t.deliveredAndBounced} both delivered and bounced (two copies, one met a 5xx)` : '') +
      `\n  client refusals/retries: ${JSON.stringify(t.refusals)}\n` +
      (t.lost ? `  LOST: ${t.lostTokens.join(' ')}\n` : ''),
  );
}

async function main(): Promise<number> {
  const o = parseArgs(process.argv.slice(2));
  const started = Date.now();
  const base = mkdtempSync(join(tmpdir(), 'mailshim-soak-'));
  log(
    `${o.messages} messages, ${o.kills} kills, ${o.sessions} sessions; ${cpus().length} CPU(s), load average ${loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')}`,
  );
  let failed = false;
  const crash = o.crash ? await crashSoak(o, base) : undefined;
  if (crash) {
    show('crash soak', crash.tally);
    process.stdout.write(
      `  ${crash.kills} kill -9s. Duplicates come from (a) deliveries the upstream accepted just before a kill, before the outcome was recorded, and (b) messages fsynced just before a kill whose 250 never reached the client, which then resent them; so at most the messages in flight at each kill (bound above: sessions in DATA + upstream concurrency, summed over kills).\n`,
    );
    if (crash.tally.lost > 0 || !crash.finished || crash.tally.accepted < o.messages) failed = true;
  }
  let full: Awaited<ReturnType<typeof fullDiskSoak>> | undefined;
  if (o.tmpfs) {
    full = await fullDiskSoak(base);
    show(`full-disk soak [${full.mode}]`, full.tally);
    process.stdout.write(`  452 replies: ${full.got452}; service resumed after space returned: ${full.resumed ? 'yes' : 'NO'}\n`);
    if (full.tally.lost > 0 || full.got452 === 0 || !full.resumed || !full.finished) failed = true;
  }
  const elapsed = (Date.now() - started) / 1000;
  process.stdout.write(
    `soak ${failed ? 'FAILED' : 'passed'} in ${elapsed.toFixed(0)} s; load average at end ${loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')}\n`,
  );
  const results = join(REPO, 'bench/results');
  mkdirSync(results, { recursive: true });
  writeFileSync(join(results, 'soak-latest.json'), JSON.stringify({ finishedAt: new Date().toISOString(), elapsedSeconds: elapsed, options: o, crash, full, failed }, null, 2) + '\n');
  if (failed) process.stdout.write(`kept ${base} (daemon logs, spools) for inspection\n`);
  else rmSync(base, { recursive: true, force: true });
  return failed ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(`soak failed: ${(error as Error).stack ?? String(error)}\n`);
    process.exit(1);
  },
);
