/**
 * The delivery side of 1 MB relay alone, two builds in interleaved rounds: a fresh process per
 * round spools `--messages` 1 MB bodies (body files) with that build's spool, then relays them 20
 * at a time with its SMTP upstream to smtp-sink (open the body, send, close, remove: what the
 * scheduler does per message), and reports msg/s and this process's CPU per message over the
 * relaying only, all threads and the main thread's alone. No intake, no scheduler: what is left
 * is the body file, the checksum, nodemailer and the socket.
 *
 *   node dist/bench/ab-delivery.js [--base /path/to/other/checkout] [--rounds 3 --messages 200 --warmup 20]
 *   (20 at a time; --sessions and --size are not used)
 *
 * MAILSHIM_POSTFIX_TOOLS points at smtp-sink outside /usr/sbin.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import type * as SpoolModule from '../src/spool/spool.js';
import type * as SmtpModule from '../src/upstreams/smtp.js';
import { describeCpu, interleaved, parseAbArgs, printCpuRatios, summarizeCpu, type CpuRound } from './lib/ab.js';
import { startSink } from './lib/postfix-tools.js';
import { cpuMsOf } from './lib/procs.js';

const SESSIONS = 20;

/** A smtp-source-like 7-bit body: headers, then 80-byte lines, 1 MiB in all. */
function body(): Buffer {
  const head = 'From: <bench@client.test>\r\nTo: <sink@upstream.test>\r\nSubject: delivery bench\r\n\r\n';
  return Buffer.from(head + `${'X'.repeat(78)}\r\n`.repeat(Math.ceil((1 << 20) / 80))).subarray(0, 1 << 20);
}

/** One round in this process, with the build at `repo` (run as a child: `--round`). */
async function roundHere(repo: string, messages: number, warmup: number): Promise<void> {
  const { Spool } = (await import(pathToFileURL(join(repo, 'dist/src/spool/spool.js')).href)) as typeof SpoolModule;
  const { SmtpUpstream } = (await import(pathToFileURL(join(repo, 'dist/src/upstreams/smtp.js')).href)) as typeof SmtpModule;
  const sink = await startSink();
  const dir = mkdtempSync(join(tmpdir(), 'ab-delivery-'));
  const spool = Spool.open(join(dir, 'spool'));
  const envelope = { sender: 'bench@client.test', recipients: ['sink@upstream.test'] };
  const upstream = new SmtpUpstream({ name: 'sink', type: 'smtp', host: '127.0.0.1', port: sink.port, tls: 'none', matchFrom: [], maxConcurrency: SESSIONS, timeout: 30_000 }, 'bench.test');
  try {
    const ids: string[] = [];
    for (let i = 0; i < warmup + messages; i++) ids.push(await spool.accept(envelope, body(), { origin: { protocol: 'esmtp' } }));
    const relay = async (list: string[]) => {
      let next = 0;
      const one = async (id: string) => {
        const opened = spool.openBody(spool.get(id)!);
        if ('problem' in opened) throw new Error(opened.problem);
        try {
          const results = await upstream.send({ id, ...envelope, body: opened });
          if (results[0]?.result.kind !== 'accepted') throw new Error(JSON.stringify(results));
        } finally {
          opened.close();
        }
        await spool.remove(id);
      };
      await Promise.all(
        Array.from({ length: SESSIONS }, async () => {
          while (next < list.length) await one(list[next++]!);
        }),
      );
    };
    await relay(ids.slice(0, warmup)); // unmeasured: modules, the pool's connections, V8 compiling the hot code
    const cpu0 = cpuMsOf(process.pid);
    const main0 = cpuMsOf(process.pid, process.pid);
    const started = performance.now();
    await relay(ids.slice(warmup));
    const elapsed = performance.now() - started;
    const round: Omit<CpuRound, 'build'> = {
      msgPerSec: (messages / elapsed) * 1000,
      cpuMsPerMsg: (cpuMsOf(process.pid) - cpu0) / messages,
      mainMsPerMsg: (cpuMsOf(process.pid, process.pid) - main0) / messages,
    };
    process.stdout.write(JSON.stringify(round) + '\n');
  } finally {
    await upstream.close();
    await spool.close();
    await sink.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

const argv = process.argv.slice(2);
const round = argv.indexOf('--round');
if (round !== -1) await roundHere(argv[round + 1]!, Number(argv[argv.indexOf('--messages') + 1]), Number(argv[argv.indexOf('--warmup') + 1]));
else {
  const options = parseAbArgs(argv, { rounds: 3, messages: 200, sessions: SESSIONS, size: 1 << 20, warmup: SESSIONS });
  printCpuRatios(
    await interleaved<CpuRound>({
      name: 'ab-delivery',
      base: options.base,
      rounds: options.rounds,
      // A fresh process per round: each build's modules (and nodemailer's adapter) in their own process.
      run: async (build, repo) => {
        const out = execFileSync(process.execPath, [process.argv[1]!, '--round', repo, '--messages', String(options.messages), '--warmup', String(Math.max(1, options.warmup))], {
          encoding: 'utf8',
          stdio: ['ignore', 'pipe', 'inherit'],
        });
        return { build, ...(JSON.parse(out.trim().split('\n').pop()!) as Omit<CpuRound, 'build'>) };
      },
      describe: describeCpu,
      summary: summarizeCpu,
    }),
  );
}
