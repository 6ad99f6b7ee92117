// docs/configuration.md is the operator's list of every config key. This test keeps it honest
// both ways: every key the loader reads (src/config, through TableReader's accessors) must be
// documented in docs/configuration.md or docs/providers.md, and every key the configuration
// examples show must be one the loader reads. It reads the TypeScript sources (test/.. is the
// repository from dist/test/.. too), so it needs no build of the docs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const read = (path: string) => readFileSync(join(repo, path), 'utf8');

/** TableReader's accessors that read one key (src/config/reader.ts). */
const ACCESSORS = ['string', 'required', 'oneOf', 'integer', 'boolean', 'duration', 'size', 'rate', 'stringList', 'path_', 'secret', 'privateFile', 'child', 'children'];
/** src/config helpers that take a TableReader and the key they read as their second argument. */
const KEY_HELPERS = ['mailbox', 'requiredSecret'];
/** Helpers that read a secret: `key` inline or `key_file` (TableReader.secret). */
const SECRET_READERS = ['secret', 'requiredSecret'];

export function keysReadByCode(sources: string[]): Set<string> {
  const keys = new Set<string>();
  const accessor = new RegExp(`\\.(${ACCESSORS.join('|')})(?:<[^>]*>)?\\(\\s*'([A-Za-z0-9_]+)'`, 'g');
  const helper = new RegExp(`\\b(${KEY_HELPERS.join('|')})\\(\\s*\\w+,\\s*'([A-Za-z0-9_]+)'`, 'g');
  for (const text of sources) {
    for (const m of [...text.matchAll(accessor), ...text.matchAll(helper)]) {
      keys.add(m[2]!);
      if (SECRET_READERS.includes(m[1]!)) keys.add(`${m[2]}_file`);
    }
    // readEndpoint(table, fallback, key = 'endpoint') in src/config/endpoint.ts.
    for (const line of text.split('\n').filter((l) => /\breadEndpoint\(table,/.test(l))) {
      keys.add(/'([a-z_]+)'\)[^']*$/.exec(line)?.[1] ?? 'endpoint');
    }
  }
  return keys;
}

/** Keys assigned in the ```toml blocks of a markdown file, commented-out examples included. */
export function keysInTomlExamples(markdown: string): Set<string> {
  const keys = new Set<string>();
  for (const block of markdown.matchAll(/```toml\n([\s\S]*?)```/g)) {
    for (const m of block[1]!.matchAll(/^[ \t]*(?:#[ \t]*)?([a-z][a-z0-9_]*)[ \t]*=/gm)) keys.add(m[1]!);
    for (const m of block[1]!.matchAll(/^[ \t]*(?:#[ \t]*)?\[\[?([a-z][a-z0-9_.]*)\]\]?/gm)) for (const part of m[1]!.split('.')) keys.add(part);
  }
  return keys;
}

function documented(key: string, docs: string): boolean {
  const k = key.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  return new RegExp(`\`${k}(?:\\(_file\\))?\`|\\b${k}[ \\t]*=|\\[\\[?(?:[a-z_]+\\.)?${k}\\]\\]?`).test(docs);
}

function configSources(): string[] {
  const dir = join(repo, 'src', 'config');
  return readdirSync(dir)
    .filter((f) => f.endsWith('.ts'))
    .map((f) => readFileSync(join(dir, f), 'utf8'));
}

test('every config key the loader reads is documented', () => {
  const docs = read('docs/configuration.md') + '\n' + read('docs/providers.md');
  const code = keysReadByCode(configSources());
  assert.ok(code.size > 40, `expected the config keys of src/config, found ${code.size}`);
  assert.deepEqual([...code].filter((k) => !documented(k, docs)).sort(), []);
});

test('every key in the configuration examples is read by the loader', () => {
  const code = keysReadByCode(configSources());
  const shown = keysInTomlExamples(read('docs/configuration.md'));
  assert.ok(shown.size > 20, `expected the TOML examples of docs/configuration.md, found ${shown.size}`);
  assert.deepEqual([...shown].filter((k) => !code.has(k)).sort(), []);
});

test('the key extractors see accessors, helpers, secrets and tables', () => {
  const code = keysReadByCode([
    "table.duration('max_age', 5); t.oneOf<Mode>('tls', MODES, 'starttls'); root.children('upstream');",
    "table.secret('password'); requiredSecret(table, 'api_key'); mailbox(table, 'root');",
    'endpoint: readEndpoint(table, GRAPH_ENDPOINT),',
    "token: readEndpoint(table, f(x), 'token_endpoint'),",
  ]);
  assert.deepEqual([...code].sort(), ['api_key', 'api_key_file', 'endpoint', 'max_age', 'password', 'password_file', 'root', 'tls', 'token_endpoint', 'upstream']);
  assert.deepEqual([...keysInTomlExamples('```toml\n[[upstream]]\nname = "x"\n# ca_file = "y"\n[local.aliases]\n```\nz = 1\n')].sort(), ['aliases', 'ca_file', 'local', 'name', 'upstream']);
  assert.ok(documented('max_age', 'the `max_age` key') && documented('max_age', 'max_age = "5d"') && !documented('age', '`max_age`') && documented('api_key', '`api_key(_file)`'));
});
