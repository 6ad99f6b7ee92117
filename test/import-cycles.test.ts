// The layers import one way (intake → spool → delivery → upstream), and no module
// imports itself back through another. This walks the compiled import graph of
// dist/src — so it sees runtime imports only (`import type` is erased by tsc) —
// following static `import … from` / `export … from` specifiers, side-effect
// `import '…'` and dynamic `import('…')` with a literal specifier, resolved relative to
// each file, and fails on any cycle. A lazy import() still makes the two modules depend
// on each other (cli/sendmail ↔ cli/sendmail-smtp was one): deferring a load is fine,
// a loop is not.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const srcRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..', 'src');

function jsFiles(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) out.push(...jsFiles(path));
    else if (name.endsWith('.js')) out.push(path);
  }
  return out;
}

// Static specifiers only: `import x from '…'`, `import {…} from '…'`, `export … from '…'`,
// `import '…'`. A dynamic `import('…')` has a parenthesis before the quote and never matches.
const STATIC = /^\s*(?:import|export)\s(?:[^'"();]*?\sfrom\s*)?['"]([^'"]+)['"]/gm;
// `import('…')` with a string literal (tsc keeps these as written).
const DYNAMIC = /\bimport\(\s*['"]([^'"]+)['"]\s*\)/g;

function specifiers(text: string): string[] {
  return [...text.matchAll(STATIC), ...text.matchAll(DYNAMIC)].map((m) => m[1]!);
}

export function importGraph(root: string): Map<string, string[]> {
  const graph = new Map<string, string[]>();
  for (const file of jsFiles(root)) {
    const text = readFileSync(file, 'utf8');
    const edges: string[] = [];
    for (const spec of specifiers(text)) {
      if (!spec.startsWith('.')) continue; // packages and node: builtins
      edges.push(resolve(dirname(file), spec));
    }
    graph.set(file, edges);
  }
  return graph;
}

/** Every elementary cycle reachable by DFS, one representative per back edge. */
export function findCycles(graph: Map<string, string[]>): string[][] {
  const cycles: string[][] = [];
  const state = new Map<string, 'open' | 'done'>();
  const stack: string[] = [];
  const visit = (node: string): void => {
    state.set(node, 'open');
    stack.push(node);
    for (const next of graph.get(node) ?? []) {
      const s = state.get(next);
      if (s === 'open') cycles.push([...stack.slice(stack.indexOf(next)), next]);
      else if (s === undefined && graph.has(next)) visit(next);
    }
    stack.pop();
    state.set(node, 'done');
  };
  for (const node of [...graph.keys()].sort()) if (!state.has(node)) visit(node);
  return cycles;
}

test('the import graph of src (static and dynamic) has no cycles', () => {
  const graph = importGraph(srcRoot);
  assert.ok(graph.size > 50, `expected the compiled sources under ${srcRoot}`);
  const cycles = findCycles(graph).map((c) => c.map((f) => relative(srcRoot, f)).join(' → '));
  assert.deepEqual(cycles, []);
});

test('the cycle finder sees import, export-from, side-effect and import() edges', () => {
  const g = new Map<string, string[]>([
    ['a', ['b']],
    ['b', ['c']],
    ['c', ['a']],
    ['d', ['a']],
  ]);
  assert.deepEqual(findCycles(g), [['a', 'b', 'c', 'a']]);
  const sample = [
    "import { x } from './a.js';",
    "export { y } from './b.js';",
    "export * from './c.js';",
    "import './d.js';",
    "import {\n  z,\n  w,\n} from './e.js';",
    "const m = await import('./f.js');",
    "import pino from 'pino';",
    'const [{ g }, h] = await Promise.all([import(\'./g.js\'), import("./h.js")]);',
  ].join('\n');
  assert.deepEqual(specifiers(sample), ['./a.js', './b.js', './c.js', './d.js', './e.js', 'pino', './f.js', './g.js', './h.js']);
});
