/**
 * Damaged spool files. Before: a truncated queue.mdb died of SIGBUS with no message, a zeroed meta
 * page of SIGSEGV, a zero-length file started with an empty queue, and a changed body was sent as
 * it was. Now: the damage is named, `serve` exits 75, `queue verify` says what is wrong, a body that
 * fails its checksum is held (never sent), and `queue dump --raw` copies mail out for rescue.
 */
import assert from 'node:assert/strict';
import { closeSync, cpSync, openSync, readdirSync, readFileSync, truncateSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startCapture } from '../helpers/capture.js';
import { runCli } from '../helpers/cli.js';
import { relayConfig } from '../helpers/config.js';
import { startDaemon, writeConfig } from '../helpers/daemon.js';
import { closedPort, tempDir } from '../helpers/tmp.js';
import { checked, sendMessage } from './helpers.js';

const dir = tempDir('mailshim-damage-');
let port: number;
/** A spool holding three queued messages (upstream down), made once and copied per scenario. */
const pristine = join(dir.path, 'pristine');

function spoolCopy(name: string): { config: string; file: string } {
  const path = join(dir.path, name);
  cpSync(pristine, path, { recursive: true });
  return { config: writeConfig(dir.path, relayConfig({ spool: path, upstreamPort: port }), `${name}.toml`), file: join(path, 'queue.mdb') };
}

