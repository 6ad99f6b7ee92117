#!/usr/bin/env node
/**
 * Build step (after tsc): bundles the sendmail hot path — dist/src/cli/sendmail.js and what it
 * imports statically — into one CommonJS file, dist/src/cli/sendmail.bundle.cjs, which
 * bin/sendmail (bin/sendmail-entry.cjs) loads when present, then has
 * scripts/sendmail-code-cache.mjs make its V8 code cache. cron runs sendmail once per job;
 * starting Node's ES module loader, resolving and compiling ~14 modules is a measurable part of
 * its start-up (docs/performance.md). CommonJS because an ES module entry starts that loader.
 *
 * Kept out of the bundle, so that there is exactly one copy of each at run time:
 * - npm packages, except the two small ones every submission loads (INLINED below);
 * - modules loaded on demand (-bs, -bp, -bi, -t, the maildrop fallback): they stay separate
 *   ES module files in dist/src, required (require of an ES module) from the bundle by a path
 *   rewritten to be relative to it;
 * - src/errors.ts, because those on-demand modules throw its classes and the entry tests them
 *   with instanceof: a second, bundled copy of the classes would not match. The bundle loads it
 *   (require of an ES module, Node >= 20.19) on first use, which is on an error path only.
 *
 * Without esbuild (a devDependency) the step removes any earlier bundle and cache, and
 * bin/sendmail uses the plain modules.
 */
import { spawnSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { dirname, relative, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const entry = resolve(REPO, 'dist/src/cli/sendmail.js');
const outfile = resolve(REPO, 'dist/src/cli/sendmail.bundle.cjs');
const cacheFile = resolve(REPO, 'dist/src/cli/sendmail.bundle.cache');
const errorsModule = resolve(REPO, 'dist/src/errors.js');
// The ES module bundle of earlier builds: bin/sendmail no longer loads it.
rmSync(resolve(REPO, 'dist/src/cli/sendmail.bundle.js'), { force: true });

let esbuild;
try {
  esbuild = await import('esbuild');
} catch {
  // A bundle (and its cache) from an earlier build would be stale.
  rmSync(outfile, { force: true });
  rmSync(cacheFile, { force: true });
  process.stderr.write('bundle-sendmail: esbuild is not installed; bin/sendmail will load the unbundled modules\n');
  process.exit(0);
}

/** The specifier of `target` relative to the bundle. */
function fromBundle(target) {
  const path = relative(dirname(outfile), target);
  return path.startsWith('.') ? path : `./${path}`;
}

/** Imports that must stay separate files: external, with the path made relative to the bundle. */
const keepSeparate = {
  name: 'keep-separate',
  setup(build) {
    build.onResolve({ filter: /^\.\.?\// }, (args) => {
      const target = resolve(args.resolveDir, args.path);
      // The imports of errors.js go to the module below, whose require() stays a require.
      if (target === errorsModule && args.kind !== 'require-call') return { path: 'errors.js', namespace: 'errors-on-first-use' };
      if (target !== errorsModule && args.kind !== 'dynamic-import') return undefined;
      return { path: fromBundle(target), external: true };
    });
    // errors.js as a CommonJS module of getters: required the first time a class is used.
    build.onLoad({ filter: /.*/, namespace: 'errors-on-first-use' }, async () => {
      const names = Object.keys(await import(pathToFileURL(errorsModule).href));
      const getters = names.map((name) => `  get ${name}() { return errors().${name}; },`).join('\n');
      return {
        loader: 'js',
        resolveDir: dirname(outfile),
        contents: `let loaded;\nconst errors = () => (loaded ??= require(${JSON.stringify(fromBundle(errorsModule))}));\nmodule.exports = {\n${getters}\n};\n`,
      };
    });
  },
};

/**
 * npm packages stay external, except these two small, dependency-free ones the hot path always
 * loads: bundled, they cost no package resolution (package.json "exports") on every cron job. Neither holds state or classes another
 * module checks with instanceof, so a second copy in a lazily loaded path is harmless.
 */
const INLINED = new Set(['smol-toml', 'nodemailer/lib/addressparser']);
function packagesExternalBut(inlined) {
  return {
    name: 'packages-external-but',
    setup(build) {
      build.onResolve({ filter: /^[^./]/ }, (args) => (inlined.has(args.path) ? undefined : { path: args.path, external: true }));
    },
  };
}

await esbuild.build({
  entryPoints: [entry],
  outfile,
  bundle: true,
  platform: 'node',
  format: 'cjs',
  target: 'node20',
  // import() becomes require() of the ES module (Node >= 20.19, 22.12): an import() in a script
  // compiled with a V8 code cache finds no module loader (ERR_VM_DYNAMIC_IMPORT_CALLBACK_MISSING).
  supported: { 'dynamic-import': false },
  plugins: [keepSeparate, packagesExternalBut(INLINED)],
  legalComments: 'none',
  logLevel: 'warning',
  banner: { js: '// Generated by scripts/bundle-sendmail.mjs from dist/src/cli/sendmail.js: do not edit.' },
});

// The V8 code cache, made by a separate Node process without extra flags (V8 accepts a cache only
// from the same version with the same flags): see the script. A failure leaves no cache, which
// costs start-up time, not correctness.
rmSync(cacheFile, { force: true });
const env = { ...process.env };
delete env.NODE_OPTIONS;
const message = 'From: cron@build.invalid\nSubject: code cache\n\nA typical cron job report.\n';
const made = spawnSync(process.execPath, [resolve(REPO, 'scripts/sendmail-code-cache.mjs')], { env, input: message, stdio: ['pipe', 'inherit', 'inherit'] });
if (made.status !== 0) process.stderr.write(`bundle-sendmail: no code cache for the bundle (status ${made.status ?? made.signal}); bin/sendmail compiles it from source\n`);
