/**
 * The delivery side of 1 MB relay alone, two builds in interleaved rounds: a fresh process per
 * round spools `--messages` 1 MB bodies (body files) with that build's spool, then relays them 20
 * at a time with its SMTP upstream to smtp-sink (open the body, send, close, remove: what the
 * scheduler does per message), and reports msg/s and this process's CPU per message over the
 * relaying only, all threads and the main thread's alone. No intake, no scheduler: what is left
 * is the body file, the checksum, nodemailer and the socket.
 *
 *   node dist/bench/ab-delivery.js [--base /path/to/other/checkout] [--rounds 3 --messages 200]
 *
 * MAILSHIM_POSTFIX_TOOLS points at smtp-sink outside /usr/sbin.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { postfixToolsAvailable, startSink } from './lib/postfix-tools.js';
import { cpuMsOf, REPO } from './lib/procs.js';
import { median } from './lib/report.js';

const SESSIONS = 20;

interface Round {
  build: string;
  msgPerSec: number;
  cpuMsPerMsg: number;
  mainMsPerMsg: number;
}

/** A smtp-source-like 7-bit body: headers, then 80-byte lines, 1 MiB in all. */
function body(): Buffer {
  const head = 'From: <bench@client.test>\r\nTo: <sink@upstream.test>\r\nSubject: delivery bench\r\n\r\n';
  return Buffer.from(head + `${'X'.repeat(78)}\r\n`.repeat(Math.ceil((1 << 20) / 80))).subarray(0, 1 << 20);
}

/** One round in this process, with the build at `repo` (run as a child: `--round`). */
async function roundHere(repo: string, messages: number): Promise<void> {
  const { Spool } = (await import(pathToFileURL(join(repo, 'dist/src/spool/spool.js')).href)) as typeof import('../src/spool/spool.js');
  const { SmtpUpstream } = (await import(pathToFileURL(join(repo, 'dist/src/upstreams/smtp.js')).href)) as typeof import('../src/upstreams/smtp.js');
  const sink = await startSink();
  const dir = mkdtempSync(join(tmpdir(), 'ab-delivery-'));
  const spool = Spool.open(join(dir, 'spool'));
  const envelope = { sender: 'bench@client.test', recipients: ['sink@upstream.test'] };
  const upstream = new SmtpUpstream({ name: 'sink', type: 'smtp', host: '127.0.0.1', port: sink.port, tls: 'none', matchFrom: [], maxConcurrency: SESSIONS, timeout: 30_000 }, 'bench.test');
  try {
    const ids: string[] = [];
    for (let i = 0; i < messages + SESSIONS; i++) ids.push(await spool.accept(envelope, body(), { origin: { protocol: 'esmtp' } }));
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
      await Promise.all(Array.from({ length: SESSIONS }, async () => {
        while (next < list.length) await one(list[next++]!);
      }));
    };
    await relay(ids.slice(0, SESSIONS)); // warm-up: modules, the pool's connections
    const cpu0 = cpuMsOf(process.pid);
    const main0 = cpuMsOf(process.pid, process.pid);
    const started = performance.now();
    await relay(ids.slice(SESSIONS));
    const elapsed = performance.now() - started;
    const round = { msgPerSec: (messages / elapsed) * 1000, cpuMsPerMsg: (cpuMsOf(process.pid) - cpu0) / messages, mainMsPerMsg: (cpuMsOf(process.pid, process.pid) - main0) / messages };
    process.stdout.write(JSON.stringify(round) + '\n');
  } finally {
    await upstream.close();
    await spool.close();
    await sink.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  const option = (name: string, fallback: string) => (argv.includes(name) ? argv[argv.indexOf(name) + 1]! : fallback);
  const messages = Number(option('--messages', '200'));
  if (argv.includes('--round')) return roundHere(option('--round', REPO), messages);
  if (!postfixToolsAvailable()) throw new Error('smtp-sink not found (set MAILSHIM_POSTFIX_TOOLS)');
  const base = option('--base', '');
  const rounds = Number(option('--rounds', '3'));
  const builds: Array<[string, string]> = base ? [['base', base], ['this', REPO]] : [['this', REPO]];
  const all: Round[] = [];
  for (let n = 1; n <= rounds; n++) {
    for (const [build, repo] of n % 2 === 1 ? builds : [...builds].reverse()) {
      const out = execFileSync(process.execPath, [process.argv[1]!, '--round', repo, '--messages', String(messages)], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
      const r = { build, ...(JSON.parse(out.trim().split('\n').pop()!) as Omit<Round, 'build'>) };
      all.push(r);
      process.stdout.write(`round ${n} ${build}: ${r.msgPerSec.toFixed(1)} msg/s, ${r.cpuMsPerMsg.toFixed(2)} ms CPU/msg (main thread ${r.mainMsPerMsg.toFixed(2)})\n`);
    }
  }
  for (const [build] of builds) {
    const mine = all.filter((r) => r.build === build);
    const col = (f: (r: Round) => number) => `${median(mine.map(f))!.toFixed(2)} (${mine.map((r) => f(r).toFixed(2)).join(' / ')})`;
    process.stdout.write(`${build}: msg/s ${col((r) => r.msgPerSec)}, CPU ms/msg ${col((r) => r.cpuMsPerMsg)}, main thread ${col((r) => r.mainMsPerMsg)}\n`);
  }
}

await main();
