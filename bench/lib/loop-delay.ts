/**
 * Preloaded into a daemon under test (`node --import …/loop-delay.js`): measures the event loop's
 * delay (perf_hooks.monitorEventLoopDelay, 1 ms resolution) from start to exit and writes p50/p99/max
 * in ms as JSON to $MAILSHIM_LOOP_DELAY_FILE. Not part of the daemon; bench/ab-oneconn.ts uses it.
 */
import { writeFileSync } from 'node:fs';
import { monitorEventLoopDelay } from 'node:perf_hooks';

const file = process.env.MAILSHIM_LOOP_DELAY_FILE;
if (file) {
  const histogram = monitorEventLoopDelay({ resolution: 1 });
  histogram.enable();
  const ms = (ns: number) => Math.round(ns / 1e4) / 100;
  // SIGUSR2 resets the histogram, so a run can measure only its loaded phase.
  process.on('SIGUSR2', () => histogram.reset());
  process.on('exit', () => {
    writeFileSync(file, JSON.stringify({ p50: ms(histogram.percentile(50)), p99: ms(histogram.percentile(99)), max: ms(histogram.max), mean: ms(histogram.mean) }));
  });
}
