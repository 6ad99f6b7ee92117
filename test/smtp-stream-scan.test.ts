/**
 * The DATA scan of the smtp-server adapter (src/intake/smtp-server-adapter.ts, point 4): the
 * replacement of `SMTPStream._feedDataStream` must behave exactly as smtp-server's own method.
 * Both parse the same random SMTP dialogs (dots, escape dots, terminators, bare CR and LF, the
 * smuggling shapes "\n.\n" and "\r\n.\n") cut into random chunks, and must report the same
 * commands, the same message bytes and the same byte counts. This file installs the adapter
 * itself, after keeping smtp-server's method, so nothing else may import the adapter here.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { describe, it } from 'node:test';
import { SMTPStream } from 'smtp-server/lib/smtp-stream.js';
import { adaptSmtpServer } from '../src/intake/smtp-server-adapter.js';

type Feed = (this: unknown, chunk: Buffer, done: (error?: Error) => void) => void;
const prototype = SMTPStream.prototype as unknown as { _feedDataStream: Feed };
const original = prototype._feedDataStream;
adaptSmtpServer();
const replacement = prototype._feedDataStream;

interface Transcript {
  events: string[];
  dataBytes: number[];
}

/** Runs one dialog (what follows the greeting) through an SMTPStream whose data-mode method is `feed`. */
async function parse(feed: Feed, chunks: Buffer[]): Promise<Transcript> {
  const stream = new SMTPStream() as SMTPStream & { _feedDataStream: Feed; startDataMode(max?: number): NodeJS.ReadableStream; continue(): void; dataBytes: number };
  stream._feedDataStream = feed;
  const transcript: Transcript = { events: [], dataBytes: [] };
  stream.oncommand = (line: Buffer, next?: () => void) => {
    const command = line.toString('latin1');
    transcript.events.push(`cmd ${JSON.stringify(command)}`);
    if (command.toUpperCase() === 'DATA') {
      const data = stream.startDataMode();
      const parts: Buffer[] = [];
      data.on('data', (part: Buffer) => parts.push(part));
      data.on('end', () => {
        transcript.events.push(`data ${JSON.stringify(Buffer.concat(parts).toString('latin1'))}`);
        transcript.dataBytes.push(stream.dataBytes);
        stream.continue();
      });
    }
    next?.();
  };
  for (const chunk of chunks) await new Promise<void>((resolve, reject) => stream.write(chunk, (error) => (error ? reject(error) : resolve())));
  await new Promise<void>((resolve) => stream.end(resolve));
  // Whatever is still open (a message without its terminator) is reported as it stands.
  return transcript;
}

/** A small deterministic PRNG (mulberry32), so a failure can be replayed. */
function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const TOKENS = ['x', 'hello', '.', '..', '...', '\r\n', '\n', '\r', '\r\n.\r\n', '\r\n..\r\n', '\n.\n', '\r\n.\n', '\n.\r\n', '.\r\n', 'DATA\r\n', 'RSET\r\n', 'QUIT\r\n', '\xe9', '\0'];

function dialog(next: () => number): Buffer {
  let text = 'MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.net>\r\nDATA\r\n';
  const n = Math.floor(next() * 60);
  for (let i = 0; i < n; i++) text += TOKENS[Math.floor(next() * TOKENS.length)]!;
  text += '\r\n.\r\nQUIT\r\n';
  return Buffer.from(text, 'latin1');
}

function cut(bytes: Buffer, next: () => number): Buffer[] {
  const chunks: Buffer[] = [];
  for (let at = 0; at < bytes.length;) {
    const size = next() < 0.2 ? bytes.length : 1 + Math.floor(next() * 12);
    chunks.push(bytes.subarray(at, at + size));
    at += size;
  }
  return chunks;
}

describe('smtp-server adapter: the DATA scan', () => {
  it('pins the method it replaces: smtp-server 3.21 _feedDataStream, byte for byte', () => {
    const require = createRequire(import.meta.url);
    const file = require.resolve('smtp-server/lib/smtp-stream.js').replace('/cjs/', '/esm/');
    const method = /\n {4}_feedDataStream\(chunk, done\) \{[\s\S]*?\n {4}\}\n/.exec(readFileSync(file, 'utf8'))?.[0] ?? '';
    const digest = createHash('sha256').update(method).digest('hex');
    assert.equal(
      digest,
      '753f416decc2978deadb8d5c2e1804a6233b383ec3fc55d8bc61335f57708c3a',
      'smtp-server changed _feedDataStream: compare it with feedDataStream in src/intake/smtp-server-adapter.ts, carry the change over, then update this digest',
    );
  });

  it('the replacement is installed', () => {
    assert.notEqual(replacement, original);
  });

  it('gives the same commands, message bytes and counts as smtp-server on 3,000 random dialogs in random chunks', async () => {
    for (let seed = 1; seed <= 3000; seed++) {
      const next = random(seed);
      const chunks = cut(Buffer.concat([dialog(next), next() < 0.3 ? dialog(next) : Buffer.alloc(0)]), next);
      const want = await parse(original, chunks);
      const got = await parse(replacement, chunks);
      assert.deepEqual(got, want, `seed ${seed}: ${JSON.stringify(Buffer.concat(chunks).toString('latin1'))}`);
    }
  });

  it('gives the same result on a 1 MB message in 64 KB chunks, with escape dots and a terminator across chunks', async () => {
    const line = (i: number) => (i % 97 === 0 ? '..dot-stuffed line\r\n' : `line ${i} ${'y'.repeat(70)}\r\n`);
    let body = '';
    for (let i = 0; body.length < 1024 * 1024; i++) body += line(i);
    const bytes = Buffer.from(`DATA\r\n${body}.\r\nQUIT\r\n`, 'latin1');
    for (const size of [65536, 65536 - 2, 4096 + 1]) {
      const chunks: Buffer[] = [];
      for (let at = 0; at < bytes.length; at += size) chunks.push(bytes.subarray(at, at + size));
      const want = await parse(original, chunks);
      const got = await parse(replacement, chunks);
      assert.deepEqual(got, want, `chunks of ${size}`);
      assert.equal(got.dataBytes.length, 1, 'one message');
    }
  });
});
