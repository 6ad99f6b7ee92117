/**
 * What bin/sendmail does at run time to start fast (docs/performance.md, "sendmail start-up";
 * the time itself is measured by bench/sendmail-startup.mjs, not here): which of Node's modules a
 * plain submission loads, stdin read with blocking reads (and a non-blocking stdin still read
 * whole), and the build's V8 code cache used only for the exact bytes it was made from.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import fs, { closeSync, copyFileSync, mkdirSync, openSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { createRequire, syncBuiltinESMExports } from 'node:module';
import { join } from 'node:path';
import { after, before, describe, it, type TestContext } from 'node:test';
import { readStdin } from '../src/cli/sendmail.js';
import { REPO, startDaemon, writeConfig, type RunningDaemon } from './helpers/daemon.js';
import { binPath } from './helpers/sendmail.js';
import { straceMissing } from './faults/helpers.js';
import { tempDir } from './helpers/tmp.js';

const ENTRY = join(REPO, 'bin/sendmail-entry.cjs');
const entry = createRequire(import.meta.url)(ENTRY) as { BUNDLE: string; CACHE: string; MAGIC: Buffer };
const has = (tool: string) => spawnSync('sh', ['-c', `command -v ${tool}`]).status === 0;
const MESSAGE = 'From: cron@example.org\nSubject: nightly job\n\nAll fine: 3 files rotated.\n';

/** Node's built-in modules a process loaded (process.moduleLoadList), written to fd 3 as it exits. */
function builtinsLoaded(dir: string, args: string[], options: { env?: NodeJS.ProcessEnv; stdin?: number } = {}): { modules: Set<string>; status: number | null; stdout: string; stderr: string } {
  const dump = join(dir, 'module-list.cjs');
  writeFileSync(dump, "process.on('exit', () => require('node:fs').writeSync(3, JSON.stringify(process.moduleLoadList)));\n");
  const result = spawnSync(process.execPath, ['--require', dump, ...args], {
    env: { ...process.env, ...options.env },
    stdio: [options.stdin ?? 'ignore', 'pipe', 'pipe', 'pipe'],
    encoding: 'utf8',
  });
  const output = result.output;
  return { modules: new Set(JSON.parse(output[3] || '[]') as string[]), status: result.status, stdout: result.stdout, stderr: result.stderr };
}

