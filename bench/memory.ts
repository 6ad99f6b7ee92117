/**
 * `npm run bench:memory`: the daemon's memory with 20 concurrent 1 MB sessions (issue 14: peak
 * RSS ≤ 150 MB), for intake alone (upstream down) and for relay (to the capture sink). Samples
 * /proc/PID/status every 50 ms and reports the peak of VmRSS with its split at that moment:
 * anonymous (heap, Buffers: what the daemon holds) and file-backed (the node binary and LMDB's
 * memory-mapped pages, which the kernel may drop under pressure), plus VmHWM.
 *
 *   npm run bench:memory [-- --messages 100 --sessions 20 --size 1048576]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { startBenchCapture } from './lib/capture.js';
import { runLoad } from './lib/loadgen.js';
import { freePort, memoryOf, rssSplitOf, sleep, startMailshim } from './lib/procs.js';

const args = process.argv.slice(2);
const option = (name: string, fallback: number) => {
  const at = args.indexOf(`--${name}`);
  return at === -1 ? fallback : Number(args[at + 1]);
};
const messages = option('messages', 100);
const sessions = option('sessions', 20);
const size = option('size', 1024 * 1024);
const mb = (kb: number) => (kb / 1024).toFixed(0);

interface Peak {
  rssKb: number;
  anonKb: number;
  fileKb: number;
}

async function phase(name: 'intake' | 'relay', base: string): Promise<string> {
  const capture = await startBenchCapture();
  if (name === 'intake') await capture.setDown(true);
  const port = await freePort();
  const daemon = await startMailshim({ dir: join(base, name), port, upstreamPort: capture.port, concurrency: sessions });
  try {
    await sleep(2000);
    const idle = memoryOf(daemon.pid).rssKb;
    const peak: Peak = { rssKb: 0, anonKb: 0, fileKb: 0 };
    const timer = setInterval(() => {
      const { rssKb } = memoryOf(daemon.pid);
      if (rssKb > peak.rssKb) Object.assign(peak, { rssKb }, rssSplitOf(daemon.pid));
    }, 50);
    const load = loadavg()[0]!.toFixed(1);
    const started = performance.now();
    const result = await runLoad({ port, sessions, messages, size, tag: `mem-${name}`, timeoutMs: 300_000 });
    if (name === 'relay') await capture.waitFor(result.accepted, 300_000);
    const seconds = (performance.now() - started) / 1000;
    clearInterval(timer);
    const hwm = memoryOf(daemon.pid).hwmKb;
    return `${name.padEnd(6)} ${result.accepted}/${messages} in ${seconds.toFixed(1)} s | idle ${mb(idle)} MB | peak VmRSS ${mb(peak.rssKb)} MB = ${mb(peak.anonKb)} anon + ${mb(peak.fileKb)} file | VmHWM ${mb(hwm)} MB | load ${load}`;
  } finally {
    await daemon.stop();
    await capture.close();
  }
}

const base = mkdtempSync(join(tmpdir(), 'mailshim-memory-'));
try {
  console.log(`${sessions} sessions, ${messages} x ${(size / 1024).toFixed(0)} KB, ${new Date().toISOString()}`);
  for (const name of ['intake', 'relay'] as const) console.log(await phase(name, base));
} finally {
  rmSync(base, { recursive: true, force: true });
}
