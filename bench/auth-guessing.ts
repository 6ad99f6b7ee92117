/**
 * Issue 14: "AUTH does not starve intake". 60 concurrent sessions guess passwords (AUTH PLAIN,
 * each from its own loopback address, a new address once one is locked out, as a distributed
 * guesser would) while one client sends ordinary mail, one connection per message, on the same
 * listener. Reports that client's connect → 250 latency idle and under the guessing, and what
 * the guessers were answered (535 wrong, 454 busy, 421 locked out).
 *
 *   npm run bench:auth -- [--guessers 60 --seconds 20 --messages 40]
 *
 * Not part of `npm test`: it is a measurement. Needs the 127.0.0.0/8 loopback range (Linux).
 */
import { writeFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { mkdtempSync } from 'node:fs';
import { hashPassword } from '../src/auth/passwords.js';
import { parseArgs } from './lib/args.js';
import { startBenchCapture } from './lib/capture.js';
import { runLoad } from './lib/loadgen.js';
import { freePort, startMailshim } from './lib/procs.js';
import { median, percentile } from './lib/report.js';

/** Reads SMTP replies (the last line of each) off a socket. */
function replies(socket: Socket): () => Promise<string> {
  let buffer = '';
  const waiting: ((line: string) => void)[] = [];
  const ready: string[] = [];
  socket.setEncoding('latin1');
  socket.on('data', (text: string) => {
    buffer += text;
    for (let end = buffer.indexOf('\r\n'); end !== -1; end = buffer.indexOf('\r\n')) {
      const line = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      if (line[3] === '-') continue;
      const wake = waiting.shift();
      if (wake) wake(line);
      else ready.push(line);
    }
  });
  socket.on('close', () => {
    for (const wake of waiting.splice(0)) wake('closed');
    ready.push('closed');
  });
  return () => (ready.length ? Promise.resolve(ready.shift()!) : new Promise((resolve) => waiting.push(resolve)));
}

/** One guesser: AUTH PLAIN with wrong passwords until its address is locked out, then the next address. */
async function guess(port: number, nextAddress: () => string, until: number, answers: Map<string, number>): Promise<void> {
  while (Date.now() < until) {
    const socket = connect({ port, host: '127.0.0.1', localAddress: nextAddress() });
    socket.on('error', () => undefined);
    const reply = replies(socket);
    const count = (line: string) => answers.set(line.slice(0, 3), (answers.get(line.slice(0, 3)) ?? 0) + 1);
    if (!(await reply()).startsWith('220')) {
      socket.destroy();
      continue;
    }
    socket.write('EHLO guesser.test\r\n');
    await reply();
    for (let n = 0; Date.now() < until; n++) {
      socket.write(`AUTH PLAIN ${Buffer.from(`\0alice\0wrong${n}`).toString('base64')}\r\n`);
      const line = await reply();
      count(line);
      if (!line.startsWith('535') && !line.startsWith('454')) break; // 421 (locked out) or closed
    }
    socket.destroy();
  }
}

async function probe(port: number, messages: number): Promise<number[]> {
  const result = await runLoad({ port, sessions: 1, messages, size: 2048, tag: 'probe', connectionPerMessage: true, timeoutMs: 300_000 });
  return result.messageMs.sort((a, b) => a - b);
}

async function main(): Promise<void> {
  const { guessers, seconds, messages } = parseArgs(process.argv.slice(2), { guessers: 60, seconds: 20, messages: 40 });
  const dir = mkdtempSync(join(tmpdir(), 'mailshim-bench-auth-'));
  const users = join(dir, 'users');
  writeFileSync(users, `alice:${await hashPassword('the right one')}\n`, { mode: 0o600 });
  const capture = await startBenchCapture();
  const port = await freePort();
  const daemon = await startMailshim({
    dir,
    port: await freePort(),
    upstreamPort: capture.port,
    concurrency: 4,
    extraToml: `\n[[listen]]\naddress = "127.0.0.1:${port}"\nallow = ["127.0.0.0/8"]\nauth = "optional"\nusers_file = ${JSON.stringify(users)}\nmax_connections = 200\nmax_connections_per_ip = 200\n`,
  });
  try {
    const idle = await probe(port, messages);
    const answers = new Map<string, number>();
    let n = 0;
    const nextAddress = () => {
      n++;
      return `127.1.${(n >> 8) & 255}.${n & 255 || 1}`;
    };
    const until = Date.now() + seconds * 1000;
    const load = Promise.all(Array.from({ length: guessers }, () => guess(port, nextAddress, until, answers)));
    await new Promise((r) => setTimeout(r, 1000)); // the guessing is in full swing
    const underAttack = await probe(port, messages);
    await load;
    const show = (ms: number[]) => `p50 ${median(ms)?.toFixed(1)} ms, p99 ${percentile(ms, 99)?.toFixed(1)} ms, max ${ms[ms.length - 1]?.toFixed(1)} ms`;
    console.log(`load average ${loadavg()[0]!.toFixed(2)}; ${guessers} guessers for ${seconds} s from ${n} addresses`);
    console.log(`ordinary mail, connect → 250, idle:           ${show(idle)}`);
    console.log(`ordinary mail, connect → 250, under guessing: ${show(underAttack)}`);
    console.log(`ratio of medians: ${((median(underAttack) ?? 0) / (median(idle) ?? 1)).toFixed(2)}× (target ≤ 2×)`);
    console.log(`guessers were answered: ${[...answers].map(([code, count]) => `${code} × ${count}`).join(', ')}`);
  } finally {
    await daemon.stop();
    await capture.close();
  }
}

await main();
