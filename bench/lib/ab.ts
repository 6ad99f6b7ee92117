/**
 * Interleaved A/B rounds of two builds, shared by bench/ab-*.ts: this checkout ("this") and
 * another built checkout ("base"), run A, B, B, A, … so that both meet the same machine load,
 * each round in a fresh directory; then per build the median (min–max) of each measure and the
 * per-round ratio of msg/s.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from './args.js';
import { postfixToolsAvailable } from './postfix-tools.js';
import { REPO } from './procs.js';
import { median, spread } from './report.js';

/** The options both A/B benches take: `--base DIR --rounds N --messages N --sessions N --size BYTES --warmup N --profile DIR`. */
export type AbOptions = {
  base: string | undefined;
  rounds: number;
  messages: number;
  sessions: number;
  size: number;
  /** Unmeasured messages before each measured run (a fresh daemon's first thousands pay for V8 compiling its hot code). */
  warmup: number;
  profile: string | undefined;
};

export const parseAbArgs = (argv: string[], defaults: Omit<AbOptions, 'base' | 'profile'>): AbOptions => parseArgs<AbOptions>(argv, { ...defaults, base: undefined, profile: undefined });

export interface AbRound {
  build: string;
  msgPerSec: number;
}

export const fmt = (v: number | null | undefined, d = 1) => (v === null || v === undefined ? '-' : v.toFixed(d));

/**
 * Runs `rounds` interleaved rounds (`run(build, repo, dir, n)`), printing `describe(round)` after
 * each, then `summary(build, its rounds)` per build and, with a base, the per-round msg/s ratios.
 */
export async function interleaved<R extends AbRound>(o: {
  name: string;
  base: string | undefined;
  rounds: number;
  run: (build: string, repo: string, dir: string, n: number) => Promise<R>;
  describe: (round: R) => string;
  summary: (mine: R[]) => string;
}): Promise<R[]> {
  if (!postfixToolsAvailable()) throw new Error('smtp-source/smtp-sink not found (set MAILSHIM_POSTFIX_TOOLS)');
  const builds: Array<[string, string]> = o.base
    ? [
        ['base', o.base],
        ['this', REPO],
      ]
    : [['this', REPO]];
  const work = mkdtempSync(join(tmpdir(), `${o.name}-`));
  const rounds: R[] = [];
  try {
    for (let n = 1; n <= o.rounds; n++) {
      for (const [build, repo] of n % 2 === 1 ? builds : [...builds].reverse()) {
        const r = await o.run(build, repo, join(work, `${build}-${n}`), n);
        rounds.push(r);
        process.stdout.write(`round ${n} ${build}: ${o.describe(r)}\n`);
      }
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
  for (const [build] of builds) process.stdout.write(`${build}: ${o.summary(rounds.filter((r) => r.build === build))}\n`);
  if (o.base) {
    const ratios = [...Array(o.rounds).keys()].map((i) => {
      const [a, b] = ['base', 'this'].map((build) => rounds.filter((r) => r.build === build)[i]!.msgPerSec);
      return b! / a!;
    });
    process.stdout.write(`this / base msg/s per round: ${ratios.map((r) => r.toFixed(2)).join(', ')}; median ${fmt(median(ratios), 2)}\n`);
  }
  return rounds;
}

/** A round that measured CPU per message, all threads and the main thread's alone (bench/ab-relay.ts, bench/ab-delivery.ts). */
export interface CpuRound extends AbRound {
  cpuMsPerMsg: number;
  /** The main thread's id is the pid: the event loop, without libuv's pool and V8's GC threads. */
  mainMsPerMsg: number;
}

export const describeCpu = (r: CpuRound) => `${fmt(r.msgPerSec)} msg/s, ${fmt(r.cpuMsPerMsg, 2)} ms CPU/msg (main thread ${fmt(r.mainMsPerMsg, 2)})`;

export const summarizeCpu = (mine: CpuRound[]) =>
  `msg/s ${spread(mine.map((r) => r.msgPerSec))}, CPU ms/msg ${spread(
    mine.map((r) => r.cpuMsPerMsg),
    2,
  )}, main thread ${spread(
    mine.map((r) => r.mainMsPerMsg),
    2,
  )}`;

/** With a base build: the per-round ratios (this / base) of the CPU figures. */
export function printCpuRatios(rounds: CpuRound[]): void {
  for (const [name, f] of [
    ['CPU', (r: CpuRound) => r.cpuMsPerMsg],
    ['main-thread CPU', (r: CpuRound) => r.mainMsPerMsg],
  ] as const) {
    const [a, b] = ['base', 'this'].map((build) => rounds.filter((r) => r.build === build).map(f));
    if (!a!.length) return;
    const ratios = a!.map((x, i) => b![i]! / x);
    process.stdout.write(`this / base ${name} per message per round: ${ratios.map((r) => r.toFixed(2)).join(', ')}; median ${fmt(median(ratios), 2)}\n`);
  }
}
