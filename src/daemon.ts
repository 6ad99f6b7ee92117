/**
 * The running relay: spool + SMTP listeners (intake) + scheduler and router (delivery) + upstreams.
 * This is the composition root; it wires modules together and owns their lifecycle, nothing more.
 */
import { loadConfig } from './config/load.js';
import type { Config } from './config/types.js';
import { makeAllDue } from './delivery/flush.js';
import { Router } from './delivery/router.js';
import { Scheduler, type SchedulerSettings } from './delivery/scheduler.js';
import { MaildropImporter } from './intake/maildrop.js';
import { SmtpIntake, type IntakeSettings } from './intake/smtp.js';
import { SubmissionServer } from './intake/submission.js';
import { emptyAliases, loadAliases, type AliasTable } from './local/aliases.js';
import type { LocalPolicy } from './local/localize.js';
import type { Logger } from './log.js';
import { queueEntries } from './spool/listing.js';
import { Spool } from './spool/spool.js';
import { createUpstream, upstreamTarget } from './upstreams/index.js';

export interface ListenerInfo {
  address: string;
  host: string;
  port: number;
}

function intakeSettings(config: Config): IntakeSettings {
  return { hostname: config.hostname, maxMessageSize: config.spool.maxMessageSize, maxRecipients: config.spool.maxRecipients };
}

function schedulerSettings(config: Config): SchedulerSettings {
  return {
    retry: config.retry,
    hostname: config.hostname,
    bounceFrom: config.bounceFrom,
    concurrency: Math.max(1, config.upstreams.reduce((sum, u) => sum + u.maxConcurrency, 0)),
  };
}

function buildRouter(config: Config): Router {
  return new Router(
    config.upstreams.map((u) => createUpstream(u, config.hostname)),
    config.upstreams,
    config.retry,
  );
}

/** Reads the aliases file; problems and refused targets are logged, the valid entries are used. */
function readAliases(config: Config, log: Logger, fallback: AliasTable): AliasTable {
  let table: AliasTable;
  try {
    table = loadAliases(config.local.aliases);
  } catch (error) {
    log.error({ err: error, event: 'aliases', file: config.local.aliases }, `cannot read the aliases file, keeping the previous table: ${(error as Error).message}`);
    return fallback;
  }
  for (const problem of table.problems) log.error({ event: 'aliases', problem }, problem);
  for (const warning of table.warnings) log.warn({ event: 'aliases', warning }, warning);
  log.info({ event: 'aliases', file: table.file, entries: table.entries.size }, `aliases: ${table.entries.size} entries from ${table.file}`);
  return table;
}

export class Daemon {
  readonly startedAt = Date.now();
  readonly listeners: ListenerInfo[] = [];
  private aliases: AliasTable = emptyAliases();
  private submission: SubmissionServer | undefined;
  private maildrop: MaildropImporter | undefined;

  private constructor(
    private config: Config,
    readonly spool: Spool,
    private readonly intakes: SmtpIntake[],
    readonly scheduler: Scheduler,
    private readonly log: Logger,
  ) {}

  static async start(config: Config, log: Logger): Promise<Daemon> {
    const spool = Spool.open(config.spool.path);
    const scheduler = new Scheduler(spool, buildRouter(config), schedulerSettings(config), log);
    const intakes = config.listen.map((listen) => new SmtpIntake(listen, intakeSettings(config), spool, log));
    const daemon = new Daemon(config, spool, intakes, scheduler, log);
    daemon.aliases = readAliases(config, log, daemon.aliases);
    try {
      // Local submissions first: maildrop files left while we were down are imported before
      // the scheduler starts (see intake/maildrop.ts for why that matters).
      // Neither is fatal: the SMTP listeners are the main job, and sendmail falls back to the maildrop.
      const submission = new SubmissionServer(config.submission.socket, spool, daemon.submissionHooks(), log);
      try {
        await submission.start();
        daemon.submission = submission;
        log.info({ event: 'listening-local', socket: config.submission.socket }, `local submission on ${config.submission.socket}`);
      } catch (error) {
        log.error({ err: error, event: 'submission-disabled', socket: config.submission.socket }, `local submission socket disabled: ${(error as Error).message}`);
      }
      const maildrop = new MaildropImporter(config.submission.maildrop, spool, () => daemon.localPolicy(), log);
      try {
        await maildrop.start();
        daemon.maildrop = maildrop;
      } catch (error) {
        log.error({ err: error, event: 'maildrop-disabled', dir: config.submission.maildrop }, `maildrop import disabled: ${(error as Error).message}`);
      }
      for (const intake of intakes) {
        const bound = await intake.start();
        daemon.listeners.push({ address: intake.listen.address, host: bound.address, port: bound.port });
        log.info({ event: 'listening', listen: intake.listen.address, host: bound.address, port: bound.port, allow: intake.listen.allow }, `listening on ${bound.address}:${bound.port}`);
      }
    } catch (error) {
      await daemon.stop(0);
      throw error;
    }
    for (const upstream of config.upstreams) {
      const where = upstreamTarget(upstream);
      log.info({ event: 'upstream', upstream: upstream.name, type: upstream.type, where }, `upstream ${upstream.name}: ${upstream.type} ${where}`);
    }
    const counts = spool.counts();
    log.info({ event: 'started', spool: config.spool.path, queued: counts.messages, hostname: config.hostname }, `mailshim started with ${counts.messages} queued message(s)`);
    scheduler.start();
    return daemon;
  }

