/**
 * The running relay: spool + SMTP listeners (intake) + scheduler and router (delivery) + upstreams.
 * This is the composition root; it wires modules together and owns their lifecycle, nothing more.
 */
import { loadConfig } from './config/load.js';
import type { Config, ListenConfig, UpstreamConfig } from './config/types.js';
import { ControlServer } from './control/server.js';
import { upstreamState, type ListenerStatus, type StatusReport } from './control/types.js';
import { Router } from './delivery/router.js';
import { applyQueueAction, auditEntry, type QueueAction, type QueueActionResult } from './delivery/queue-actions.js';
import { Scheduler, type AttemptEvent, type SchedulerSettings } from './delivery/scheduler.js';
import { boundAddressOfFd, matchListen, takeActivationFds } from './intake/activation.js';
import { defaultListener } from './config/listen.js';
import { MaildropImporter } from './intake/maildrop.js';
import { SmtpIntake, type IntakeSettings } from './intake/smtp.js';
import { SubmissionServer } from './intake/submission.js';
import { emptyAliases, loadAliases, type AliasTable } from './local/aliases.js';
import type { LocalPolicy } from './local/localize.js';
import type { Logger } from './log.js';
import type { Metrics } from './metrics/metrics.js';
import { MetricsServer } from './metrics/server.js';
import type { EventsListener, EventSink } from './events/listener.js';
import type { Pollers } from './events/poll/index.js';
import { listSent, ProviderEventRecorder, type RecordedEvents } from './delivery/provider-events.js';
import { lockSpool, type SpoolLock } from './spool/lock.js';
import { retentionOf } from './spool/sent.js';
import { Spool, type SpoolLimits } from './spool/spool.js';
import { checkSpoolAtStart, failStopHandler, SPOOL_RESERVE_BYTES } from './spool/startup.js';
import { SpoolError } from './errors.js';
import { createUpstream, upstreamTarget } from './upstreams/index.js';
import { VERSION } from './version.js';

export type ListenerInfo = ListenerStatus;

/** What the config limits in the spool; applied at start and again on every reload. */
function spoolLimits(config: Config): SpoolLimits {
  return {
    maxSize: config.spool.maxSize,
    // Like Postfix's smtpd: refuse new mail (452 4.3.1) unless 1.5 × the largest message stays free.
    minFree: Math.ceil(config.spool.maxMessageSize * 1.5),
    tombstoneMs: config.retry.maxAge,
    retention: retentionOf(config),
  };
}

function intakeSettings(config: Config): IntakeSettings {
  return { hostname: config.hostname, maxMessageSize: config.spool.maxMessageSize, maxRecipients: config.spool.maxRecipients };
}

function schedulerSettings(config: Config): SchedulerSettings {
  return {
    retry: config.retry,
    hostname: config.hostname,
    bounceFrom: config.bounceFrom,
    concurrency: Math.max(
      1,
      config.upstreams.reduce((sum, u) => sum + u.maxConcurrency, 0),
    ),
  };
}

