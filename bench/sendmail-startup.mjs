#!/usr/bin/env node
/**
 * Start-up cost of one cron-style submission: median wall time of
 *   bin/sendmail -i addr < small.eml      (daemon running, socket submission, fsynced spool)
 * against `node -e 0`, over N runs each (interleaved, after warm-up). Target: ≤ 1.3×.
 * A third arm runs the same entry from the unbundled modules (dist/src/cli/sendmail.js), to
 * show what the build's one-file bundle (scripts/bundle-sendmail.mjs) saves.
 *
 *   npm run build && node bench/sendmail-startup.mjs [runs=50] [--against DIR]
 *
 * --against DIR adds a fourth arm: DIR/bin/sendmail of another built checkout (say, main's),
 * submitting to the same daemon, so a change is compared in the same interleaved run.
 *
 * Uses a temporary spool and a maildir upstream, so nothing leaves the machine.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const REPO = resolve(fileURLToPath(import.meta.url), '../..');
const positional = process.argv.slice(2).filter((a, i, all) => a !== '--against' && all[i - 1] !== '--against');
const RUNS = Number(positional[0] ?? 50);
const againstAt = process.argv.indexOf('--against');
const AGAINST = againstAt === -1 ? undefined : resolve(process.argv[againstAt + 1]);
const dir = mkdtempSync(join(tmpdir(), 'mailshim-bench-'));
const config = join(dir, 'mailshim.toml');
writeFileSync(
  config,
  `hostname = "bench.test"
[spool]
path = "${dir}/spool"
[submission]
socket = "${dir}/submit.sock"
[log]
level = "warn"
[[listen]]
address = "127.0.0.1:0"
[[upstream]]
type = "maildir"
path = "${dir}/out"
`,
);
const message = join(dir, 'small.eml');
writeFileSync(message, 'From: cron@example.org\nTo: ops@example.com\nSubject: nightly job\n\nAll fine: 3 files rotated.\n');

const daemon = spawn(process.execPath, [join(REPO, 'bin/mailshim'), 'serve', '--config', config], { stdio: ['ignore', 'pipe', 'inherit'] });
await new Promise((resolveReady, reject) => {
  const deadline = setTimeout(() => reject(new Error('daemon did not start')), 15_000);
  const poll = setInterval(() => {
    const probe = spawnSync(process.execPath, ['-e', `require('net').connect(${JSON.stringify(`${dir}/submit.sock`)}).on('connect',()=>process.exit(0)).on('error',()=>process.exit(1))`]);
    if (probe.status === 0) {
      clearInterval(poll);
      clearTimeout(deadline);
      resolveReady();
    }
  }, 200);
});

// What a cron job's environment does not carry and what would weigh on every start of both arms:
// Node 20 reads the NODE_EXTRA_CA_CERTS file at start-up (53 ms of CPU time for a 215 KB bundle,
// which made `node -e 0` look twice as slow on a machine that sets it).
const env = { ...process.env, MAILSHIM_CONFIG: config };
const dropped = ['NODE_EXTRA_CA_CERTS', 'NODE_OPTIONS'].filter((name) => name in env);
for (const name of dropped) delete env[name];
function time(args, input) {
  const started = process.hrtime.bigint();
  const result = spawnSync(process.execPath, args, { env, input, stdio: ['pipe', 'ignore', 'pipe'] });
  const ms = Number(process.hrtime.bigint() - started) / 1e6;
  if (result.status !== 0) throw new Error(`${args.join(' ')} exited ${result.status}: ${result.stderr}`);
  return ms;
}
const median = (values) => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
};

const input = await import('node:fs').then((fs) => fs.readFileSync(message));
const sendmailArgs = [join(REPO, 'bin/sendmail'), '-i', 'ops@example.com'];
const plainEntry = join(REPO, 'dist/src/cli/sendmail.js');
const plainArgs = ['--input-type=module', '-e', `(await import(${JSON.stringify(plainEntry)})).run(process.argv.slice(1), 'sendmail')`, '--', '-i', 'ops@example.com'];
const bundled = existsSync(join(REPO, 'dist/src/cli/sendmail.bundle.cjs'));
const otherArgs = AGAINST && [join(AGAINST, 'bin/sendmail'), '-i', 'ops@example.com'];
for (let i = 0; i < 5; i++) {
  time(['-e', '0']);
  time(sendmailArgs, input);
  time(plainArgs, input);
  if (otherArgs) time(otherArgs, input);
}
const bare = [];
const sendmail = [];
const plain = [];
const other = [];
for (let i = 0; i < RUNS; i++) {
  bare.push(time(['-e', '0']));
  sendmail.push(time(sendmailArgs, input));
  plain.push(time(plainArgs, input));
  if (otherArgs) other.push(time(otherArgs, input));
}
const loadAfter = loadavg();
daemon.kill('SIGTERM');
await new Promise((r) => daemon.once('exit', r));
rmSync(dir, { recursive: true, force: true });

const b = median(bare);
const s = median(sendmail);
const p = median(plain);
console.log(`runs:                         ${RUNS} each, interleaved, node ${process.version}, load average ${loadAfter.map((l) => l.toFixed(2)).join(' ')}`);
if (dropped.length > 0) console.log(`environment:                  ${dropped.join(', ')} removed for the measured runs`);
console.log(`node -e 0 median:             ${b.toFixed(1)} ms`);
console.log(`sendmail -i addr median:      ${s.toFixed(1)} ms (bin/sendmail, ${bundled ? 'bundled entry' : 'NO bundle in this build'}; daemon running, fsynced)`);
console.log(`  same, unbundled modules:    ${p.toFixed(1)} ms`);
console.log(`ratio:                        ${(s / b).toFixed(2)}x (target <= 1.3x); unbundled ${(p / b).toFixed(2)}x`);
if (AGAINST) {
  const o = median(other);
  console.log(`--against ${AGAINST}: ${o.toFixed(1)} ms, ${(o / b).toFixed(2)}x`);
}
