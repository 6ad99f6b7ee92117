/**
 * Like ssh, refuse to run with secrets that other local users can read: a config file with an
 * inline secret, `*_file` secrets, TLS keys and users files must not be readable by group or others.
 */
import { statSync } from 'node:fs';
import type { Config } from './types.js';

export function permissionProblems(config: Config): string[] {
  const problems: string[] = [];
  const files = [...(config.inlineSecrets ? [config.file] : []), ...config.secretFiles];
  for (const file of new Set(files)) {
    let mode: number;
    try {
      mode = statSync(file).mode;
    } catch {
      continue; // unreadable files are reported by the loader
    }
    if ((mode & 0o077) !== 0) {
      const what = file === config.file ? 'contains a secret and' : 'holds a secret and';
      problems.push(`${file} ${what} is accessible by group/others (mode ${(mode & 0o777).toString(8)}); fix: chmod 600 ${file}`);
    }
  }
  return problems;
}
