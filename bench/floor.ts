/**
 * `npm run bench:floor`: what the two SMTP libraries mailshim is built on cost per message by
 * themselves, on the workloads of `bench:compare`, so that a target can be checked against what no
 * change inside mailshim can go below.
 *
 * - server: smtp-server with mailshim's adapter (src/intake/smtp-server-adapter.ts, no greeting
 *   pause, native DATA scan), reading each message and throwing it away, driven by smtp-source.
 * - client: nodemailer's pooled SMTP transport with mailshim's adapter
 *   (src/upstreams/nodemailer-adapter.ts, native dot-stuffing), sending a raw message of the same
 *   size to smtp-sink, as many in flight as smtp-source has sessions.
 *
 * Each runs in a process of its own that first sends the same number of messages unmeasured (V8
 * compiles the hot code during the first thousands; a daemon runs warm), then reports its CPU time
 * (process.cpuUsage: all its threads, user + system) per message. No spool, no fsync, no logging,
 * no policy: a floor, not a target.
 *
 *   npm run bench:floor [-- --rounds 5 --small 3000 --large 200 --sessions 20]
 */
import { spawn } from 'node:child_process';
import { cpus, loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import { parseArgs } from './lib/args.js';
import { LARGE, postfixToolsAvailable, runSource, SMALL, startSink } from './lib/postfix-tools.js';
import { freePort } from './lib/procs.js';
import { spread } from './lib/report.js';

const TIMEOUT_MS = 180_000;
const log = (line: string) => process.stderr.write(`[floor] ${line}\n`);

interface Measured {
  messages: number;
  seconds: number;
  cpuMs: number;
}

/** Child role: smtp-server receiving `messages` from smtp-source and discarding them. */
async function serverRole(size: number, messages: number, sessions: number, keep: boolean): Promise<Measured> {
  const { SMTPServer } = await import('smtp-server');
  const { adaptSmtpServer } = await import('../src/intake/smtp-server-adapter.js');
  adaptSmtpServer();
  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ['AUTH', 'STARTTLS'],
    disableReverseLookup: true,
    size: 50 * 1024 * 1024,
    logger: false,
    onData(stream, _session, done) {
      stream.on('data', () => {});
      stream.on('end', () => done());
    },
  });
  const port = await freePort();
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  const warm = await runSource({ port, sessions, messages, size, keepConnections: keep, timeoutMs: TIMEOUT_MS });
  if (!warm.ok) throw new Error(`smtp-source (warm-up): ${warm.stderr}`);
  const cpu0 = process.cpuUsage();
  const started = performance.now();
  const source = await runSource({ port, sessions, messages, size, keepConnections: keep, timeoutMs: TIMEOUT_MS });
  const cpu = process.cpuUsage(cpu0);
  if (!source.ok) throw new Error(`smtp-source: ${source.stderr}`);
  server.close();
  return { messages, seconds: (performance.now() - started) / 1000, cpuMs: (cpu.user + cpu.system) / 1000 };
}

/** Child role: nodemailer sending `messages` raw messages of `size` bytes to smtp-sink on `port`. */
async function clientRole(size: number, messages: number, sessions: number, port: number): Promise<Measured> {
  const { default: nodemailer } = await import('nodemailer');
  const { adaptNodemailer } = await import('../src/upstreams/nodemailer-adapter.js');
  adaptNodemailer();
  const transport = nodemailer.createTransport({ host: '127.0.0.1', port, secure: false, ignoreTLS: true, pool: true, maxConnections: sessions, maxMessages: Infinity });
  const head = 'From: <bench@client.test>\r\nTo: <sink@upstream.test>\r\nSubject: floor\r\n\r\n';
  const line = 'x'.repeat(76) + '\r\n';
  const raw = Buffer.from(head + line.repeat(Math.ceil((size - head.length) / line.length)));
  const sendAll = async () => {
    let next = 0;
    const worker = async () => {
      while (next < messages) {
        next++;
        await transport.sendMail({ envelope: { from: 'bench@client.test', to: ['sink@upstream.test'] }, raw });
      }
    };
    await Promise.all(Array.from({ length: sessions }, worker));
  };
  await sendAll(); // warm-up
  const cpu0 = process.cpuUsage();
  const started = performance.now();
  await sendAll();
  const cpu = process.cpuUsage(cpu0);
  transport.close();
  return { messages, seconds: (performance.now() - started) / 1000, cpuMs: (cpu.user + cpu.system) / 1000 };
}

/** Runs one role in a fresh process and returns what it measured. */
function runRole(args: string[]): Promise<Measured> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [fileURLToPath(import.meta.url), '--role', ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.once('exit', (code) => (code === 0 ? resolve(JSON.parse(out) as Measured) : reject(new Error(`floor role ${args.join(' ')} exited ${code}`))));
  });
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  if (argv[0] === '--role') {
    const [, role, size, messages, sessions, extra] = argv;
    const measured =
      role === 'server' ? await serverRole(Number(size), Number(messages), Number(sessions), extra === 'keep') : await clientRole(Number(size), Number(messages), Number(sessions), Number(extra));
    process.stdout.write(JSON.stringify(measured));
    process.exit(0);
  }
  const o = parseArgs(argv, { rounds: 5, small: 3000, large: 200, sessions: 20 });
  if (!postfixToolsAvailable()) {
    log('smtp-source and smtp-sink are not available (install postfix or set MAILSHIM_POSTFIX_TOOLS)');
    process.exit(2);
  }
  const sink = await startSink();
  const phases: Array<[string, string[]]> = [
    ['smtp-server, 2 KB, one connection per message', ['server', String(SMALL), String(o.small), String(o.sessions), 'one']],
    ['smtp-server, 2 KB, connections kept', ['server', String(SMALL), String(o.small), String(o.sessions), 'keep']],
    ['smtp-server, 1 MB, connections kept', ['server', String(LARGE), String(o.large), String(o.sessions), 'keep']],
    ['nodemailer pool, 2 KB', ['client', String(SMALL), String(o.small), String(o.sessions), String(sink.port)]],
    ['nodemailer pool, 1 MB', ['client', String(LARGE), String(o.large), String(o.sessions), String(sink.port)]],
  ];
  const load0 = loadavg()[0]!;
  const results = new Map<string, Measured[]>();
  try {
    for (let round = 1; round <= o.rounds; round++) {
      for (const [label, args] of phases) {
        const m = await runRole(args);
        results.set(label, [...(results.get(label) ?? []), m]);
        log(`round ${round}: ${label}: ${(m.cpuMs / m.messages).toFixed(3)} ms CPU/msg, ${(m.messages / m.seconds).toFixed(0)} msg/s`);
      }
    }
  } finally {
    await sink.close();
  }
  const lines = ['| library alone | CPU ms per message, median (min–max) | msg/s, median (min–max) |', '|---|---:|---:|'];
  for (const [label, ms] of results) {
    lines.push(
      `| ${label} | ${spread(
        ms.map((m) => m.cpuMs / m.messages),
        3,
      )} | ${spread(
        ms.map((m) => m.messages / m.seconds),
        0,
      )} |`,
    );
  }
  process.stdout.write(
    `\n${lines.join('\n')}\n\n${cpus().length} CPU(s), load average ${load0.toFixed(2)} at start, ${loadavg()[0]!.toFixed(2)} at end; ${o.rounds} rounds, ${o.sessions} sessions; ${new Date().toISOString()}\n`,
  );
}

main().catch((error: unknown) => {
  process.stderr.write(`floor failed: ${(error as Error).stack ?? String(error)}\n`);
  process.exit(1);
});
