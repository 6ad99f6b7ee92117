/** The listener users file: `name:hash` lines (hashes from `mailshim passwd`), `#` comments. */
import { readFileSync } from 'node:fs';
import { parseHash } from '../auth/passwords.js';
import { ConfigError } from '../errors.js';

export function parseUsers(text: string, file: string): Map<string, string> {
  const users = new Map<string, string>();
  const problems: string[] = [];
  text.split(/\r?\n/).forEach((line, index) => {
    const trimmed = line.trim();
    if (trimmed === '' || trimmed.startsWith('#')) return;
    const colon = trimmed.indexOf(':');
    const name = trimmed.slice(0, colon);
    const hash = trimmed.slice(colon + 1);
    if (colon < 1 || !parseHash(hash)) {
      problems.push(`${file}:${index + 1}: expected "name:$scrypt$..." (make one with \`mailshim passwd NAME\`)`);
      return;
    }
    users.set(name, hash);
  });
  if (problems.length) throw new ConfigError(problems.join('\n'), problems);
  return users;
}

export function loadUsers(file: string): Map<string, string> {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    throw new ConfigError(`${file}: cannot read users file: ${(error as NodeJS.ErrnoException).code ?? String(error)}`);
  }
  return parseUsers(text, file);
}

/** Reads a listener's PEM certificate and key. */
export function loadTlsFiles(cert: string, key: string): { cert: Buffer; key: Buffer } {
  try {
    return { cert: readFileSync(cert), key: readFileSync(key) };
  } catch (error) {
    throw new ConfigError(`cannot read TLS certificate or key: ${(error as Error).message}`);
  }
}
