'use strict';
/**
 * The sendmail-compatible entry (src/cli/sendmail.ts) for bin/sendmail, mailq and newaliases.
 * cron runs sendmail once per job, so its start-up is kept close to a bare `node` start
 * (docs/performance.md, "sendmail start-up"):
 *
 * - CommonJS (bin/package.json), so no ES module loader starts on the usual path. The build
 *   bundles the hot path into one CommonJS file, dist/src/cli/sendmail.bundle.cjs
 *   (scripts/bundle-sendmail.mjs); the paths it loads on demand (-bs, -bp, -bi, the maildrop
 *   fallback, errors.js on an error) stay ES modules, which it require()s (Node >= 20.19, 22.12).
 * - Compiled with the V8 code cache the build made for it (sendmail.bundle.cache, written by
 *   scripts/sendmail-code-cache.mjs), so the functions a submission runs are not compiled again
 *   on every run. The cache is used only if this Node made it from these exact bytes (the file
 *   holds a copy of the source it was made from: V8 itself compares only the source's length);
 *   V8 also rejects one made with other flags. Otherwise the bundle is compiled from source, as
 *   without a cache. Nothing here writes a file (docs/security.md).
 * - A build made without esbuild has no bundle: then the plain ES modules are loaded.
 */
const { readFileSync } = require('node:fs');
const { createRequire } = require('node:module');
const { dirname, join } = require('node:path');
const { Script } = require('node:vm');

const BUNDLE = join(__dirname, '../dist/src/cli/sendmail.bundle.cjs');
const CACHE = join(__dirname, '../dist/src/cli/sendmail.bundle.cache');
/**
 * Starts a cache file; then the bundle's source it was made from, then V8's cached data. It names
 * the Node that made it: one made by another is not even offered to V8 (which would reject it).
 */
const MAGIC = Buffer.from(`mailshim sendmail code cache 1 ${process.version} ${process.arch}\n`);

/** V8's data from a cache file made for `source` (a Buffer), or undefined when it was made for other bytes. */
function cachedDataFor(source, cache) {
  const start = MAGIC.length;
  const end = start + source.length;
  if (cache === undefined || cache.length <= end) return undefined;
  if (!cache.subarray(0, start).equals(MAGIC) || !cache.subarray(start, end).equals(source)) return undefined;
  return cache.subarray(end);
}

/** The cache file's bytes: what cachedDataFor() reads back. */
function encodeCache(source, cachedData) {
  return Buffer.concat([MAGIC, source, cachedData]);
}

function readIfThere(file) {
  try {
    return readFileSync(file);
  } catch {
    return undefined; // no cache, or one this user may not read: compile from source
  }
}

/**
 * Compiles and runs the bundle as a CommonJS module, with the cache when it fits. Returns its
 * exports, the Script (the cache is made from it) and how the cache was used: 'used', 'none'
 * (no cache file), 'stale' (made from other bytes) or 'rejected' (by V8). Undefined: no bundle.
 * The build's cache maker compiles the bundle through here too: V8 accepts a cache only when
 * the script is compiled the same way.
 */
function loadBundle(bundle = BUNDLE, cacheFile = CACHE, { useCache = true } = {}) {
  let source;
  try {
    source = readFileSync(bundle);
  } catch (error) {
    if (error.code === 'ENOENT') return undefined;
    throw error;
  }
  const cache = useCache ? readIfThere(cacheFile) : undefined;
  const cachedData = cachedDataFor(source, cache);
  const script = new Script(`(function (exports, require, module, __filename, __dirname) {${source.toString('utf8')}\n})`, {
    filename: bundle,
    cachedData,
  });
  const module = { exports: {} };
  script.runInThisContext()(module.exports, createRequire(bundle), module, bundle, dirname(bundle));
  const usage = cache === undefined ? 'none' : cachedData === undefined ? 'stale' : script.cachedDataRejected ? 'rejected' : 'used';
  return { exports: module.exports, script, source, usage };
}

function runSendmail(invokedAs) {
  const loaded = loadBundle();
  const argv = process.argv.slice(2);
  if (loaded) return loaded.exports.run(argv, invokedAs);
  import('../dist/src/cli/sendmail.js').then((entry) => entry.run(argv, invokedAs));
}

module.exports = { runSendmail, loadBundle, encodeCache, BUNDLE, CACHE, MAGIC };
