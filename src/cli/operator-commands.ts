/**
 * The operator commands (queue, status, reload, test-upstream, install, uninstall), registered on the main
 * yargs instance. Each handler imports its module lazily, so `serve` and `sendmail` start fast.
 */
import type { Argv } from 'yargs';
import { configPath, loadConfig } from '../config/load.js';
import type { Config } from '../config/types.js';
import { CommandError, exitCodeOf } from './exit.js';
import type { QueueContext } from './queue.js';
import { EX } from './sysexits.js';

/** Loads the config and opens the spool for an operator command; reports errors with documented exit codes. */
async function withQueue(configFlag: string | undefined, run: (ctx: QueueContext) => Promise<number> | number): Promise<void> {
  try {
    const config = loadConfig(configPath(configFlag));
    const { Spool } = await import('../spool/spool.js');
    const { retentionOf } = await import('../spool/sent.js');
    const { createLogger } = await import('../log.js');
    const spool = Spool.openExisting(config.spool.path, { tombstoneMs: config.retry.maxAge, retention: retentionOf(config) });
    try {
      process.exitCode = await run({ config, spool, log: createLogger('info', process.stderr), out: process.stdout });
    } finally {
      await spool.close();
    }
  } catch (error) {
    process.stderr.write(`mailshim: ${(error as Error).message}\n`);
    process.exitCode = exitCodeOf(error);
  }
}

/** For commands that need only the config. */
async function withConfig(configFlag: string | undefined, run: (config: Config) => Promise<number>, onConfigError?: number): Promise<void> {
  let config: Config;
  try {
    config = loadConfig(configPath(configFlag));
  } catch (error) {
    process.stderr.write(`mailshim: ${(error as Error).message}\n`);
    process.exitCode = onConfigError ?? exitCodeOf(error);
    return;
  }
  try {
    process.exitCode = await run(config);
  } catch (error) {
    process.stderr.write(`mailshim: ${(error as Error).message}\n`);
    process.exitCode = exitCodeOf(error);
  }
}

const ID = { describe: 'queue id (as printed by mailq)', type: 'string' } as const;

