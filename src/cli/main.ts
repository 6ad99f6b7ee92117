/** The `mailshim` command line: thin commands over the modules. */
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { configPath, loadConfig } from '../config/load.js';
import { maskedConfig } from '../config/mask.js';
import { MailshimError } from '../errors.js';
import { EX } from './sysexits.js';

function fail(error: unknown): never {
  if (error instanceof MailshimError && error.code === 'EINSTALL') {
    process.stderr.write(`mailshim: ${error.message}\n`);
    process.exit(EX.CANTCREAT);
  }
  if (error instanceof MailshimError) {
    process.stderr.write(`mailshim: ${error.message}\n`);
    process.exit(error.code === 'ECONFIG' ? EX.CONFIG : EX.SOFTWARE);
  }
  process.stderr.write(`mailshim: ${(error as Error)?.stack ?? String(error)}\n`);
  process.exit(EX.SOFTWARE);
}

export async function main(argv: string[]): Promise<void> {
  await yargs(argv)
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
      'install',
      'link /usr/sbin/sendmail, /usr/lib/sendmail, /usr/bin/mailq and /usr/bin/newaliases to mailshim',
      (y) =>
        y
          .option('prefix', { type: 'string', default: '/', describe: 'root of the tree to install into' })
          .option('force', { type: 'boolean', default: false, describe: 'replace another MTA\'s binaries (a backup is kept)' }),
      async (args) => {
        const { install } = await import('./install.js');
        try {
          for (const line of install(args.prefix, args.force)) process.stdout.write(line + '\n');
        } catch (error) {
          fail(error);
        }
      },
    )
    .command(
      'uninstall',
      'remove the links made by install and restore what they replaced',
      (y) => y.option('prefix', { type: 'string', default: '/', describe: 'root of the tree to uninstall from' }),
      async (args) => {
        const { uninstall } = await import('./install.js');
        try {
          for (const line of uninstall(args.prefix)) process.stdout.write(line + '\n');
        } catch (error) {
          fail(error);
        }
      },
    )
    .command('sendmail', 'the sendmail-compatible command (sendmail\'s own flags; same as bin/sendmail)')
    .command('mailq', 'list the queue (same as bin/mailq; --json for scripts)')
    .command('newaliases', 'check the aliases file and reload it in the daemon (same as bin/newaliases)')
    .demandCommand(1, 'name a command; see --help')
    .strict()
    .help()
    .version()
    .parseAsync();
}

// sendmail's flags are not GNU style (`-FCronDaemon`, `-oi`): those entries bypass yargs entirely.
const SENDMAIL_ENTRIES = new Set(['sendmail', 'mailq', 'newaliases']);
const argv = hideBin(process.argv);
if (argv[0] !== undefined && SENDMAIL_ENTRIES.has(argv[0])) {
  const { run } = await import('./sendmail.js');
  run(argv.slice(1), argv[0]);
} else {
  main(argv).catch(fail);
}
