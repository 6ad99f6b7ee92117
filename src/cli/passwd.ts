/** `mailshim passwd NAME [--users-file F]`: hash a listener user's password (scrypt). */
import { chmodSync, existsSync, readFileSync, writeFileSync, renameSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { hashPassword } from '../auth/passwords.js';

async function readPassword(): Promise<string> {
  if (!process.stdin.isTTY) {
    // Non-interactive: the first line of stdin (for config-management tools).
    const rl = createInterface({ input: process.stdin });
    for await (const line of rl) {
      rl.close();
      return line;
    }
    return '';
  }
  const ask = (prompt: string) =>
    new Promise<string>((resolve) => {
      const output = process.stderr;
      output.write(prompt);
      const rl = createInterface({ input: process.stdin, output, terminal: true });
      // Echo nothing while the password is typed.
      (rl as unknown as { _writeToOutput: (s: string) => void })._writeToOutput = () => {};
      rl.question('', (answer) => {
        rl.close();
        output.write('\n');
        resolve(answer);
      });
    });
  const first = await ask('Password: ');
  const second = await ask('Again: ');
  if (first !== second) throw new Error('passwords do not match');
  return first;
}

export async function passwd(name: string, usersFile: string | undefined): Promise<void> {
  if (!/^[A-Za-z0-9._@+-]{1,64}$/.test(name)) throw new Error(`invalid user name ${JSON.stringify(name)}: use letters, digits and . _ @ + -`);
  const password = await readPassword();
  if (password.length < 8) throw new Error('password too short (at least 8 characters)');
  const line = `${name}:${await hashPassword(password)}`;
  if (!usersFile) {
    process.stdout.write(line + '\n');
    return;
  }
  const existing = existsSync(usersFile)
    ? readFileSync(usersFile, 'utf8')
        .split('\n')
        .filter((l) => l !== '' && !l.startsWith(`${name}:`))
    : [];
  const temp = `${usersFile}.tmp-${process.pid}`;
  writeFileSync(temp, [...existing, line].join('\n') + '\n', { mode: 0o600 });
  chmodSync(temp, 0o600);
  renameSync(temp, usersFile);
  process.stderr.write(`${usersFile}: ${existing.length === 0 ? 'created with' : 'updated'} user ${name}\n`);
}