describe('sendmail start-up: a plain submission', () => {
  let dir: ReturnType<typeof tempDir>;
  let daemon: RunningDaemon;
  let config: string;

  before(async () => {
    dir = tempDir();
    config = writeConfig(
      dir.path,
      `hostname = "test.example"
[spool]
path = "${dir.path}/spool"
[submission]
socket = "${dir.path}/submit.sock"
[[listen]]
address = "127.0.0.1:0"
[[upstream]]
type = "maildir"
path = "${dir.path}/out"
`,
    );
    daemon = await startDaemon(config);
  });
  after(async () => {
    await daemon?.stop();
    dir?.cleanup();
  });

  it('loads no ES module loader, readline, fs/promises, crypto or stdin stream (the message comes from a file)', (t) => {
    if (!readdirSync(join(REPO, 'dist/src/cli')).includes('sendmail.bundle.cjs')) return t.skip('no bundle in this build (esbuild not installed)');
    const bare = builtinsLoaded(dir.path, ['-e', '0']);
    assert.equal(bare.status, 0, bare.stderr);
    writeFileSync(join(dir.path, 'message.eml'), MESSAGE);
    const stdin = openSync(join(dir.path, 'message.eml'), 'r');
    let run;
    try {
      run = builtinsLoaded(dir.path, [binPath('sendmail'), '-v', '-i', 'ops@example.com'], { env: { MAILSHIM_CONFIG: config }, stdin });
    } finally {
      closeSync(stdin);
    }
    assert.equal(run.status, 0, run.stderr);
    assert.match(run.stdout, /queued as \w+ by the daemon/);
    const added = [...run.modules].filter((m) => !bare.modules.has(m));
    assert.ok(added.includes('NativeModule net'), `the list is read: ${added.join(', ')}`);
    // process.stdin on a file is an fs.ReadStream (internal/fs/streams); an ES module entry starts
    // the loader (internal/modules/esm/*) and makes node:fs load its promises API.
    for (const unwanted of [
      /^NativeModule internal\/modules\/esm\//,
      /^NativeModule readline$/,
      /^NativeModule internal\/fs\/promises$/,
      /^NativeModule crypto$/,
      /^NativeModule internal\/fs\/streams$/,
    ]) {
      assert.deepEqual(
        added.filter((m) => unwanted.test(m)),
        [],
        `loaded beyond a bare node: ${added.join(', ')}`,
      );
    }
  });

  it('opens no file for writing: the code cache is only read (no option makes sendmail write a file)', (t) => {
    const missing = straceMissing();
    if (missing) return t.skip(missing);
    const log = join(dir.path, 'files.strace');
    const trace = ['openat', 'open', 'creat', 'mkdir', 'mkdirat', 'rename', 'renameat', 'renameat2', 'unlink', 'unlinkat', 'link', 'linkat', 'symlink', 'symlinkat', 'truncate'];
    const run = spawnSync('strace', ['-f', '-qq', '-o', log, '-e', `trace=${trace.join(',')}`, process.execPath, binPath('sendmail'), '-v', '-i', 'ops@example.com'], {
      env: { ...process.env, MAILSHIM_CONFIG: config },
      input: MESSAGE,
      encoding: 'utf8',
    });
    assert.equal(run.status, 0, run.stderr);
    assert.match(run.stdout, /queued as \w+ by the daemon/);
    const calls = readFileSync(log, 'utf8').split('\n');
    assert.ok(
      calls.some((c) => c.includes(`"${entry.CACHE}", O_RDONLY`)),
      'the cache was read',
    );
    assert.deepEqual(
      calls.filter((c) => /O_WRONLY|O_RDWR|O_CREAT|O_TRUNC/.test(c) || /^\d+\s+(creat|mkdir|rename|unlink|link|symlink|truncate)/.test(c)),
      [],
    );
  });

  it('reads a stdin its opener left non-blocking whole (EAGAIN: the rest as a stream)', async (t) => {
    if (!has('python3')) return t.skip('python3 not installed');
    // python3 sets O_NONBLOCK on the pipe, then execs sendmail; the message's second half comes a
    // second later, so a read finds the pipe empty.
    const exec = `import fcntl, os, sys; fcntl.fcntl(0, fcntl.F_SETFL, fcntl.fcntl(0, fcntl.F_GETFL) | os.O_NONBLOCK); os.execv(sys.argv[1], sys.argv[1:])`;
    const child = spawn('python3', ['-c', exec, process.execPath, binPath('sendmail'), '-v', '-i', 'ops@example.com'], {
      env: { ...process.env, MAILSHIM_CONFIG: config },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    child.stdin.write('From: cron@example.org\nSubject: non-blocking stdin\n\nfirst half,\n');
    setTimeout(() => child.stdin.end('second half (nonblocking-marker).\n'), 1000);
    const code = await new Promise<number | null>((resolve) => child.once('close', resolve));
    assert.equal(code, 0, output);
    const id = /queued as (\w+)/.exec(output)?.[1];
    assert.ok(id, output);
    await daemon.waitForLog((l) => l.event === 'delivery' && l.msg === 'delivered' && l.queueId === id);
    const delivered = readdirSync(join(dir.path, 'out')).map((f) => readFileSync(join(dir.path, 'out', f), 'utf8'));
    assert.ok(
      delivered.some((m) => m.includes('first half,\r\nsecond half (nonblocking-marker).')),
      'the whole message was queued',
    );
  });
});

describe('sendmail start-up: the V8 code cache', () => {
  let dir: ReturnType<typeof tempDir>;
  let config: string;

  before(() => {
    dir = tempDir();
    config = writeConfig(dir.path, `hostname = "test.example"\n[submission]\nsocket = "${dir.path}/none.sock"\n`);
  });
  after(() => dir?.cleanup());

  /**
   * Loads `bundle` with `cache` through bin/sendmail's loader in a plain `node`, as bin/sendmail
   * does, and runs `sendmail` without recipients: prints how the cache was used, then the error.
   */
  function load(bundle: string, cache: string): { usage: string; stderr: string; status: number | null } {
    const script = `const l = require(${JSON.stringify(ENTRY)}).loadBundle(${JSON.stringify(bundle)}, ${JSON.stringify(cache)}); console.log(l.usage); l.exports.run([], 'sendmail');`;
    const result = spawnSync(process.execPath, ['-e', script], { env: { ...process.env, MAILSHIM_CONFIG: config, NODE_OPTIONS: '' }, input: MESSAGE, encoding: 'utf8' });
    return { usage: result.stdout.trim(), stderr: result.stderr, status: result.status };
  }

  /** Skips a test that needs the build's cache to be one this Node would use (the suite may run under another Node than the build). */
  function noCacheForThisNode(t: TestContext): boolean {
    if (!readdirSync(join(REPO, 'dist/src/cli')).includes('sendmail.bundle.cjs')) {
      t.skip('no bundle in this build (esbuild not installed)');
      return true;
    }
    const made = readFileSync(entry.CACHE).subarray(0, entry.MAGIC.length);
    if (made.equals(entry.MAGIC)) return false;
    t.skip(`the build's cache was made by another Node (${made.toString().trim()}); this is ${process.version}`);
    return true;
  }

  /** A copy of the built bundle (and its cache) in a directory laid out like dist/src/cli. */
  function copyOfBuild(name: string): { bundle: string; cache: string } {
    const cli = join(dir.path, name, 'cli');
    mkdirSync(cli, { recursive: true });
    symlinkSync(join(REPO, 'dist/src/errors.js'), join(dir.path, name, 'errors.js'));
    const bundle = join(cli, 'sendmail.bundle.cjs');
    const cache = join(cli, 'sendmail.bundle.cache');
    copyFileSync(entry.BUNDLE, bundle);
    copyFileSync(entry.CACHE, cache);
    return { bundle, cache };
  }

  it('the build makes a cache for its bundle, and bin/sendmail uses it', (t) => {
    if (noCacheForThisNode(t)) return;
    const run = load(entry.BUNDLE, entry.CACHE);
    assert.equal(run.usage, 'used', run.stderr);
    assert.equal(run.status, 64, run.stderr);
    assert.match(run.stderr, /^sendmail: no recipients given/);
  });

  it('a cache made from other bytes of the same length is not used: the bundle on disk is what runs', (t) => {
    if (noCacheForThisNode(t)) return;
    // V8 checks only the source's length: with this cache it would run the old code, message and all.
    const { bundle, cache } = copyOfBuild('edited');
    const source = readFileSync(bundle, 'utf8');
    assert.ok(source.includes('no recipients given'));
    writeFileSync(bundle, source.replace('no recipients given', 'NO RECIPIENTS GIVEN'));
    const run = load(bundle, cache);
    assert.equal(run.usage, 'stale');
    assert.match(run.stderr, /^sendmail: NO RECIPIENTS GIVEN/);
  });

  it('a truncated cache, a foreign file and no cache at all: compiled from source, same result', (t) => {
    if (noCacheForThisNode(t)) return;
    const truncated = copyOfBuild('truncated');
    const bytes = readFileSync(truncated.cache);
    writeFileSync(truncated.cache, bytes.subarray(0, bytes.length - 1000)); // V8's part cut short: V8 rejects it
    const foreign = copyOfBuild('foreign');
    writeFileSync(foreign.cache, 'not a code cache\n');
    const missing = copyOfBuild('missing');
    for (const [{ bundle, cache }, usage] of [
      [truncated, 'rejected'],
      [foreign, 'stale'],
      [{ bundle: missing.bundle, cache: join(dir.path, 'no-such-file') }, 'none'],
    ] as const) {
      const run = load(bundle, cache);
      assert.equal(run.usage, usage, `${cache}: ${run.stderr}`);
      assert.equal(run.status, 64, run.stderr);
      assert.match(run.stderr, /^sendmail: no recipients given/);
    }
  });
});

describe('sendmail start-up: stdin that arrives a line at a time', () => {
  it('fills one 64 KiB buffer after another, never a buffer per read (which held 64 KiB per line of a slow writer)', async () => {
    // Stand-in for a pipe whose writer is slower than sendmail (`backup.sh | sendmail -t`): each
    // read(2) answers one line. readStdin's readSync is node:fs's, replaced here (syncBuiltinESMExports).
    const message = Buffer.from('a line of a backup log\n'.repeat(5000)); // 115 KB, 5000 reads
    const realReadSync = fs.readSync;
    const buffers = new Set<ArrayBufferLike>();
    let at = 0;
    const lineAtATime = (buffer: Buffer, offset: number, length: number): number => {
      buffers.add(buffer.buffer);
      const end = Math.min(message.indexOf(0x0a, at) + 1 || message.length, at + length);
      const got = message.copy(buffer, offset, at, end);
      at += got;
      return got;
    };
    fs.readSync = ((fd: number, ...rest: [Buffer, number, number]) => (fd === 0 ? lineAtATime(...rest) : (realReadSync as (...a: unknown[]) => number)(fd, ...rest))) as typeof fs.readSync;
    syncBuiltinESMExports();
    try {
      assert.deepEqual(await readStdin(), message);
    } finally {
      fs.readSync = realReadSync;
      syncBuiltinESMExports();
    }
    assert.ok(buffers.size <= 2, `${buffers.size} buffers for ${message.length} bytes`);
  });
});
