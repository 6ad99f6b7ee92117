/**
 * The aliases file, sendmail/Postfix format:
 *
 *     # comment
 *     postmaster: root
 *     root: ops@example.com, "Jane Doe" <jane@example.com>,
 *         oncall            (a line starting with white space continues the previous one)
 *
 * Names are case-insensitive. Targets are addresses or other local names. `:include:file`,
 * `|program` and `/file` targets are *refused*: mailshim only relays, it never runs a program or
 * writes a mailbox on behalf of an alias (that is how an aliases line becomes code execution).
 * Refused targets are reported as warnings with their line; they never stop the rest working.
 * Hand-written: no maintained npm package parses this format (it is ~80 lines).
 */
import { readFileSync } from 'node:fs';
import { parseMailbox, splitAddressList, validAddress } from '../message/addresses.js';

export type AliasTarget = { kind: 'address'; address: string; line: number; noExpand: boolean } | { kind: 'refused'; text: string; reason: string; line: number };

export interface AliasEntry {
  name: string;
  line: number;
  targets: AliasTarget[];
}

export interface AliasTable {
  file: string;
  entries: Map<string, AliasEntry>;
  /** Errors (the line is skipped), e.g. `/etc/aliases:3: expected "name: target, ..."`. */
  problems: string[];
  /** Refused targets, e.g. `/etc/aliases:7: backup: refused "|/usr/bin/backup" (programs are never run)`. */
  warnings: string[];
}

export function emptyAliases(file = '(none)'): AliasTable {
  return { file, entries: new Map(), problems: [], warnings: [] };
}

function readTarget(raw: string, line: number): AliasTarget | string {
  let text = raw;
  const quotedWhole = /^"(.*)"$/.exec(text);
  if (quotedWhole) text = quotedWhole[1]!.replace(/\\(.)/g, '$1');
  if (/^:include:/i.test(text)) return { kind: 'refused', text: raw, reason: 'include files are not supported', line };
  if (text.startsWith('|')) return { kind: 'refused', text: raw, reason: 'programs are never run', line };
  if (text.startsWith('/')) return { kind: 'refused', text: raw, reason: 'mailbox files are never written', line };
  const noExpand = text.trim().startsWith('\\');
  const mailbox = parseMailbox(noExpand ? text.trim().slice(1) : text);
  const address = mailbox && validAddress(mailbox.address, { requireDomain: false });
  if (!address) return `invalid target ${JSON.stringify(raw)}`;
  return { kind: 'address', address, line, noExpand };
}

export function parseAliases(source: string, file: string): AliasTable {
  const table = emptyAliases(file);
  // Join continuation lines, remembering where each logical line started.
  const logical: Array<{ line: number; text: string }> = [];
  source.split(/\r?\n/).forEach((text, index) => {
    if (/^\s*#/.test(text) || text.trim() === '') return;
    if (/^[ \t]/.test(text) && logical.length > 0) {
      logical[logical.length - 1]!.text += ' ' + text.trim();
      return;
    }
    logical.push({ line: index + 1, text });
  });
  for (const { line, text } of logical) {
    const where = `${file}:${line}`;
    const match = /^\s*("[^"]+"|[^\s:]+)\s*:(.*)$/.exec(text);
    if (!match) {
      table.problems.push(`${where}: expected "name: target, target, ...", got ${JSON.stringify(text.trim())}`);
      continue;
    }
    const name = match[1]!.replace(/^"|"$/g, '').toLowerCase();
    if (table.entries.has(name)) {
      table.problems.push(`${where}: ${name}: duplicate alias (first defined on line ${table.entries.get(name)!.line})`);
      continue;
    }
    const targets: AliasTarget[] = [];
    const raws = splitAddressList(match[2]!, { groups: false });
    if (raws.length === 0) {
      table.problems.push(`${where}: ${name}: no targets`);
      continue;
    }
    let bad = false;
    for (const raw of raws) {
      const target = readTarget(raw, line);
      if (typeof target === 'string') {
        table.problems.push(`${where}: ${name}: ${target}`);
        bad = true;
        continue;
      }
      if (target.kind === 'refused') table.warnings.push(`${where}: ${name}: refused ${JSON.stringify(target.text)} (${target.reason})`);
      targets.push(target);
    }
    if (!bad) table.entries.set(name, { name, line, targets });
  }
  return table;
}

/** Reads and parses the file; a missing file is an empty table (no aliases), other read errors throw. */
export function loadAliases(file: string): AliasTable {
  let source: string;
  try {
    source = readFileSync(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return emptyAliases(file);
    throw error;
  }
  return parseAliases(source, file);
}
