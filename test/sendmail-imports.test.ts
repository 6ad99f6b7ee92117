/**
 * The sendmail entry's static import graph (what every cron job loads) must stay small: no
 * yargs, pino, lmdb, smtp-server or nodemailer (except its one-file address parser). Walks the compiled modules' static imports;
 * `import()` expressions (lazy paths: -bs, -bp, -bi, the maildrop fallback) are not followed.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { REPO } from './helpers/daemon.js';
import { staticGraph } from './helpers/import-graph.js';

describe('sendmail start-up import graph', () => {
  it('loads only the small modules a plain submission needs', () => {
    const { files, packages } = staticGraph(join(REPO, 'dist/src/cli/sendmail.js'));
    // addressparser is one dependency-free file: command-line recipients are RFC 5322 address lists.
    assert.deepEqual([...packages].sort(), ['nodemailer/lib/addressparser', 'smol-toml']);
    const names = [...files].map((f) => f.slice(join(REPO, 'dist/src/').length)).sort();
    for (const heavy of ['log.js', 'spool/spool.js', 'daemon.js', 'intake/smtp.js', 'cli/main.js', 'local/aliases.js']) {
      assert.ok(!names.includes(heavy), `${heavy} must not be on the hot path: ${names.join(', ')}`);
    }
    // 17 since the submission logic moved out of src/cli into src/sendmail/submission.ts; the
    // build bundles these into one file anyway (next test), so the count guards against
    // heavy modules creeping in, not against file boundaries.
    assert.ok(names.length <= 17, `static graph has ${names.length} modules: ${names.join(', ')}`);
  });

  it('the build bundles the hot path into one CommonJS file that requires only Node built-ins up front', (t) => {
    const bundle = join(REPO, 'dist/src/cli/sendmail.bundle.cjs');
    if (!existsSync(bundle)) return t.skip('no bundle in this build (esbuild not installed)');
    const source = readFileSync(bundle, 'utf8');
    const required = [...source.matchAll(/\brequire\("([^"]+)"\)/g)].map((m) => m[1]!);
    // The two npm packages the hot path loads, the config parser and nodemailer's one-file,
    // dependency-free address parser, are bundled in: no package resolution at run time.
    assert.deepEqual(
      required.filter((s) => !s.startsWith('node:') && !s.startsWith('.')),
      [],
    );
    // At its top level only Node's modules; project modules are ES modules required on first use:
    // the lazy paths (-bs, mailq, the maildrop fallback), and errors.js, kept separate so that the
    // SubmitError a lazily loaded module throws is the class the entry tests.
    const topLevel = [...source.matchAll(/^var \w+ = require\("([^"]+)"\);$/gm)].map((m) => m[1]!);
    assert.ok(topLevel.length > 0 && topLevel.every((s) => s.startsWith('node:')), topLevel.join(', '));
    assert.equal(required.filter((s) => s === '../errors.js').length, 1);
    assert.doesNotMatch(source, /class (MailshimError|SubmitError)\b/);
    // An import() finds no module loader in a script compiled with a V8 code cache (bin/sendmail-entry.cjs).
    assert.doesNotMatch(source, /\bimport\(/);
  });

  it('the graph walker sees heavy imports (it can fail)', () => {
    const { packages } = staticGraph(join(REPO, 'dist/src/daemon.js'));
    assert.ok(packages.has('lmdb') && packages.has('smtp-server'), [...packages].join(', '));
  });
});
