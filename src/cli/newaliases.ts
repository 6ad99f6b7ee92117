/** `newaliases` / `sendmail -bi`: validate the aliases file (errors name the line), then tell the daemon to reload it. */
import type { ClientConfig } from '../config/local.js';
import { SubmitError } from '../errors.js';
import { loadAliases } from '../local/aliases.js';
import { control } from '../sendmail/submit.js';
import { EX } from './sysexits.js';

export async function newaliases(config: ClientConfig): Promise<number> {
  const file = config.local.aliases;
  let table;
  try {
    table = loadAliases(file);
  } catch (error) {
    throw new SubmitError('ECANTCREAT', `cannot read ${file}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`);
  }
  for (const warning of table.warnings) process.stderr.write(`newaliases: warning: ${warning}\n`);
  if (table.problems.length > 0) {
    for (const problem of table.problems) process.stderr.write(`newaliases: ${problem}\n`);
    process.stderr.write(`newaliases: ${table.problems.length} error(s); the daemon keeps its current aliases\n`);
    return EX.DATAERR;
  }
  process.stdout.write(`${file}: ${table.entries.size} aliases\n`);
  const reply = await control(config, { op: 'reload-aliases' });
  if (!reply) process.stdout.write('newaliases: the daemon is not running; it reads the aliases when it starts\n');
  else if (!reply.ok) throw new SubmitError(reply.code, reply.error);
  return EX.OK;
}
