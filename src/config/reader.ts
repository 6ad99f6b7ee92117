/**
 * A small typed reader over one TOML table. Each accessor validates one key, records a problem
 * (with file, line and key path) instead of throwing, and remembers the key as known, so that
 * `finish()` can report unknown keys with a did-you-mean. Hand-written rather than a schema
 * library because the error format (file:line: path: expected X, got Y) is part of the contract.
 */
import { readFileSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import { parseDuration, parseRate, parseSize, type Rate } from './units.js';

export interface ReadContext {
  file: string;
  baseDir: string;
  env: NodeJS.ProcessEnv;
  lines: Map<string, number>;
  problems: string[];
  /** Files read as secrets (for permission checks at start). */
  secretFiles: string[];
  /** A secret is written literally in the config file (so the file itself must be private). */
  inlineSecrets: boolean;
  warnings: string[];
}

type TomlValue = unknown;

export function describe(value: TomlValue): string {
  if (typeof value === 'string') return JSON.stringify(value);
  if (Array.isArray(value)) return 'an array';
  if (value !== null && typeof value === 'object') return 'a table';
  return String(value);
}

function editDistance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let diagonal = row[0]!;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const above = row[j]!;
      row[j] = Math.min(row[j]! + 1, row[j - 1]! + 1, diagonal + (a[i - 1] === b[j - 1] ? 0 : 1));
      diagonal = above;
    }
  }
  return row[b.length]!;
}

export function didYouMean(key: string, known: Iterable<string>): string | undefined {
  let best: string | undefined;
  let bestScore = Infinity;
  for (const candidate of known) {
    const score = editDistance(key.toLowerCase(), candidate.toLowerCase());
    if (score < bestScore) {
      best = candidate;
      bestScore = score;
    }
  }
  return best !== undefined && bestScore <= Math.max(2, Math.floor(key.length / 3)) ? best : undefined;
}

export class TableReader {
  private readonly known = new Set<string>();

  constructor(
    private readonly ctx: ReadContext,
    readonly table: Record<string, TomlValue>,
    /** Path of this table, e.g. "" for the root, "spool", "upstream[0]". */
    readonly path: string,
  ) {}

  keyPath(key: string): string {
    return this.path ? `${this.path}.${key}` : key;
  }

  /** Records a problem about `key` (or the table itself when key is undefined). */
  problem(key: string | undefined, message: string): void {
    const path = key === undefined ? this.path : this.keyPath(key);
    const line = this.ctx.lines.get(path) ?? this.ctx.lines.get(this.path);
    const where = line === undefined ? this.ctx.file : `${this.ctx.file}:${line}`;
    this.ctx.problems.push(`${where}: ${path || '(top level)'}: ${message}`);
  }

  has(key: string): boolean {
    this.known.add(key);
    return this.table[key] !== undefined;
  }

  private raw(key: string): TomlValue {
    this.known.add(key);
    return this.table[key];
  }