export function operatorCommands<T extends { config: string | undefined }>(cli: Argv<T>): Argv<T> {
  return cli
    .command('queue', 'inspect and change the mail queue (changes go through the daemon when it runs)', (y) =>
      y
        .command(
          'list',
          'the queue as mailq shows it (queue id, size, arrival, sender, pending recipients with their last error)',
          (c) =>
            c
              .option('json', { type: 'boolean', default: false, describe: 'machine-readable: {"queue": [...]} with one entry per line, streamed' })
              .option('limit', { type: 'number', describe: 'list at most this many messages (oldest first)' })
              .option('from', { type: 'string', describe: 'sender address, or domain (with its subdomains)' })
              .option('to', { type: 'string', describe: "a pending recipient's address, or domain (with its subdomains)" })
              .option('older-than', { type: 'string', describe: 'received at least this long ago, e.g. "30m", "2h"' })
              .option('state', { choices: ['pending', 'deferred', 'held'] as const, describe: 'only messages in this state' }),
          async (a) => {
            const [{ loadClientConfig }, { mailq }, { parseDuration }] = await Promise.all([import('../config/local.js'), import('./mailq.js'), import('../config/units.js')]);
            try {
              const olderThanMs = a.olderThan === undefined ? undefined : parseDuration(a.olderThan);
              if (a.olderThan !== undefined && olderThanMs === undefined) throw new CommandError(EX.USAGE, `--older-than: expected a duration like "30m" or "2h", got "${a.olderThan}"`);
              if (a.limit !== undefined && !(Number.isInteger(a.limit) && a.limit >= 0)) throw new CommandError(EX.USAGE, `--limit: expected a whole number, got ${a.limit}`);
              const filter = Object.fromEntries(Object.entries({ from: a.from, to: a.to, olderThanMs, state: a.state, limit: a.limit }).filter(([, v]) => v !== undefined));
              process.exitCode = await mailq(loadClientConfig(configPath(a.config)), a.json, filter);
            } catch (error) {
              process.stderr.write(`mailshim: ${(error as Error).message}\n`);
              process.exitCode = error instanceof CommandError ? error.exitCode : EX.TEMPFAIL;
            }
          },
        )
        .command(
          'summary',
          "how many recipients per domain have waited how long, like Postfix's qshape (reads the spool)",
          (c) =>
            c
              .option('sender', { type: 'boolean', default: false, describe: 'by sender domain (messages) instead of recipient domain (recipients)' })
              .option('buckets', { alias: 'b', type: 'number', default: 10, describe: 'number of age columns' })
              .option('bucket-minutes', { alias: 't', type: 'number', default: 5, describe: 'upper bound of the first age column, in minutes; each next one doubles' })
              .option('top', { type: 'number', describe: 'show only the N biggest domains' }),
          (a) =>
            withQueue(a.config, async (ctx) => {
              if (!(Number.isInteger(a.buckets) && a.buckets >= 2)) throw new CommandError(EX.USAGE, '--buckets: expected a whole number of at least 2');
              if (!(a.bucketMinutes > 0)) throw new CommandError(EX.USAGE, '--bucket-minutes: expected a positive number');
              return (await import('./queue-summary.js')).summary(ctx, { bySender: a.sender, buckets: a.buckets, bucketMinutes: a.bucketMinutes, top: a.top ?? Infinity });
            }),
        )
        .command(
          'show <id>',
          'envelope, per-recipient state and history, headers',
          (c) => c.positional('id', ID).option('raw', { type: 'boolean', describe: 'print the message itself' }).option('json', { type: 'boolean' }).conflicts('raw', 'json'),
          (a) => withQueue(a.config, async (ctx) => ((await import('./queue.js')).showMessage(ctx, a.id!, a.raw ? 'raw' : a.json ? 'json' : 'text'), 0)),
        )
        .command(
          'retry [id]',
          'make a message (or --all) due now',
          (c) => c.positional('id', ID).option('all', { type: 'boolean', default: false }),
          (a) => withQueue(a.config, async (ctx) => (await import('./queue.js')).retry(ctx, a.id, a.all)),
        )
        .command(
          'hold <id>',
          'stop delivery attempts until released',
          (c) => c.positional('id', ID),
          (a) => withQueue(a.config, async (ctx) => (await import('./queue.js')).hold(ctx, a.id!)),
        )
        .command(
          'release <id>',
          'end a hold; the message is due now',
          (c) => c.positional('id', ID),
          (a) => withQueue(a.config, async (ctx) => (await import('./queue.js')).release(ctx, a.id!)),
        )
        .command(
          'delete <id>',
          'remove a message without delivery or bounce (asks first)',
          (c) => c.positional('id', ID).option('yes', { alias: 'y', type: 'boolean', default: false, describe: 'do not ask' }),
          (a) => withQueue(a.config, async (ctx) => (await import('./queue.js')).remove(ctx, a.id!, a.yes)),
        )
        .command(
          'bounce <id>',
          'give up now and send the bounce (DSN) to the sender',
          (c) => c.positional('id', ID),
          (a) => withQueue(a.config, async (ctx) => (await import('./queue.js')).bounce(ctx, a.id!)),
        )
        .command(
          'flush',
          'retry everything now',
          (c) =>
            c
              .option('wait', { type: 'boolean', default: false, describe: 'show progress until the queue drains' })
              .option('timeout', { type: 'string', default: '5m', describe: 'with --wait: give up after this long (exit 75)' }),
          (a) =>
            withQueue(a.config, async (ctx) => {
              const { parseDuration } = await import('../config/units.js');
              const timeoutMs = parseDuration(a.timeout);
              if (timeoutMs === undefined) throw new CommandError(EX.USAGE, `--timeout: expected a duration like "30s" or "5m", got "${a.timeout}"`);
              return (await import('./queue.js')).flush(ctx, { wait: a.wait, timeoutMs, progress: process.stderr });
            }),
        )
        .command(
          'compact',
          'shrink the spool file to its live data after a backlog drained (stop the daemon first)',
          (c) => c,
          (a) =>
            withConfig(a.config, async (config) => {
              const [{ compactSpool }, { SpoolError }] = await Promise.all([import('../spool/compact.js'), import('../errors.js')]);
              const result = await compactSpool(config.spool.path).catch((error: unknown) => {
                if (error instanceof SpoolError && error.code === 'ELOCKED') throw new CommandError(EX.TEMPFAIL, `${error.message}: stop the daemon first (systemctl stop mailshim), then compact`);
                throw error;
              });
              const { beforeBytes, afterBytes } = result;
              const mb = (n: number) => `${(n / 1024 / 1024).toFixed(1)} MB`;
              process.stdout.write(`spool compacted: ${mb(beforeBytes)} -> ${mb(afterBytes)}\n`);
              return 0;
            }),
        )
        .command(
          'verify',
          'check the spool: every message has its body, bodies match their checksums, the due index agrees (exit 0 OK, 65 problems, 75 unreadable)',
          (c) => c.option('json', { type: 'boolean', default: false }),
          (a) => withQueue(a.config, async (ctx) => (await import('./queue-rescue.js')).verify(ctx, a.json)),
        )
        .command(
          'dump',
          'copy every queued message out of the spool as DIR/ID.eml plus DIR/ID.json (envelope), readable without mailshim',
          (c) => c.option('raw', { type: 'string', demandOption: true, describe: 'directory to write into (created; existing files are never overwritten)' }),
          (a) => withQueue(a.config, async (ctx) => (await import('./queue-rescue.js')).dumpRaw(ctx, a.raw)),
        )
        .demandCommand(1, 'name a queue command; see mailshim queue --help'),
    )
    .command(
      'status',
      'is the daemon up; listeners, upstream health, queue depth (exit 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN)',
      (c) => c.option('json', { type: 'boolean', default: false }),
      (a) => withConfig(a.config, async (config) => (await import('./status.js')).status(config, a.json, process.stdout), 3),
    )
    .command(
      'reload',
      'ask the running daemon to reload its config (like SIGHUP)',
      () => {},
      (a) =>
        withConfig(a.config, async (config) => {
          const { ControlClient } = await import('../control/client.js');
          const reloaded = await new ControlClient(config.control.socket).reload();
          process.stdout.write(reloaded ? 'reloaded\n' : 'the new config is invalid; the daemon keeps the running one (see its log)\n');
          return reloaded ? 0 : EX.CONFIG;
        }),
    )
    .command(
      'test-upstream [name]',
      'connect, negotiate TLS and authenticate to each upstream (or NAME), step by step; --send-to sends a real test message',
      (c) =>
        c
          .positional('name', { type: 'string', describe: 'upstream name (default: all)' })
          .option('send-to', { type: 'string', describe: 'also send a test message to this address' })
          .option('from', { type: 'string', describe: 'envelope and header sender of the test message (default: bounce_from)' }),
      (a) => withConfig(a.config, async (config) => (await import('./test-upstream.js')).testUpstreams(config, { name: a.name, sendTo: a.sendTo, from: a.from, out: process.stdout })),
    )
    .command(
      'install',
      'link /usr/sbin/sendmail, /usr/lib/sendmail, /usr/bin/mailq, /usr/bin/newaliases to mailshim; with --systemd: install the units, the mailshim user and an example config',
      (c) =>
        c
          .option('systemd', { type: 'boolean', default: false, describe: 'install the systemd units instead of the sendmail links' })
          .option('force', { type: 'boolean', default: false, describe: "replace another MTA's sendmail/mailq/newaliases (a backup is kept)" })
          .option('prefix', { type: 'string', default: '/', describe: 'stage the files under this directory instead of /' }),
      async (a) => {
        try {
          if (a.systemd) {
            process.exitCode = (await import('./install.js')).install({ prefix: a.prefix, out: process.stdout });
          } else {
            for (const line of (await import('./install-links.js')).installLinks(a.prefix, a.force)) process.stdout.write(line + '\n');
          }
        } catch (error) {
          process.stderr.write(`mailshim: ${(error as Error).message}\n`);
          process.exitCode = exitCodeOf(error);
        }
      },
    )
    .command(
      'uninstall',
      'remove the sendmail links made by install and restore what they replaced',
      (c) => c.option('prefix', { type: 'string', default: '/', describe: 'root of the tree to uninstall from' }),
      async (a) => {
        try {
          for (const line of (await import('./install-links.js')).uninstallLinks(a.prefix)) process.stdout.write(line + '\n');
        } catch (error) {
          process.stderr.write(`mailshim: ${(error as Error).message}\n`);
          process.exitCode = exitCodeOf(error);
        }
      },
    );
}
