#!/usr/bin/env node
/**
 * Build step, run by scripts/bundle-sendmail.mjs in a Node process of its own without extra flags
 * (V8 accepts a code cache only from the same V8 version with the same flags): makes
 * dist/src/cli/sendmail.bundle.cache, the V8 code cache bin/sendmail compiles its bundle with
 * (bin/sendmail-entry.cjs). A cache holds the functions compiled so far, so this first runs one
 * ordinary submission — `sendmail -i` with the message on stdin, to a stand-in daemon on a
 * temporary socket that answers ok — and then saves the cache.
 *
 * Written at build (install) time by whoever builds; bin/sendmail only ever reads it (no option
 * makes sendmail write a file).
 */
import { mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const entry = createRequire(import.meta.url)('../bin/sendmail-entry.cjs');
const dir = mkdtempSync(join(tmpdir(), 'mailshim-code-cache-'));
try {
  const socket = join(dir, 'submit.sock');
  writeFileSync(join(dir, 'mailshim.toml'), `hostname = "build.invalid"\n[submission]\nsocket = ${JSON.stringify(socket)}\n`);
  process.env.MAILSHIM_CONFIG = join(dir, 'mailshim.toml');
  // Answers one request (a header line with the body's size, then the body) the way the daemon does.
  const daemon = createServer((client) => {
    let received = Buffer.alloc(0);
    client.on('data', (chunk) => {
      received = Buffer.concat([received, chunk]);
      const newline = received.indexOf(0x0a);
      if (newline !== -1 && received.length - newline - 1 >= JSON.parse(received.subarray(0, newline).toString('utf8')).size) {
        client.end(`${JSON.stringify({ ok: true, id: 'CODECACHE' })}\n`);
      }
    });
  });
  await new Promise((resolve) => daemon.listen(socket, resolve));
  const loaded = entry.loadBundle(entry.BUNDLE, entry.CACHE, { useCache: false });
  if (!loaded) throw new Error(`no bundle at ${entry.BUNDLE}`);
  const code = await loaded.exports.sendmail(['-i', 'code-cache@build.invalid'], 'sendmail');
  daemon.close();
  if (code !== 0) throw new Error(`the warm-up submission exited ${code}`);
  const temporary = `${entry.CACHE}.${process.pid}.tmp`;
  writeFileSync(temporary, entry.encodeCache(loaded.source, loaded.script.createCachedData()));
  renameSync(temporary, entry.CACHE);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