  /** Replaces ${VAR} from the environment; an unset variable is an error, never an empty string. */
  private expand(key: string, value: string): string | undefined {
    let failed = false;
    const out = value.replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g, (_match, name: string) => {
      const found = this.ctx.env[name];
      if (found === undefined) {
        this.problem(key, `environment variable ${name} is not set`);
        failed = true;
        return '';
      }
      return found;
    });
    return failed ? undefined : out;
  }

  string(key: string): string | undefined;
  string(key: string, fallback: string): string;
  string(key: string, fallback?: string): string | undefined {
    const value = this.raw(key);
    if (value === undefined) return fallback;
    if (typeof value !== 'string') {
      this.problem(key, `expected a string, got ${describe(value)}`);
      return fallback;
    }
    return this.expand(key, value) ?? fallback;
  }

  required(key: string): string | undefined {
    if (this.table[key] === undefined) {
      this.known.add(key);
      this.problem(key, 'is required');
      return undefined;
    }
    return this.string(key);
  }

  oneOf<T extends string>(key: string, choices: readonly T[], fallback: T): T {
    const value = this.string(key);
    if (value === undefined) return fallback;
    if (!(choices as readonly string[]).includes(value)) {
      this.problem(key, `expected one of ${choices.map((c) => `"${c}"`).join(', ')}, got ${describe(value)}`);
      return fallback;
    }
    return value as T;
  }

  integer(key: string, min: number, max: number, fallback: number): number {
    const value = this.raw(key);
    if (value === undefined) return fallback;
    if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
      this.problem(key, `expected an integer ${min}-${max}, got ${describe(value)}`);
      return fallback;
    }
    return value;
  }

  boolean(key: string, fallback: boolean): boolean {
    const value = this.raw(key);
    if (value === undefined) return fallback;
    if (typeof value !== 'boolean') {
      this.problem(key, `expected true or false, got ${describe(value)}`);
      return fallback;
    }
    return value;
  }

  duration(key: string, fallback: number): number {
    const value = this.string(key);
    if (value === undefined) return fallback;
    const ms = parseDuration(value);
    if (ms === undefined || ms <= 0) {
      this.problem(key, `expected a duration like "30s", "5m", "2h" or "5d", got ${describe(value)}`);
      return fallback;
    }
    return ms;
  }

  size(key: string, fallback: number): number {
    const value = this.raw(key);
    if (value === undefined) return fallback;
    if (typeof value === 'number' && Number.isInteger(value) && value > 0) return value;
    const bytes = typeof value === 'string' ? parseSize(value) : undefined;
    if (bytes === undefined || bytes <= 0) {
      this.problem(key, `expected a size like "512KB" or "25MB", got ${describe(value)}`);
      return fallback;
    }
    return bytes;
  }

  rate(key: string): Rate | undefined {
    const value = this.string(key);
    if (value === undefined) return undefined;
    const rate = parseRate(value);
    if (!rate) this.problem(key, `expected a rate like "10/s" or "120/m", got ${describe(value)}`);
    return rate;
  }

  stringList(key: string, fallback: string[]): string[] {
    const value = this.raw(key);
    if (value === undefined) return fallback;
    if (!Array.isArray(value) || value.some((item) => typeof item !== 'string')) {
      this.problem(key, `expected an array of strings, got ${describe(value)}`);
      return fallback;
    }
    const out: string[] = [];
    for (const item of value as string[]) {
      const expanded = this.expand(key, item);
      if (expanded !== undefined) out.push(expanded);
    }
    return out;
  }

  /** A path relative to the config file's directory. */
  path_(key: string, fallback?: string): string | undefined {
    const value = this.string(key) ?? fallback;
    if (value === undefined) return undefined;
    return isAbsolute(value) ? value : resolve(this.ctx.baseDir, value);
  }

  /** Reads the file named by `${key}_file` (trailing newlines trimmed), or `key` itself. */
  secret(key: string): string | undefined {
    const fileKey = `${key}_file`;
    const inline = this.string(key);
    const file = this.path_(fileKey);
    if (inline !== undefined && file !== undefined) {
      this.problem(fileKey, `set either ${key} or ${fileKey}, not both`);
      return inline;
    }
    if (file === undefined) {
      const raw = this.table[key];
      if (typeof raw === 'string' && !/^\$\{[A-Za-z_][A-Za-z0-9_]*\}$/.test(raw)) this.ctx.inlineSecrets = true;
      return inline;
    }
    this.ctx.secretFiles.push(file);
    return this.readFile(fileKey, file)?.replace(/[\r\n]+$/, '');
  }

  /** A file holding private material that is read later (TLS key, users file). */
  privateFile(key: string): string | undefined {
    const file = this.path_(key);
    if (file !== undefined) this.ctx.secretFiles.push(file);
    return file;
  }

  warn(key: string, message: string): void {
    const path = this.keyPath(key);
    const line = this.ctx.lines.get(path) ?? this.ctx.lines.get(this.path);
    this.ctx.warnings.push(`${line === undefined ? this.ctx.file : `${this.ctx.file}:${line}`}: ${path}: ${message}`);
  }

  readFile(key: string, file: string): string | undefined {
    try {
      return readFileSync(file, 'utf8');
    } catch (error) {
      const reason = (error as NodeJS.ErrnoException).code ?? String(error);
      this.problem(key, `cannot read ${file}: ${reason}`);
      return undefined;
    }
  }

  /** Sub-table (e.g. [spool]) — an absent table reads as empty. */
  child(key: string): TableReader {
    const value = this.raw(key);
    if (value !== undefined && (typeof value !== 'object' || value === null || Array.isArray(value))) {
      this.problem(key, `expected a table, got ${describe(value)}`);
    }
    const table = value && typeof value === 'object' && !Array.isArray(value) ? (value as Record<string, TomlValue>) : {};
    return new TableReader(this.ctx, table, this.keyPath(key));
  }

  /** Array of tables (e.g. [[upstream]]). */
  children(key: string): TableReader[] {
    const value = this.raw(key);
    if (value === undefined) return [];
    if (!Array.isArray(value) || value.some((item) => typeof item !== 'object' || item === null || Array.isArray(item))) {
      this.problem(key, `expected [[${key}]] tables, got ${describe(value)}`);
      return [];
    }
    return (value as Record<string, TomlValue>[]).map((table, i) => new TableReader(this.ctx, table, `${this.keyPath(key)}[${i}]`));
  }

  /** Reports keys no accessor asked for. */
  finish(): void {
    for (const key of Object.keys(this.table)) {
      if (this.known.has(key)) continue;
      const suggestion = didYouMean(key, this.known);
      this.problem(key, `unknown key${suggestion ? ` (did you mean "${suggestion}"?)` : ''}`);
    }
  }
}
