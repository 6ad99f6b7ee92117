/**
 * The sendmail entry's static import graph (what every cron job loads) must stay small: no
 * yargs, pino, lmdb, smtp-server or nodemailer (except its one-file address parser). Walks the compiled modules' static imports;
 * `import()` expressions (lazy paths: -bs, -bp, -bi, the maildrop fallback) are not followed.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { describe, it } from 'node:test';
import { REPO } from './helpers/daemon.js';

function staticGraph(entry: string): { files: Set<string>; packages: Set<string> } {
  const files = new Set<string>();
  const packages = new Set<string>();
  const visit = (file: string) => {
    if (files.has(file)) return;
    files.add(file);
    const source = readFileSync(file, 'utf8');
    for (const match of source.matchAll(/^\s*(?:import|export)\s[^'"()]*?from\s+['"]([^'"]+)['"]|^\s*import\s+['"]([^'"]+)['"]/gm)) {
      const specifier = (match[1] ?? match[2])!;
      if (specifier.startsWith('.')) visit(resolve(dirname(file), specifier));
      else if (!specifier.startsWith('node:')) packages.add(specifier);
    }
    // createRequire(...)('pkg') loads a package too
    for (const match of source.matchAll(/createRequire\([^)]*\)\(\s*['"]([^'"]+)['"]\s*\)/g)) packages.add(match[1]!);
  };
  visit(entry);
  return { files, packages };
}

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

  it('the build bundles the hot path into one file that shares errors.js with the lazy modules', (t) => {
    const bundle = join(REPO, 'dist/src/cli/sendmail.bundle.js');
    if (!existsSync(bundle)) return t.skip('no bundle in this build (esbuild not installed)');
    const { files, packages } = staticGraph(bundle);
    // npm packages stay outside the bundle: the config parser and nodemailer's one-file,
    // dependency-free address parser (the address module reads command-line recipients with it).
    assert.deepEqual([...packages].sort(), ['nodemailer/lib/addressparser', 'smol-toml']);
    // One project module besides the bundle: errors.js, kept separate so that the SubmitError a
    // lazily imported module (-bs, mailq, the maildrop fallback) throws is the class the entry tests.
    const names = [...files].map((f) => f.slice(join(REPO, 'dist/src/').length)).sort();
    assert.deepEqual(names, ['cli/sendmail.bundle.js', 'errors.js']);
    assert.doesNotMatch(readFileSync(bundle, 'utf8'), /class (MailshimError|SubmitError)\b/);
  });

  it('the graph walker sees heavy imports (it can fail)', () => {
    const { packages } = staticGraph(join(REPO, 'dist/src/daemon.js'));
    assert.ok(packages.has('lmdb') && packages.has('smtp-server'), [...packages].join(', '));
  });
});