describe('damaged spool files', () => {
  before(async () => {
    port = await closedPort();
    const daemon = await startDaemon(writeConfig(dir.path, relayConfig({ spool: pristine, upstreamPort: port }), 'pristine.toml'));
    try {
      for (const n of [1, 2, 3]) assert.match(await sendMessage(daemon.port, `keep${n}`, 6000), /^250 /);
    } finally {
      await daemon.stop();
    }
  });
  after(() => dir.cleanup());

  it('a healthy spool verifies (exit 0) and dumps as .eml + .json readable without mailshim', async (t) => {
    const { config } = spoolCopy('healthy');
    const verify = await runCli(['queue', 'verify', '--config', config]);
    assert.equal(verify.code, 0, verify.stdout + verify.stderr);
    assert.match(verify.stdout, /3 message\(s\).*\n.*spool OK/s);
    const out = join(dir.path, 'rescue');
    const dump = await runCli(['queue', 'dump', '--raw', out, '--config', config]);
    assert.equal(dump.code, 0, dump.stderr);
    const files = readdirSync(out).sort();
    assert.equal(files.filter((f) => f.endsWith('.eml')).length, 3);
    const json = JSON.parse(
      readFileSync(
        join(
          out,
          files.find((f) => f.endsWith('.json'))!,
        ),
        'utf8',
      ),
    ) as { sender: string; pending: string[]; body: string };
    assert.equal(json.sender, 'sender@example.org');
    assert.deepEqual(json.pending, ['rcpt@example.net']);
    const eml = readFileSync(join(out, json.body), 'latin1');
    assert.match(eml, /^Received: .*\r\n(.|\r\n)*Subject: keep\d\r\n/);
    const again = await runCli(['queue', 'dump', '--raw', out, '--config', config]);
    assert.notEqual(again.code, 0, 'a second dump into the same directory refuses to overwrite');
    checked(t, 'verify OK on a healthy spool; dump wrote 3 .eml + .json (envelope, pending recipients) and never overwrites');
  });

  const damages: Array<[string, (file: string) => void, RegExp]> = [
    ['truncated to half', (f) => truncateSync(f, Math.floor(readFileSync(f).length / 2 / 4096) * 4096), /truncated/],
    [
      'meta page 0 zeroed',
      (f) => {
        const b = readFileSync(f);
        b.fill(0, 0, 4096);
        writeFileSync(f, b);
      },
      /meta page 0 is not an LMDB meta page/,
    ],
    ['zero-length', (f) => truncateSync(f, 0), /empty \(0 bytes\)/],
  ];
  for (const [name, damage, message] of damages) {
    it(`queue.mdb ${name}: serve exits 75 naming the damage; queue verify exits 75`, async (t) => {
      const { config, file } = spoolCopy(name.replace(/\W+/g, '-'));
      damage(file);
      const serve = await runCli(['serve', '--config', config]);
      assert.equal(serve.code, 75, `serve exit code (stderr: ${serve.stderr})`);
      assert.match(serve.stderr, message);
      assert.match(serve.stderr, /queue verify/);
      const verify = await runCli(['queue', 'verify', '--config', config]);
      assert.equal(verify.code, 75, verify.stderr);
      assert.match(verify.stderr, message);
      checked(t, `${name}: serve → exit 75, "${serve.stderr.split('\n')[0]!.slice(0, 140)}"`);
    });
  }

  it('a body changed on disk fails its checksum: held with the reason, never sent; verify exits 65 naming it', async (t) => {
    const { config, file } = spoolCopy('bitrot');
    const bytes = readFileSync(file);
    const at = bytes.indexOf('Subject: keep2');
    assert.ok(at > 0, 'found the body in the file');
    bytes[at + 'Subject: keep'.length] = '9'.charCodeAt(0); // keep2 → keep9: one byte of "disk damage"
    writeFileSync(file, bytes);
    const verify = await runCli(['queue', 'verify', '--config', config]);
    assert.equal(verify.code, 65, verify.stdout + verify.stderr);
    assert.match(verify.stdout, /checksum mismatch/);
    const capture = await startCapture({ port });
    const daemon = await startDaemon(config);
    try {
      const held = await daemon.waitForLog((l) => l.event === 'spool-damaged');
      assert.match(String(held.problem), /checksum mismatch/);
      await capture.waitFor(2);
      await daemon.waitForLog(() => daemon.logs.filter((l) => l.event === 'delivery').length >= 2);
      const subjects = capture.messages.map((m) => /Subject: (\w+)/.exec(m.raw.toString())?.[1]).sort();
      assert.deepEqual(subjects, ['keep1', 'keep3'], 'the damaged message was not sent');
      const show = await runCli(['queue', 'show', String(held.queueId), '--json', '--config', config]);
      const record = JSON.parse(show.stdout) as { state: string; damaged: string };
      assert.equal(record.state, 'held');
      assert.match(record.damaged, /checksum mismatch/);
      const text = await runCli(['queue', 'show', String(held.queueId), '--config', config]);
      assert.match(text.stdout, /^Damaged: +.*checksum mismatch/m, 'the text form names the damage too');
      checked(t, `one flipped byte → ${String(held.queueId)} held ("${String(held.problem)}"), the other two delivered, verify exit 65`);
    } finally {
      await daemon.stop();
      await capture.close();
    }
  });

  it('a body damaged while the daemon runs is caught by the check before delivery, not sent', async (t) => {
    const { config, file } = spoolCopy('bitrot-live');
    const daemon = await startDaemon(config); // upstream still down: the messages wait
    let capture;
    try {
      await daemon.waitForLog((l) => l.event === 'spool-verified' && l.damaged === 0);
      // The first attempt of each message fails (nothing listens yet): only then is the byte flipped,
      // so no delivery can have read the body before the damage.
      await daemon.waitForLog(() => daemon.logs.filter((l) => l.event === 'delivery' && l.result === 'transient').length >= 3);
      const at = readFileSync(file).indexOf('Subject: keep3');
      const fd = openSync(file, 'r+'); // in place: the daemon's mapping sees the change at once
      writeSync(fd, Buffer.from('8'), 0, 1, at + 'Subject: keep'.length);
      closeSync(fd);
      capture = await startCapture({ port });
      const runCliFlush = await runCli(['queue', 'flush', '--config', config]);
      assert.equal(runCliFlush.code, 0);
      const held = await daemon.waitForLog((l) => l.event === 'spool-damaged', 30_000);
      await capture.waitFor(2);
      await daemon.waitForLog(() => daemon.logs.filter((l) => l.event === 'delivery').length >= 2);
      assert.deepEqual(capture.messages.map((m) => /Subject: (\w+)/.exec(m.raw.toString())?.[1]).sort(), ['keep1', 'keep2']);
      checked(t, `damaged after start-up → caught before delivery: ${String(held.queueId)} held, not sent`);
    } finally {
      await daemon.stop();
      await capture?.close();
    }
  });
});
