/**
 * The maildir upstream reports a delivery only once the message's bytes and its name are on disk:
 * with strace making the file's fsync fail, or the directory's, the attempt fails (the scheduler
 * retries it) and no half-written file is left; without faults the message is there, whole.
 * Runs the upstream in a child node process started under strace (nothing else in it fsyncs).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { REPO } from '../helpers/daemon.js';
import { tempDir } from '../helpers/tmp.js';
import { checked, straceMissing } from './helpers.js';

const SCRIPT = `
const { MaildirUpstream } = await import(process.argv[1]);
const { bufferBody } = await import(process.argv[3]);
const upstream = new MaildirUpstream({ name: 'out', type: 'maildir', path: process.argv[2] });
const [r] = await upstream.send({ id: 'Q1', sender: 'a@example.org', recipients: ['b@example.net'], body: bufferBody(Buffer.from('Subject: whole\\r\\n\\r\\nbody\\r\\n')) });
process.stdout.write(JSON.stringify(r.result));
`;

/** Runs one send; with `fault`, under strace injecting it (only into syscalls on `onlyPath`, when given). */
function sendUnder(fault: string | undefined, dir: string, onlyPath?: string): { kind: string; errorCode?: string } {
  const node = [process.execPath, '--input-type=module', '-e', SCRIPT, join(REPO, 'dist/src/upstreams/maildir.js'), dir, join(REPO, 'dist/src/message/body.js')];
  const args = fault ? ['-f', '-o', '/dev/null', ...(onlyPath ? ['-P', onlyPath] : []), '-e', 'trace=fsync', '-e', `inject=${fault}`, ...node] : node;
  const run = spawnSync(fault ? 'strace' : node[0]!, fault ? args : args.slice(1), { encoding: 'utf8' });
  assert.equal(run.status, 0, run.stderr);
  return JSON.parse(run.stdout) as { kind: string; errorCode?: string };
}

describe('maildir upstream durability (strace)', { skip: straceMissing() }, () => {
  it('a failed fsync of the file: not delivered, no file left', (t) => {
    const dir = tempDir();
    try {
      // The file's fsync is the first one (strace counts per thread: the directory's comes after it on any thread).
      const result = sendUnder('fsync:error=EIO:when=1', dir.path);
      assert.deepEqual([result.kind, result.errorCode], ['network', 'EIO']);
      assert.deepEqual(readdirSync(dir.path), []);
      checked(t, 'fsync(file) = EIO → network EIO, directory empty');
    } finally {
      dir.cleanup();
    }
  });

  it('a failed fsync of the directory after the rename: not delivered (retried later)', (t) => {
    const dir = tempDir();
    try {
      const result = sendUnder('fsync:error=EIO', dir.path, dir.path); // -P: only the fsync of the directory itself
      assert.deepEqual([result.kind, result.errorCode], ['network', 'EIO']);
      checked(t, 'fsync(directory) = EIO → network EIO');
    } finally {
      dir.cleanup();
    }
  });

  it('without faults: delivered, one whole .eml file', () => {
    const dir = tempDir();
    try {
      assert.equal(sendUnder(undefined, dir.path).kind, 'accepted');
      const files = readdirSync(dir.path);
      assert.equal(files.length, 1);
      assert.match(files[0]!, /\.eml$/);
      assert.match(readFileSync(join(dir.path, files[0]!), 'utf8'), /^Return-Path: <a@example\.org>\r\nX-Envelope-To: b@example\.net\r\nSubject: whole\r\n\r\nbody\r\n$/);
    } finally {
      dir.cleanup();
    }
  });
});
