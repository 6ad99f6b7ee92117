/** Reading and parsing the TOML file into a root TableReader; shared by the daemon's and the sendmail command's loaders. */
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { createRequire } from 'node:module';
import type * as SmolToml from 'smol-toml';
import { ConfigError } from '../errors.js';
import { locateLines } from './locate.js';
import { TableReader, type ReadContext } from './reader.js';

// smol-toml's CommonJS build is one file, its ESM build eight: loading the former is measurably
// faster, and the sendmail command pays this on every cron job (bench/sendmail-startup.mjs).
const { parse, TomlError } = createRequire(import.meta.url)('smol-toml') as typeof SmolToml;

export const DEFAULT_CONFIG_PATH = '/etc/mailshim/mailshim.toml';

/** `--config FILE`, else $MAILSHIM_CONFIG, else /etc/mailshim/mailshim.toml. */
export function configPath(flag: string | undefined, env: NodeJS.ProcessEnv = process.env): string {
  return flag ?? env.MAILSHIM_CONFIG ?? DEFAULT_CONFIG_PATH;
}

export function readConfigSource(file: string, hint = ''): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? String(error);
    throw new ConfigError(`${file}: cannot read config: ${code}${code === 'EACCES' ? hint : ''}`);
  }
}

export function parseDocument(source: string, file: string, env: NodeJS.ProcessEnv): { root: TableReader; ctx: ReadContext } {
  let document: Record<string, unknown>;
  try {
    document = parse(source);
  } catch (error) {
    if (error instanceof TomlError) {
      const firstLine = error.message.split('\n')[0];
      throw new ConfigError(`${file}:${error.line}: ${firstLine}`);
    }
    throw error;
  }
  const ctx: ReadContext = { file, baseDir: dirname(resolve(file)), env, lines: locateLines(source), problems: [], secretFiles: [], inlineSecrets: false, warnings: [] };
  return { root: new TableReader(ctx, document, ''), ctx };
}
