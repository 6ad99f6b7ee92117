/** Reading and parsing the TOML file into a root TableReader; shared by the daemon's and the sendmail command's loaders. */
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { ConfigError } from '../errors.js';
import { locateLines } from './locate.js';
import { TableReader, type ReadContext } from './reader.js';

// The sendmail command has smol-toml bundled in (scripts/bundle-sendmail.mjs): no package to resolve on every cron job.
import { parse, TomlError } from 'smol-toml';

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
