/**
 * `node dist/bench/wire.js`: the cost of src/message/wire.ts on the delivery path. Prints the
 * median time per message for the fast path (a legal 7-bit message: one scan, no copy) and for
 * messages that need re-encoding (cron output with CRs, a 1 MB line, Latin-1, binary garbage).
 */
import { randomBytes } from 'node:crypto';
import { fitForWire } from '../src/message/wire.js';

const header =
  'Received: by web1 (mailshim)\r\nFrom: root (Cron Daemon)\r\nTo: root\r\nSubject: Cron <root@web1> job\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=UTF-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n';
const cases: Array<[string, Buffer]> = [
  ['legal 7-bit, 2 KB', Buffer.from(header + 'ok line of output\r\n'.repeat(110))],
  ['legal 7-bit, 1 MB', Buffer.from(header + 'ok line of output\r\n'.repeat(55_000))],
  ['progress bars, 4 KB', Buffer.from(header + ' 10%\r 50%\r100%\r\n'.repeat(250))],
  ['Latin-1, 100 KB', Buffer.from(header + 'Sauvegarde termin\xe9e \xe0 03:00\r\n'.repeat(3500), 'latin1')],
  ['one 1 MB line', Buffer.from(header + 'x'.repeat(1_000_000) + '\r\n')],
  ['binary garbage, 100 KB', Buffer.concat([Buffer.from(header), randomBytes(100_000)])],
];

for (const [name, raw] of cases) {
  const times: number[] = [];
  for (let i = 0; i < 30; i++) {
    const started = performance.now();
    await fitForWire(raw, { eightBit: false });
    times.push(performance.now() - started);
  }
  times.sort((a, b) => a - b);
  console.log(`${name.padEnd(24)} ${times[15]!.toFixed(2).padStart(8)} ms median (${(raw.length / 1024).toFixed(0)} KiB)`);
}
