/**
 * Interleaved A/B rounds of two builds (bench/ab-relay.ts, bench/ab-delivery.ts): A, B, B, A, …
 * so that both meet the same machine load, then the median and range of each figure per build
 * and the median of the per-round ratios (this / base).
 */
import { median } from './report.js';
import { REPO } from './procs.js';

/** `--name value` from argv, or `fallback`. */
export function option(argv: string[], name: string, fallback: string): string {
  const at = argv.indexOf(name);
  return at === -1 ? fallback : argv[at + 1]!;
}

/** "base" (the other checkout, when given) and "this" (this checkout), with their roots. */
export function builds(base: string): Array<[string, string]> {
  return base
    ? [
        ['base', base],
        ['this', REPO],
      ]
    : [['this', REPO]];
}

export type Figures = Record<string, number>;

/**
 * Runs `round(build, root, n)` for every round and build, interleaved, printing each; then prints
 * each figure's median (min–max) per build and, with two builds, the per-round ratios.
 */
export async function interleaved(all: Array<[string, string]>, rounds: number, round: (build: string, root: string, n: number) => Promise<Figures>): Promise<void> {
  const results: Array<{ build: string; figures: Figures }> = [];
  const fmt = (v: number) => v.toFixed(2);
  for (let n = 1; n <= rounds; n++) {
    for (const [build, root] of n % 2 === 1 ? all : [...all].reverse()) {
      const figures = await round(build, root, n);
      results.push({ build, figures });
      process.stdout.write(
        `round ${n} ${build}: ${Object.entries(figures)
          .map(([k, v]) => `${k} ${fmt(v)}`)
          .join(', ')}\n`,
      );
    }
  }
  const names = Object.keys(results[0]?.figures ?? {});
  const of = (build: string, name: string) => results.filter((r) => r.build === build).map((r) => r.figures[name]!);
  for (const [build] of all) {
    const cols = names.map((name) => {
      const v = of(build, name);
      return `${name} ${fmt(median(v)!)} (${fmt(Math.min(...v))}–${fmt(Math.max(...v))})`;
    });
    process.stdout.write(`${build}: ${cols.join(', ')}\n`);
  }
  if (all.length === 2) {
    for (const name of names) {
      const [a, b] = [of('base', name), of('this', name)];
      const ratios = a.map((x, i) => b[i]! / x);
      process.stdout.write(`this / base ${name} per round: ${ratios.map(fmt).join(', ')}; median ${fmt(median(ratios)!)}\n`);
    }
  }
}