  localPolicy(): LocalPolicy {
    return { hostname: this.config.hostname, local: this.config.local, aliases: this.aliases };
  }

  private submissionHooks() {
    return {
      policy: () => this.localPolicy(),
      maxMessageSize: () => this.config.spool.maxMessageSize,
      flush: async () => {
        const due = await makeAllDue(this.spool);
        this.scheduler.wake();
        this.log.info({ event: 'flush', due }, `queue run requested: ${due} deferred message(s) due now`);
        return due;
      },
      reloadAliases: () => {
        this.aliases = readAliases(this.config, this.log, this.aliases);
        return { entries: this.aliases.entries.size, problems: this.aliases.problems };
      },
      list: () => queueEntries(this.spool.list()),
    };
  }

  get currentConfig(): Config {
    return this.config;
  }

  /** Re-reads the config file; an invalid file is logged and ignored, the old config stays. */
  async reload(env: NodeJS.ProcessEnv = process.env): Promise<boolean> {
    let next: Config;
    try {
      next = loadConfig(this.config.file, env);
    } catch (error) {
      this.log.error({ err: error, event: 'reload-failed' }, `config reload failed, keeping the running config: ${(error as Error).message}`);
      return false;
    }
    if (next.spool.path !== this.config.spool.path) this.log.warn({ event: 'reload' }, 'spool.path changed: takes effect after a restart');
    const oldListen = this.config.listen.map((l) => l.address).join(',');
    if (next.submission.socket !== this.config.submission.socket || next.submission.maildrop !== this.config.submission.maildrop) {
      this.log.warn({ event: 'reload' }, 'submission.socket/maildrop changed: take effect after a restart');
    }
    if (next.listen.map((l) => l.address).join(',') !== oldListen) this.log.warn({ event: 'reload' }, 'listen addresses changed: take effect after a restart');
    for (const intake of this.intakes) {
      const listen = next.listen.find((l) => l.address === intake.listen.address) ?? intake.listen;
      intake.reconfigure(listen, intakeSettings(next));
    }
    const old = this.scheduler.reconfigure(buildRouter(next), schedulerSettings(next));
    this.config = next;
    this.aliases = readAliases(next, this.log, this.aliases);
    // Let in-flight deliveries on the old transports finish before closing them.
    setTimeout(() => void old.close(), next.upstreams[0]?.timeout ?? 60_000).unref();
    this.log.info({ event: 'reloaded', upstreams: next.upstreams.map((u) => u.name) }, 'configuration reloaded');
    return true;
  }

  /** Stop accepting, let in-flight deliveries finish (bounded), close the spool. */
  async stop(graceMs = 20_000): Promise<void> {
    this.log.info({ event: 'stopping' }, 'stopping: no new connections');
    await Promise.all(this.intakes.map((i) => i.close()));
    await this.submission?.close();
    await this.maildrop?.stop();
    const left = await this.scheduler.stop(graceMs);
    if (left > 0) this.log.warn({ event: 'stopping', inFlight: left }, `${left} delivery attempt(s) still running; they will be retried after restart`);
    await this.scheduler.activeRouter.close();
    await this.spool.close();
    this.log.info({ event: 'stopped' }, 'stopped');
  }
}
