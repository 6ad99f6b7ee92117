/**
 * The corpus (test/corpus/: what cron jobs and scripts really print) piped through bin/sendmail
 * as Debian's cron calls it, into the running daemon, relayed to a strict SMTP sink that refuses
 * what strict providers refuse (lines over 998 octets, bare CR or LF, NUL, 8-bit without
 * BODY=8BITMIME): every entry must arrive, and decode — with mailparser, as a reader's client
 * would — to exactly the text that was piped in, byte for byte. Plus one raw-MIME JSON upstream
 * (SparkPost's email_rfc822 is a JSON string: the Latin-1 entry must reach it as 7-bit).
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import mailsplit from '@zone-eu/mailsplit';
import libqp from 'libqp';
import { simpleParser } from 'mailparser';
import type { Json } from './fakes/server.js';
import { startSparkpostFake, type SparkpostFake } from './fakes/sparkpost.js';
import { startCapture, strictRefusal, type Capture, type Captured } from './helpers/capture.js';
import { relayConfig } from './helpers/config.js';
import { REPO, startDaemon, writeConfig, type RunningDaemon } from './helpers/daemon.js';
import { runBin } from './helpers/sendmail.js';
import { tempDir } from './helpers/tmp.js';

interface Entry {
  file?: string;
  generate?: 'line-1mb';
  as: 'cron' | 'whole';
  charset: string;
  what: string;
  /** Already legal and 7-bit: must go out as stored, not needlessly re-encoded. */
  unchanged?: boolean;
}

const CORPUS = join(REPO, 'test/corpus');
const entries = JSON.parse(readFileSync(join(CORPUS, 'manifest.json'), 'utf8')) as Entry[];
/** Debian cron's command line (do_command.c MAILARGS, with MAILTO as the recipient). */
const CRON_ARGS = ['-i', '-FCronDaemon', '-B8BITMIME', '-oem'];

const nameOf = (e: Entry) => (e.file ?? e.generate!).replace(/\.[a-z0-9]+$/, '');

function contentOf(e: Entry): Buffer {
  if (e.generate === 'line-1mb') {
    const record = '{"ts":"2026-11-27T03:00:00Z","level":"info","msg":"sync","items":[1,2,3],"ok":true},';
    return Buffer.from(record.repeat(Math.ceil(1_000_000 / record.length)).slice(0, 1_000_000) + '\n');
  }
  return readFileSync(join(CORPUS, e.file!));
}

/** The header block Debian's cron writes before the job's output (charset from the locale). */
function cronInput(name: string, output: Buffer): Buffer {
  const header =
    `From: root (Cron Daemon)\nTo: ${name}@example.net\nSubject: Cron <root@web1> /usr/local/bin/${name}\n` +
    'MIME-Version: 1.0\nContent-Type: text/plain; charset=UTF-8\nContent-Transfer-Encoding: 8bit\n' +
    'X-Cron-Env: <SHELL=/bin/sh>\nX-Cron-Env: <HOME=/root>\nX-Cron-Env: <PATH=/usr/bin:/bin>\nX-Cron-Env: <LOGNAME=root>\n\n';
  return Buffer.concat([Buffer.from(header), output]);
}

/** The body as sendmail stores it: LF → CRLF, a final line break added. */
function storedBody(e: Entry, content: Buffer): Buffer {
  let body = content;
  if (e.as === 'whole') body = e.file === 'only-headers.eml' ? Buffer.alloc(0) : content;
  if (body.length === 0) return body;
  const text = body.toString('latin1').replace(/\r?\n/g, '\r\n');
  return Buffer.from(text.endsWith('\r\n') ? text : text + '\r\n', 'latin1');
}

/** What a reader sees for these bytes if they were labelled with the charset they really are in. */
async function truthText(body: Buffer, charset: string): Promise<string> {
  const reference = Buffer.from(`Content-Type: text/plain; charset=${charset}\r\nContent-Transfer-Encoding: base64\r\n\r\n${body.toString('base64')}\r\n`);
  return (await simpleParser(reference)).text ?? '';
}

/** The decoded bytes of a single-part message's body (transfer encoding undone, no charset applied). */
async function decodedBody(raw: Buffer): Promise<Buffer> {
  const splitter = new mailsplit.Splitter();
  const seen = { encoding: '' };
  const chunks: Buffer[] = [];
  splitter.on('data', (d: { type: string; encoding?: string | false; value?: Buffer }) => {
    if (d.type === 'node') seen.encoding = d.encoding || '';
    else if (d.type === 'body') chunks.push(d.value!);
  });
  const done = once(splitter, 'end');
  splitter.end(raw);
  await done;
  const { encoding } = seen;
  const body = Buffer.concat(chunks);
  if (encoding === 'base64') return Buffer.from(body.toString('latin1'), 'base64');
  if (encoding === 'quoted-printable') return libqp.decode(body);
  return body;
}