async function buildRouter(config: Config): Promise<Router> {
  return new Router(await Promise.all(config.upstreams.map((u) => createUpstream(u, config.hostname))), config.upstreams, config.retry);
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
  private readonly intakes: SmtpIntake[] = [];
  private control: ControlServer | undefined;
  private metricsServer: MetricsServer | undefined;
  private metrics: Metrics | undefined;
  private events: EventsListener | undefined;
  private pollers: Pollers | undefined;
  private aliases: AliasTable = emptyAliases();
  private submission: SubmissionServer | undefined;
  private maildrop: MaildropImporter | undefined;
  private lock: SpoolLock | undefined;

  private constructor(
    private config: Config,
    readonly spool: Spool,
    readonly scheduler: Scheduler,
    private readonly log: Logger,
  ) {}

  /** prom-client is loaded only when [metrics] is configured. */
  private async startMetrics(): Promise<void> {
    if (!this.config.metrics) return;
    const { Metrics } = await import('./metrics/metrics.js');
    const { spool, scheduler } = this;
    const metrics = new Metrics({ counts: () => spool.counts(), upstreamFailures: () => scheduler.activeRouter.health(), spoolProblems: () => spool.health().problems.length });
    spool.on('accepted', (_id: string, origin: string) => metrics.onAccepted(origin));
    scheduler.on('attempt', (event: AttemptEvent) => metrics.onAttempt(event));
    this.metrics = metrics;
  }

  static async start(config: Config, log: Logger, env: NodeJS.ProcessEnv = process.env): Promise<Daemon> {
    for (const warning of config.warnings) log.warn({ event: 'config-warning' }, warning);
    // One daemon per spool, decided before anything is read: a second one (same config started
    // twice, or another config naming the same spool.path) exits 75. A queue command holding the
    // lock for a moment (daemon down) is waited for.
    let lock: SpoolLock;
    try {
      lock = await lockSpool(config.spool.path, 'daemon', 15_000, (holder) =>
        log.warn(
          { event: 'spool-lock-wait', holder: holder?.pid, role: holder?.role },
          `waiting up to 15 s for \`mailshim ${holder?.role ?? 'queue'}\` (pid ${holder?.pid ?? '?'}) to release the spool`,
        ),
      );
    } catch (error) {
      if (error instanceof SpoolError && error.code === 'ELOCKED') throw new SpoolError('ELOCKED', `${error.message}; not starting: only one daemon may use a spool`);
      throw error;
    }
    let daemon: Daemon;
    try {
      const spool = Spool.open(config.spool.path, { ...spoolLimits(config), reserve: SPOOL_RESERVE_BYTES });
      spool.failStop = failStopHandler(log);
      spool.on('reserve-released', () =>
        log.error({ event: 'disk-full', reserve: SPOOL_RESERVE_BYTES }, 'disk full: released the spool reserve to record deliveries; new mail is refused (452) until there is room'),
      );
      await checkSpoolAtStart(spool, log);
      const scheduler = new Scheduler(spool, await buildRouter(config), schedulerSettings(config), log);
      daemon = new Daemon(config, spool, scheduler, log);
    } catch (error) {
      lock.release();
      throw error;
    }
    daemon.lock = lock;
    await daemon.startMetrics();
    daemon.aliases = readAliases(config, log, daemon.aliases);
    try {
      await daemon.startLocalSubmission();
      await daemon.startListeners(takeActivationFds(env));
      daemon.control = await ControlServer.start(config.control.socket, config.control.mode, {
        status: () => daemon.status(),
        reload: () => daemon.reload(),
        flush: () => daemon.flush(),
        queue: (action, operatorUid) => daemon.queueAction(action, operatorUid),
      });
      log.info({ event: 'control', socket: config.control.socket }, `control socket ${config.control.socket}`);
      await daemon.startEvents();
      if (daemon.metrics && config.metrics) {
        daemon.metricsServer = await MetricsServer.start(daemon.metrics, config.metrics.host, config.metrics.port);
        const bound = daemon.metricsServer.address;
        log.info({ event: 'metrics', host: bound.address, port: bound.port }, `metrics on http://${daemon.metricsAddress}/metrics`);
      }
    } catch (error) {
      await daemon.stop(0);
      throw error;
    }
    for (const upstream of config.upstreams) {
      const where = upstreamTarget(upstream);
      log.info({ event: 'upstream', upstream: upstream.name, type: upstream.type, where }, `upstream ${upstream.name}: ${upstream.type} ${where}`);
    }
    const counts = daemon.spool.counts();
    log.info({ event: 'started', spool: config.spool.path, queued: counts.messages, hostname: config.hostname }, `mailshim started with ${counts.messages} queued message(s)`);
    daemon.scheduler.start();
    return daemon;
  }

  /**
   * Sockets passed by systemd are adopted and matched to [[listen]] entries by address (an
   * unmatched one gets the loopback-only default allow-list); entries no socket covers are bound.
   */
  private async startListeners(fds: number[]): Promise<void> {
    const settings = intakeSettings(this.config);
    const covered = new Set<ListenConfig>();
    for (const fd of fds) {
      const where = boundAddressOfFd(fd);
      const listen = where ? matchListen(this.config.listen, where) : undefined;
      if (listen) covered.add(listen);
      else {
        this.log.warn(
          { event: 'listen-unmatched', fd, host: where?.address, port: where?.port },
          `socket passed by systemd (${where ? `${where.address}:${where.port}` : `fd ${fd}`}) matches no [[listen]] entry; allowing loopback clients only`,
        );
      }
      // An unmatched socket gets the safe defaults: loopback clients only, no TLS, no AUTH.
      const fallback = { ...defaultListener(), address: where ? `${where.address}:${where.port}` : `fd:${fd}`, host: where?.address ?? '', port: where?.port ?? 0 };
      const intake = new SmtpIntake(listen ?? fallback, settings, this.spool, this.log, () => this.localPolicy());
      this.intakes.push(intake);
      this.listening(intake, await intake.start(fd), true);
    }
    for (const listen of this.config.listen.filter((l) => !covered.has(l))) {
      const intake = new SmtpIntake(listen, settings, this.spool, this.log, () => this.localPolicy());
      this.intakes.push(intake);
      this.listening(intake, await intake.start(), false);
    }
  }

  private listening(intake: SmtpIntake, bound: { address: string; port: number }, activated: boolean): void {
    this.listeners.push({ address: intake.listen.address, host: bound.address, port: bound.port, activated });
    this.log.info(
      { event: 'listening', listen: intake.listen.address, host: bound.address, port: bound.port, allow: intake.listen.allow, activated },
      `listening on ${bound.address}:${bound.port}${activated ? ' (socket from systemd)' : ''}`,
    );
  }

  /**
   * [events]: the provider webhook listener. Verified events go to the recorder
   * (delivery/provider-events.ts), which matches them to retained sent mail and tells senders of
   * late failures; metrics count them once recorded.
   */
  private async startEvents(): Promise<void> {
    const config = this.config.events;
    const log = this.log;
    const recorder = new ProviderEventRecorder(
      this.spool,
      () => ({ hostname: this.config.hostname, bounceFrom: this.config.bounceFrom, admin: this.config.local.admin, complaintsToAdmin: this.config.events?.complaintsToAdmin ?? false }),
      log,
      { inFlight: () => this.scheduler.inFlightCount },
    );
    const metrics = this.metrics;
    if (metrics) recorder.on('recorded', (r: RecordedEvents) => metrics.onProviderEvents(r.upstream, r.events, r.unmatched));
    await this.startPolling(recorder.sink);
    if (!config) return;
    // Loaded only when [events] is configured: the provider verifiers pull in lossless-json & co.
    const { EventsListener } = await import('./events/listener.js');
    this.events = new EventsListener({ config, upstreams: this.config.upstreams, sink: recorder.sink, log });
    const bound = await this.events.start();
    this.eventsPort = bound.port;
    log.info({ event: 'events-listening', host: bound.address, port: bound.port }, `provider webhooks on http://${bound.address}:${bound.port}/events/<upstream>`);
  }

  /**
   * `poll = true` upstreams: their pull APIs feed the same sink (the recorder, which also counts
   * the events), with or without [events]. Resend's per-message lookups list the messages the
   * spool retained as sent through that upstream.
   */
  private async startPolling(sink: EventSink): Promise<void> {
    this.pollSink = sink;
    await this.configurePolling(this.config.upstreams);
  }

  private pollSink: EventSink | undefined;

  /** The pollers (and the REST client they pull in) are loaded once an upstream polls, at start or on reload. */
  private async configurePolling(upstreams: UpstreamConfig[]): Promise<void> {
    if (!this.pollers) {
      if (!this.pollSink || !upstreams.some((u) => 'poll' in u && u.poll !== undefined)) return;
      const { Pollers } = await import('./events/poll/index.js');
      this.pollers = new Pollers({ sink: this.pollSink, listSent: listSent(this.spool), log: this.log });
    }
    await this.pollers.configure(upstreams);
  }

  /** The port the webhook listener is bound to (the real port when configured as 0). */
  eventsPort: number | undefined;

  /** host:port the metrics endpoint is bound to (the real port when configured as 0). */
  get metricsAddress(): string | undefined {
    const bound = this.metricsServer?.address;
    if (!bound) return undefined;
    return bound.family === 'IPv6' ? `[${bound.address}]:${bound.port}` : `${bound.address}:${bound.port}`;
  }

  /** What `mailshim status` shows. */
  status(now = Date.now()): StatusReport {
    const counts = this.spool.counts();
    return {
      pid: process.pid,
      version: VERSION,
      configFile: this.config.file,
      startedAt: this.startedAt,
      uptimeSeconds: Math.round((now - this.startedAt) / 1000),
      listeners: this.listeners,
      upstreams: this.scheduler.activeRouter.health().map((h) => {
        const upstream = this.config.upstreams.find((u) => u.name === h.name);
        return { ...h, target: upstream ? upstreamTarget(upstream) : '?', state: upstreamState(h) };
      }),
      queue: {
        messages: counts.messages,
        byState: counts.byState,
        recipientsByStatus: counts.recipientsByStatus,
        oldestReceivedAt: counts.oldestReceivedAt,
        oldestAgeSeconds: counts.oldestReceivedAt === null ? null : Math.max(0, Math.round((now - counts.oldestReceivedAt) / 1000)),
        fileBytes: this.spool.fileBytes(),
        liveBytes: this.spool.liveBytes(),
      },
      inFlight: this.scheduler.inFlightCount,
      metrics: this.metricsAddress ?? null,
      spool: { problems: this.spool.health().problems },
      polls: this.pollers?.status() ?? [],
    };
  }

  /**
   * The sendmail path: the submission socket, then the maildrop import. Maildrop files left while
   * we were down are imported before the scheduler starts (see intake/maildrop.ts for why that
   * matters). Neither is fatal: the SMTP listeners are the main job, and sendmail falls back to
   * the maildrop when the socket is missing.
   */
  private async startLocalSubmission(): Promise<void> {
    const { socket, maildrop: dir } = this.config.submission;
    const submission = new SubmissionServer(socket, this.spool, this.submissionHooks(), this.log);
    try {
      await submission.start();
      this.submission = submission;
      this.log.info({ event: 'listening-local', socket }, `local submission on ${socket}`);
    } catch (error) {
      this.log.error({ err: error, event: 'submission-disabled', socket }, `local submission socket disabled: ${(error as Error).message}`);
    }
    const maildrop = new MaildropImporter(
      dir,
      this.spool,
      () => this.localPolicy(),
      this.log,
      () => this.config.spool.maxMessageSize,
    );
    try {
      await maildrop.start();
      this.maildrop = maildrop;
    } catch (error) {
      this.log.error({ err: error, event: 'maildrop-disabled', dir }, `maildrop import disabled: ${(error as Error).message}`);
    }
  }

  localPolicy(): LocalPolicy {
    return { hostname: this.config.hostname, local: this.config.local, aliases: this.aliases };
  }

  private submissionHooks() {
    return {
      policy: () => this.localPolicy(),
      maxMessageSize: () => this.config.spool.maxMessageSize,
      limits: () => this.config.submission,
      // sendmail -q: every deferred message is due now (and upstream cool-downs are forgotten).
      flush: async () => (await this.queueAction({ op: 'retry-all' }, undefined)).count ?? 0,
      reloadAliases: () => {
        this.aliases = readAliases(this.config, this.log, this.aliases);
        return { entries: this.aliases.entries.size, problems: this.aliases.problems };
      },
    };
  }

  /**
   * An operator's queue change (control socket): applied once the message's in-flight attempt has
   * returned, so its outcome wins; logged (the journal keeps what the operator's terminal loses).
   * A change that makes mail due also forgets upstream cool-downs, as `queue flush` does.
   */
  async queueAction(action: QueueAction, operatorUid: number | undefined): Promise<QueueActionResult> {
    const settings = { hostname: this.config.hostname, bounceFrom: this.config.bounceFrom };
    const apply = () => applyQueueAction(this.spool, action, settings);
    if ('id' in action && this.scheduler.isInFlight(action.id)) {
      this.log.info({ event: 'operator-wait', action: `queue-${action.op}`, queueId: action.id }, `operator: ${action.op} ${action.id} waits for its current delivery attempt`);
    }
    const result = 'id' in action ? await this.scheduler.exclusive(action.id, apply) : await apply();
    if (result.result === 'done') {
      const { level, fields } = auditEntry(action, result);
      this.log[level]({ event: 'operator', action: `queue-${action.op}`, operatorUid, ...fields }, `operator: ${action.op}${'id' in action ? ` ${action.id}` : ''}`);
      if (action.op === 'retry' || action.op === 'release' || action.op === 'retry-all' || result.dsnId) this.flush();
    }
    return result;
  }

  /** `queue flush`: forget upstream cool-downs and look at the due index now. */
  flush(): void {
    this.scheduler.activeRouter.resetHealth();
    this.scheduler.wake();
    this.log.info({ event: 'flush' }, 'flush requested: upstream cool-downs cleared');
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
    if (next.submission.socket !== this.config.submission.socket || next.submission.maildrop !== this.config.submission.maildrop) {
      this.log.warn({ event: 'reload' }, 'submission.socket/maildrop changed: take effect after a restart');
    }
    if (next.control.socket !== this.config.control.socket || next.metrics?.address !== this.config.metrics?.address) {
      this.log.warn({ event: 'reload' }, '[control] or [metrics] changed: takes effect after a restart');
    }
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
    this.spool.setLimits(spoolLimits(next));
    const old = this.scheduler.reconfigure(await buildRouter(next), schedulerSettings(next));
    this.config = next;
    this.aliases = readAliases(next, this.log, this.aliases);
    await this.configurePolling(next.upstreams);
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
    await this.control?.close();
    await this.metricsServer?.close();
    await this.events?.close();
    await this.pollers?.stop();
    const left = await this.scheduler.stop(graceMs);
    if (left > 0) this.log.warn({ event: 'stopping', inFlight: left }, `${left} delivery attempt(s) still running; they will be retried after restart`);
    await this.scheduler.activeRouter.close();
    await this.spool.close();
    this.lock?.release();
    this.log.info({ event: 'stopped' }, 'stopped');
  }
}
