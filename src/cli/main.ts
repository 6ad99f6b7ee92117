/** The `mailshim` command line: thin commands over the modules. */
import { configPath, loadConfig } from '../config/load.js';
import { maskedConfig } from '../config/mask.js';
import { MailshimError } from '../errors.js';
import { operatorCommands } from './operator-commands.js';
import { EX } from './sysexits.js';

function fail(error: unknown): never {
  if (error instanceof MailshimError) {
    process.stderr.write(`mailshim: ${error.message}\n`);
    // A damaged spool: EX_TEMPFAIL, and systemd does not restart into it (RestartPreventExitStatus=75).
    if (error.code === 'ESPOOLDAMAGED') {
      process.stderr.write('mailshim: not starting; run `mailshim queue verify`, rescue mail with `mailshim queue dump --raw DIR`, see docs/operations.md\n');
      process.exit(EX.TEMPFAIL);
    }
    // The disk refused to sync the spool at start: EX_IOERR, as the fail-stop (spool/startup.ts).
    if (error.code === 'ESPOOLSYNC') process.exit(EX.IOERR);
    // ELOCKED: another daemon holds the spool; 75 so that a supervisor may try again later.
    process.exit(error.code === 'ECONFIG' ? EX.CONFIG : error.code === 'ELOCKED' ? EX.TEMPFAIL : EX.SOFTWARE);
  }
  process.stderr.write(`mailshim: ${(error as Error)?.stack ?? String(error)}\n`);
  process.exit(EX.SOFTWARE);
}

export async function main(argv: string[]): Promise<void> {
  // Under systemd the service sees its LoadCredential= files in $CREDENTIALS_DIRECTORY; an operator
  // running `mailshim status` or `queue ...` as root gets the same config to load from the source dir.
  process.env.CREDENTIALS_DIRECTORY ??= '/etc/mailshim/credentials';
  const { default: yargs } = await import('yargs');
  const cli = yargs(argv)
    .scriptName('mailshim')
    .option('config', { type: 'string', describe: 'config file (default: $MAILSHIM_CONFIG, else /etc/mailshim/mailshim.toml)' })
    .command(
      'serve',
      'run the relay daemon',
      () => {},
      async (args) => {
        const { serve } = await import('./serve.js');
        try {
          process.exitCode = await serve(configPath(args.config));
        } catch (error) {
          fail(error);
        }
      },
    )
    .command(
      'check-config',
      'validate the config and print it with secrets masked',
      () => {},
      (args) => {
        const file = configPath(args.config);
        try {
          const config = loadConfig(file);
          process.stdout.write(`# ${file}: OK\n${maskedConfig(config)}\n`);
        } catch (error) {
          fail(error);
        }
      },
    )
    .command(
      'passwd <name>',
      'hash a password for a listener users_file (reads it from the terminal or the first line of stdin)',
      (y) => y.positional('name', { type: 'string', demandOption: true }).option('users-file', { type: 'string', describe: 'add or replace the user in this file instead of printing the line' }),
      async (args) => {
        const { passwd } = await import('./passwd.js');
        try {
          await passwd(args.name, args.usersFile);
        } catch (error) {
          process.stderr.write(`mailshim passwd: ${(error as Error).message}\n`);
          process.exit(EX.DATAERR);
        }
      },
    )
    .command('events', 'provider webhooks ([events])', (y) =>
      y
        .command(
          'test <name>',
          'post a correctly signed sample event for upstream NAME to the local webhook listener',
          (c) => c.positional('name', { type: 'string', demandOption: true }),
          async (a) => {
            const { eventsTest } = await import('./events.js');
            const { exitCodeOf } = await import('./exit.js');
            try {
              process.exitCode = await eventsTest(loadConfig(configPath(a.config)), a.name, process.stdout);
            } catch (error) {
              process.stderr.write(`mailshim: ${(error as Error).message}\n`);
              process.exitCode = exitCodeOf(error);
            }
          },
        )
        .demandCommand(1, 'name an events command; see mailshim events --help'),
    )
    .command('sendmail', "the sendmail-compatible command (sendmail's own flags; same as bin/sendmail)")
    .command('mailq', 'list the queue the sendmail way (same as bin/mailq; --json for scripts)')
    .command('newaliases', 'check the aliases file and reload it in the daemon (same as bin/newaliases)');
  await operatorCommands(cli).demandCommand(1, 'name a command; see --help').strict().help().version().parseAsync();
}

// sendmail's flags are not GNU style (`-FCronDaemon`, `-oi`): those entries bypass yargs entirely.
/**
 * `serve` with at most `--config FILE`: started without yargs, so the long-running daemon does not
 * keep the command-line parser's modules in memory. Returns undefined for any other command line.
 */
function plainServe(argv: string[]): { config: string | undefined } | undefined {
  if (argv[0] !== 'serve') return undefined;
  const rest = argv.slice(1);
  if (rest.length === 0) return { config: undefined };
  if (rest.length === 1 && rest[0]!.startsWith('--config=')) return { config: rest[0]!.slice('--config='.length) };
  if (rest.length === 2 && rest[0] === '--config') return { config: rest[1] };
  return undefined;
}

const SENDMAIL_ENTRIES = new Set(['sendmail', 'mailq', 'newaliases']);
const argv = process.argv.slice(2);
const serveOnly = plainServe(argv);
if (argv[0] !== undefined && SENDMAIL_ENTRIES.has(argv[0])) {
  const { run } = await import('./sendmail.js');
  run(argv.slice(1), argv[0]);
} else if (serveOnly) {
  const { serve } = await import('./serve.js');
  serve(configPath(serveOnly.config)).then((code) => (process.exitCode = code), fail);
} else {
  main(argv).catch(fail);
}
