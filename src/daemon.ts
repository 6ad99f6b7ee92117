/**
 * The running relay: spool + SMTP listeners (intake) + scheduler and router (delivery) + upstreams.
 * This is the composition root; it wires modules together and owns their lifecycle, nothing more.
 */
import { loadConfig } from './config/load.js';
import type { Config } from './config/types.js';
import { Router } from './delivery/router.js';
import { Scheduler, type SchedulerSettings } from './delivery/scheduler.js';
import { SmtpIntake, type IntakeSettings } from './intake/smtp.js';
import type { Logger } from './log.js';
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

export class Daemon {
  readonly startedAt = Date.now();
  readonly listeners: ListenerInfo[] = [];

  private constructor(
    private config: Config,
    readonly spool: Spool,
    private readonly intakes: SmtpIntake[],
    readonly scheduler: Scheduler,
    private readonly log: Logger,
  ) {}

  static async start(config: Config, log: Logger): Promise<Daemon> {
    for (const warning of config.warnings) log.warn({ event: 'config-warning' }, warning);
    const spool = Spool.open(config.spool.path, { maxSize: config.spool.maxSize });
    const scheduler = new Scheduler(spool, buildRouter(config), schedulerSettings(config), log);
    const intakes = config.listen.map((listen) => new SmtpIntake(listen, intakeSettings(config), spool, log));
    const daemon = new Daemon(config, spool, intakes, scheduler, log);
    try {
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
    if (next.listen.map((l) => l.address).join(',') !== oldListen) this.log.warn({ event: 'reload' }, 'listen addresses changed: take effect after a restart');
    try {
      for (const intake of this.intakes) {
        const listen = next.listen.find((l) => l.address === intake.listen.address) ?? intake.listen;
        intake.reconfigure(listen, intakeSettings(next));
      }
    } catch (error) {
      this.log.error({ err: error, event: 'reload-failed' }, `config reload failed, keeping the running config: ${(error as Error).message}`);
      return false;
    }
    for (const warning of next.warnings) this.log.warn({ event: 'config-warning' }, warning);
    const old = this.scheduler.reconfigure(buildRouter(next), schedulerSettings(next));
    this.config = next;
    // Let in-flight deliveries on the old transports finish before closing them.
    setTimeout(() => void old.close(), next.upstreams[0]?.timeout ?? 60_000).unref();
    this.log.info({ event: 'reloaded', upstreams: next.upstreams.map((u) => u.name) }, 'configuration reloaded');
    return true;
  }

  /** Stop accepting, let in-flight deliveries finish (bounded), close the spool. */
  async stop(graceMs = 20_000): Promise<void> {
    this.log.info({ event: 'stopping' }, 'stopping: no new connections');
    await Promise.all(this.intakes.map((i) => i.close()));
    const left = await this.scheduler.stop(graceMs);
    if (left > 0) this.log.warn({ event: 'stopping', inFlight: left }, `${left} delivery attempt(s) still running; they will be retried after restart`);
    await this.scheduler.activeRouter.close();
    await this.spool.close();
    this.log.info({ event: 'stopped' }, 'stopped');
  }
}
