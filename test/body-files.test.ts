/**
 * Bodies of BODY_FILE_MIN bytes and more live in files beside the LMDB queue (src/spool/body-files.ts),
 * in process against a real spool: where they go (and where small ones stay), that removal
 * unlinks only after the commit, that a damaged file fails the stream before its end, and that
 * start-up removes files no record names, never one a record names. The disk faults (EIO/ENOSPC
 * at each step, kill -9 between file and record) are in test/faults/body-files-faults.test.ts.
 */
import assert from 'node:assert/strict';
import { closeSync, existsSync, openSync, readdirSync, readFileSync, readlinkSync, statSync, truncateSync, unlinkSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { describe, it } from 'node:test';
import { pino } from 'pino';
import { SpoolError } from '../src/errors.js';
import { BODY_FILE_MIN } from '../src/spool/body-files.js';
import { compactSpool } from '../src/spool/compact.js';
import { newQueueId } from '../src/spool/ids.js';
import { Spool } from '../src/spool/spool.js';
import { checkSpoolAtStart } from '../src/spool/startup.js';
import { deliveryState } from '../src/spool/states.js';
import { verifySpool } from '../src/spool/verify.js';
import { runCli } from './helpers/cli.js';
import { relayConfig } from './helpers/config.js';
import { writeConfig } from './helpers/daemon.js';
import { tempDir } from './helpers/tmp.js';

const envelope = { sender: 'a@example.org', recipients: ['b@example.net'] };
const meta = { origin: { protocol: 'esmtp' as const } };

/** A 7-bit message of about `size` bytes, every line different (so a flipped byte changes the checksum). */
function message(size: number, tag = 'big'): Buffer {
  const lines = [`Subject: ${tag}\r\n\r\n`];
  for (let n = 0, total = lines[0]!.length; total < size; n++) {
    const line = `line ${n} ${'x'.repeat(60)}\r\n`;
    lines.push(line);
    total += line.length;
  }
  return Buffer.from(lines.join(''));
}

async function withSpool(run: (spool: Spool, dir: string) => Promise<void>): Promise<void> {
  const dir = tempDir();
  const spool = Spool.open(join(dir.path, 'spool'));
  try {
    await run(spool, join(dir.path, 'spool'));
  } finally {
    await spool.close();
    dir.cleanup();
  }
}

function silentLog(lines: Array<Record<string, unknown>>) {
  return pino({ level: 'debug' }, new Writable({ write: (chunk, _e, done) => (lines.push(JSON.parse(String(chunk)) as Record<string, unknown>), done()) }));
}

async function drain(stream: NodeJS.ReadableStream): Promise<{ bytes: number; error?: Error; ended: boolean }> {
  let bytes = 0;
  try {
    for await (const chunk of stream) bytes += (chunk as Buffer).length;
    return { bytes, ended: true };
  } catch (error) {
    return { bytes, error: error as Error, ended: false };
  }
}

describe('where bodies live', () => {
  it(`a body of ${BODY_FILE_MIN} bytes or more is the file bodies/<id> (0600 in a 0700 directory); a smaller one stays in LMDB`, () =>
    withSpool(async (spool, path) => {
      const big = message(1 << 20);
      const small = message(2000, 'small');
      const bigId = await spool.accept(envelope, big, meta);
      const smallId = await spool.accept(envelope, small, meta);
      const file = join(path, 'bodies', bigId);
      assert.ok(existsSync(file), 'the body file exists once accept() resolved');
      assert.equal(statSync(file).mode & 0o777, 0o600);
      assert.equal(statSync(join(path, 'bodies')).mode & 0o777, 0o700);
      assert.deepEqual(readdirSync(join(path, 'bodies')), [bigId], 'the small body has no file');
      assert.ok(spool.get(bigId)?.bodyFile, 'the record names its file');
      assert.equal(spool.get(smallId)?.bodyFile, undefined);
      assert.ok(spool.body(bigId)!.equals(big), 'the whole body reads back');
      assert.ok(spool.body(smallId)!.equals(small));
      assert.equal(spool.queuedBytes(), big.length + small.length, 'queued bytes (max_size, status) count the file');
      assert.deepEqual(verifySpool(spool).damaged, []);
    }));

  it('the streamed body is the stored bytes, and the wire scan at accept time is on the record', () =>
    withSpool(async (spool) => {
      const big = message(300_000);
      const id = await spool.accept(envelope, big, meta);
      const body = spool.openBody(spool.get(id)!);
      assert.ok(!('problem' in body));
      try {
        assert.equal(body.size, big.length);
        assert.equal(body.wireClean, true);
        assert.equal(body.eightBit, false);
        const chunks: Buffer[] = [];
        for await (const chunk of body.stream()) chunks.push(chunk as Buffer);
        assert.ok(Buffer.concat(chunks).equals(big));
        assert.ok((await body.buffer()).equals(big));
        assert.equal(body.damage, undefined);
      } finally {
        body.close();
      }
    }));

  it('close() releases the descriptor (off the event loop, once libuv ran it); a read after close() fails, never reads another file', () =>
    withSpool(async (spool, path) => {
      const id = await spool.accept(envelope, message(300_000), meta);
      const body = spool.openBody(spool.get(id)!);
      assert.ok(!('problem' in body));
      const fd = (body as unknown as { fd: number }).fd;
      const target = () => {
        try {
          return readlinkSync(`/proc/self/fd/${fd}`);
        } catch {
          return undefined;
        }
      };
      assert.equal(target(), join(path, 'bodies', id));
      await spool.remove(id); // as after a delivery: the file is unlinked while still open
      assert.match(target() ?? '', / \(deleted\)$/);
      body.close();
      for (let spins = 0; target()?.startsWith(join(path, 'bodies', id)) && spins < 1000; spins++) await new Promise((r) => setTimeout(r, 5));
      assert.ok(!target()?.startsWith(join(path, 'bodies', id)), `fd ${fd} still open on ${target()}`);
      const late = await drain(body.stream());
      assert.equal(late.ended, false);
      assert.match(String(late.error), /read after its delivery attempt ended/);
    }));

  it('delivered or deleted: the record goes first, then the file; a refused insert (EIDEXISTS) leaves no file', () =>
    withSpool(async (spool, path) => {
      const delivered = await spool.accept(envelope, message(100_000), meta);
      const deleted = await spool.accept(envelope, message(100_000), meta);
      await spool.update(delivered, (r) => ({ ...r, recipients: r.recipients.map((x) => ({ ...x, status: 'delivered' as const })) }));
      assert.equal(spool.get(delivered), undefined);
      assert.ok(!existsSync(join(path, 'bodies', delivered)), 'file unlinked after the commit');
      await spool.remove(deleted);
      assert.ok(!existsSync(join(path, 'bodies', deleted)));
      const id = newQueueId();
      await spool.accept(envelope, message(2000), { ...meta, id });
      await assert.rejects(spool.accept(envelope, message(100_000), { ...meta, id }), (e) => e instanceof SpoolError && e.code === 'EIDEXISTS');
      assert.deepEqual(readdirSync(join(path, 'bodies')), [], 'the refused body file was removed');
      assert.equal(spool.queuedBytes(), spool.get(id)!.size, 'and is not counted');
    }));
});

describe('everything else that reads or counts bodies', () => {
  it('max_size counts body files: a spool of 250 kB takes two 100 kB messages, not a third', async () => {
    const dir = tempDir();
    const spool = Spool.open(join(dir.path, 'spool'), { maxSize: 250_000 });
    try {
      await spool.accept(envelope, message(100_000), meta);
      await spool.accept(envelope, message(100_000), meta);
      await assert.rejects(spool.accept(envelope, message(100_000), meta), (e) => e instanceof SpoolError && e.code === 'ESPOOLFULL');
      assert.equal(readdirSync(join(dir.path, 'spool', 'bodies')).length, 2, 'the refused one left no file');
    } finally {
      await spool.close();
      dir.cleanup();
    }
  });

  it('the sent record of a delivered file body keeps its headers; compaction keeps records and files together', async () => {
    const dir = tempDir();
    const path = join(dir.path, 'spool');
    let spool = Spool.open(path, { retention: { ms: 86_400_000, max: 10 } });
    try {
      const sent = await spool.accept(envelope, message(100_000, 'retained'), meta);
      const queued = await spool.accept(envelope, message(100_000, 'queued'), meta);
      await spool.update(sent, (r) => ({ ...r, recipients: r.recipients.map((x) => ({ ...x, status: 'delivered' as const, upstream: 'api', providerMessageId: 'p-1' })) }));
      assert.match(spool.sentRecord(sent)!.headers, /^Subject: retained\r\n\r\n$/);
      assert.ok(!existsSync(join(path, 'bodies', sent)));
      await spool.close();
      await compactSpool(path);
      spool = Spool.open(path);
      assert.match(spool.body(queued)!.toString('latin1'), /^Subject: queued\r\n/);
      assert.deepEqual(verifySpool(spool).damaged, []);
    } finally {
      await spool.close();
      dir.cleanup();
    }
  });
});

describe('queue tools on body files (daemon stopped, the CLI as a process)', () => {
  it('queue show --raw, verify and dump --raw read the file; queue delete removes record and file', async () => {
    const dir = tempDir();
    const path = join(dir.path, 'spool');
    const config = writeConfig(dir.path, relayConfig({ spool: path }));
    const big = message(200_000, 'tools');
    const spool = Spool.open(path);
    const id = await spool.accept(envelope, big, meta);
    await spool.close();
    const cli = (...args: string[]) => runCli([...args, '--config', config]);
    try {
      const show = await cli('queue', 'show', id, '--raw');
      assert.equal(show.code, 0, show.stderr);
      assert.ok(show.bytes.equals(big), 'queue show --raw prints the body file');
      assert.equal((await cli('queue', 'verify')).code, 0);
      const out = join(dir.path, 'dump');
      assert.equal((await cli('queue', 'dump', '--raw', out)).code, 0);
      assert.ok(readFileSync(join(out, `${id}.eml`)).equals(big), 'dump --raw writes it whole');
      const deleted = await cli('queue', 'delete', id, '--yes');
      assert.equal(deleted.code, 0, deleted.stderr);
      assert.ok(!existsSync(join(path, 'bodies', id)), 'the file went with the record');
      assert.equal((await cli('queue', 'show', id)).code, 66);
    } finally {
      dir.cleanup();
    }
  });
});

describe('removal: the record first, then the file', () => {
  it('a removal whose commit fails keeps the file (and the record): never a record without its file', () =>
    withSpool(async (spool, path) => {
      const id = await spool.accept(envelope, message(100_000), meta);
      // The next commit fails after its transaction body ran (as a commit refused by the disk would).
      const root = (spool as unknown as { root: { childTransaction(cb: () => void): Promise<unknown> } }).root;
      const commit = root.childTransaction.bind(root);
      root.childTransaction = (cb) => {
        root.childTransaction = commit;
        return commit(() => {
          cb();
          throw new Error('simulated commit failure');
        });
      };
      await assert.rejects(spool.remove(id), /simulated commit failure/);
      assert.ok(spool.get(id), 'the record is still there');
      assert.ok(existsSync(join(path, 'bodies', id)), 'so is its file');
      await spool.remove(id);
      assert.ok(!existsSync(join(path, 'bodies', id)), 'a removal that commits unlinks it');
    }));
});

describe('damaged body files', () => {
  it('a flipped byte fails the stream before its end (the last chunk is never passed on) and marks the body damaged', () =>
    withSpool(async (spool, path) => {
      const big = message(1 << 20);
      const id = await spool.accept(envelope, big, meta);
      const fd = openSync(join(path, 'bodies', id), 'r+');
      writeSync(fd, Buffer.from('X'), 0, 1, 500_000);
      closeSync(fd);
      const body = spool.openBody(spool.get(id)!);
      assert.ok(!('problem' in body), 'same size: only the checksum can tell');
      try {
        const read = await drain(body.stream());
        assert.equal(read.ended, false, 'the stream never ends');
        assert.ok(read.error instanceof SpoolError && read.error.code === 'ESPOOLDAMAGED', String(read.error));
        assert.ok(read.bytes < big.length, `${read.bytes} of ${big.length} bytes passed on`);
        assert.match(body.damage ?? '', /checksum mismatch/);
        await assert.rejects(body.buffer(), /checksum mismatch/);
      } finally {
        body.close();
      }
    }));

  it('a missing or truncated file: openBody says why, the integrity check reports it, start-up holds the message', () =>
    withSpool(async (spool, path) => {
      const missing = await spool.accept(envelope, message(100_000, 'missing'), meta);
      const truncated = await spool.accept(envelope, message(100_000, 'truncated'), meta);
      const fine = await spool.accept(envelope, message(100_000, 'fine'), meta);
      unlinkSync(join(path, 'bodies', missing));
      truncateSync(join(path, 'bodies', truncated), 50_000);
      const opened = spool.openBody(spool.get(missing)!);
      assert.ok('problem' in opened && /is missing/.test(opened.problem), JSON.stringify(opened));
      const cut = spool.openBody(spool.get(truncated)!);
      assert.ok('problem' in cut && /is 50000 bytes/.test(cut.problem), JSON.stringify(cut));
      const report = verifySpool(spool);
      assert.deepEqual(report.damaged.map((d) => d.id).sort(), [missing, truncated].sort());
      const lines: Array<Record<string, unknown>> = [];
      await checkSpoolAtStart(spool, silentLog(lines));
      assert.equal(deliveryState(spool.get(missing)!).name, 'damaged');
      assert.equal(deliveryState(spool.get(truncated)!).name, 'damaged');
      assert.equal(deliveryState(spool.get(fine)!).name, 'pending', 'the others are served');
      assert.deepEqual(spool.dueIds(Date.now() + 1000, 10), [fine]);
    }));
});

describe('start-up removes body files no record names', () => {
  it('after verifying: an orphan (crash between file and commit) goes, a named file stays', () =>
    withSpool(async (spool, path) => {
      const kept = await spool.accept(envelope, message(100_000), meta);
      const orphan = newQueueId();
      writeFileSync(join(path, 'bodies', orphan), message(100_000), { mode: 0o600 });
      assert.deepEqual(verifySpool(spool).orphanBodies, [orphan], 'queue verify names it');
      const lines: Array<Record<string, unknown>> = [];
      await checkSpoolAtStart(spool, silentLog(lines));
      assert.deepEqual(readdirSync(join(path, 'bodies')), [kept]);
      assert.deepEqual(lines.find((l) => l.event === 'spool-orphan-bodies')?.removed, [orphan]);
      assert.ok(!lines.some((l) => l.event === 'spool-verify'), 'the removed orphan is not reported as a problem');
      assert.ok(spool.body(kept)!.length > 0);
    }));
});