describe('corpus: cron output through bin/sendmail to a strict SMTP sink', () => {
  let capture: Capture;
  let daemon: RunningDaemon;
  let dir: ReturnType<typeof tempDir>;
  let config: string;

  before(async () => {
    dir = tempDir();
    capture = await startCapture({ strict: true });
    config = writeConfig(dir.path, relayConfig({ spool: `${dir.path}/spool`, upstreamPort: capture.port, local: 'admin = "admin@example.com"' }));
    daemon = await startDaemon(config);
  });

  after(async () => {
    await daemon.stop();
    await capture.close();
    dir.cleanup();
  });

  const arrived = async (recipient: string): Promise<Captured> => {
    const deadline = Date.now() + 30_000;
    for (;;) {
      const found = capture.messages.find((m) => m.recipients.includes(recipient));
      if (found) return found;
      const failed = daemon.logs.find((l) => l.event === 'delivery' && Array.isArray(l.recipients) && (l.recipients as string[]).includes(recipient) && l.result !== 'delivered');
      if (failed) throw new Error(`${recipient}: ${String(failed.result)}: ${String(failed.reply)}`);
      if (Date.now() > deadline) throw new Error(`${recipient}: did not arrive`);
      await capture.waitFor(capture.messages.length + 1, 500).catch(() => undefined);
    }
  };

  for (const entry of entries) {
    const name = nameOf(entry);
    it(`${name}: ${entry.what}`, async () => {
      const content = contentOf(entry);
      const recipient = `${name}@example.net`;
      const input = entry.as === 'cron' ? cronInput(name, content) : content;
      const result = await runBin('sendmail', [...CRON_ARGS, recipient], { input, config });
      assert.equal(result.code, 0, `sendmail exit ${String(result.code)}: ${result.stderr}`);
      const got = await arrived(recipient);
      assert.equal(strictRefusal(got.raw, undefined), undefined, 'legal and 7-bit on the wire');
      const body = storedBody(entry, content);
      assert.ok((await decodedBody(got.raw)).equals(body), 'every byte of the body survives');
      if (entry.unchanged)
        assert.ok(got.raw.subarray(got.raw.length - body.length).equals(body) && !/^Content-Transfer-Encoding: (quoted-printable|base64)/im.test(got.raw.toString('latin1')), 'sent as stored');
      const parsed = await simpleParser(got.raw);
      assert.equal(parsed.text ?? '', await truthText(body, entry.charset), 'the reader sees the text that was piped in');
    });
  }
});

describe('corpus: with the daemon down, through the maildrop', () => {
  it('progress bars and NUL bytes are kept in the maildrop and relayed legally once the daemon starts', async () => {
    const dir = tempDir();
    const capture = await startCapture({ strict: true });
    const config = writeConfig(dir.path, relayConfig({ spool: `${dir.path}/spool`, upstreamPort: capture.port, local: 'admin = "admin@example.com"' }));
    let daemon: RunningDaemon | undefined;
    try {
      const picked = entries.filter((e) => e.file === 'progress-bars.txt' || e.file === 'nul-bytes.txt');
      for (const entry of picked) {
        const result = await runBin('sendmail', [...CRON_ARGS, `${nameOf(entry)}@example.net`], { input: cronInput(nameOf(entry), contentOf(entry)), config });
        assert.equal(result.code, 0, result.stderr);
      }
      daemon = await startDaemon(config);
      await capture.waitFor(picked.length, 30_000);
      for (const entry of picked) {
        const got = capture.messages.find((m) => m.recipients.includes(`${nameOf(entry)}@example.net`))!;
        assert.ok((await decodedBody(got.raw)).equals(storedBody(entry, contentOf(entry))), `${nameOf(entry)}: every byte survives`);
      }
    } finally {
      await daemon?.stop();
      await capture.close();
      dir.cleanup();
    }
  });
});

describe('corpus: a raw-MIME JSON upstream (SparkPost email_rfc822)', () => {
  const KEY = 'sparkpost-key-0123456789';
  let fake: SparkpostFake;
  let daemon: RunningDaemon;
  let dir: ReturnType<typeof tempDir>;
  let config: string;

  before(async () => {
    dir = tempDir();
    fake = await startSparkpostFake(KEY);
    const upstream = `[[upstream]]\nname = "sparkpost"\ntype = "sparkpost"\napi_key = "\${SP_KEY}"\nendpoint = "${fake.url}"\ntimeout = "5s"\n`;
    config = writeConfig(dir.path, relayConfig({ spool: `${dir.path}/spool`, upstreams: upstream, local: 'admin = "admin@example.com"' }));
    daemon = await startDaemon(config, { SP_KEY: KEY });
  });

  after(async () => {
    await daemon.stop();
    await fake.close();
    dir.cleanup();
  });

  it('Latin-1 cron output reaches SparkPost as a 7-bit message that decodes to the same text', async () => {
    const entry = entries.find((e) => e.file === 'latin1.txt')!;
    const content = contentOf(entry);
    const result = await runBin('sendmail', [...CRON_ARGS, 'latin1@example.net'], { input: cronInput('latin1', content), config });
    assert.equal(result.code, 0, result.stderr);
    const [accepted] = await fake.waitForAccepted(1).catch(() => {
      const line = daemon.logs.find((l) => l.event === 'delivery');
      throw new Error(`not accepted: ${String(line?.result)}: ${String(line?.reply)}`);
    });
    const rfc822 = Buffer.from((accepted!.payload as Json & { content: { email_rfc822: string } }).content.email_rfc822, 'utf8');
    assert.equal(strictRefusal(rfc822, undefined), undefined, '7-bit, legal lines');
    const body = storedBody(entry, content);
    assert.ok((await decodedBody(rfc822)).equals(body));
    assert.equal((await simpleParser(rfc822)).text, await truthText(body, entry.charset));
  });
});
