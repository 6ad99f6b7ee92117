/**
 * `mailshim status [--json]`: asks the running daemon over the control socket. Exit codes follow
 * the monitoring-plugin convention so it works directly as a Nagios/Icinga/Sensu check:
 *   0 OK, 1 WARNING (an upstream is failing transiently), 2 CRITICAL (daemon down, or an upstream
 *   rejects our configuration), 3 UNKNOWN (the config cannot be read, the daemon answers garbage).
 */
import type { Config } from '../config/types.js';
import { ControlClient } from '../control/client.js';
import type { StatusReport } from '../control/types.js';
import { ControlError } from '../errors.js';
import { Spool, type SpoolCounts } from '../spool/spool.js';
import { formatAge } from './exit.js';

export const STATUS_EXIT = { OK: 0, WARNING: 1, CRITICAL: 2, UNKNOWN: 3 } as const;

export interface StatusVerdict {
  exitCode: number;
  summary: string;
}

export function verdict(report: StatusReport): StatusVerdict {
  const storage = report.spool?.problems ?? [];
  if (storage.length > 0) return { exitCode: STATUS_EXIT.CRITICAL, summary: `CRITICAL: spool: ${storage.join('; ')}` };
  const config = report.upstreams.filter((u) => u.state === 'config-error');
  if (config.length > 0)
    return { exitCode: STATUS_EXIT.CRITICAL, summary: `CRITICAL: upstream ${config.map((u) => u.name).join(', ')} rejects our configuration; mail stays deferred until it is fixed` };
  const failing = report.upstreams.filter((u) => u.state === 'failing');
  if (failing.length > 0) return { exitCode: STATUS_EXIT.WARNING, summary: `WARNING: upstream ${failing.map((u) => u.name).join(', ')} failing; mail is being retried` };
  // Delivery is unaffected, but the provider's bounces go unseen until the credentials are fixed.
  const polls = (report.polls ?? []).filter((p) => p.state === 'config-error');
  if (polls.length > 0) return { exitCode: STATUS_EXIT.WARNING, summary: `WARNING: event polling refused for ${polls.map((p) => p.upstream).join(', ')}: ${polls[0]!.lastError}` };
  return { exitCode: STATUS_EXIT.OK, summary: `OK: ${report.queue.messages} message(s) queued` };
}

function megabytes(bytes: number): string {
  return `${(bytes / 1024 / 1024).toFixed(1)} MB`;
}

function ago(at: number | null, now: number): string {
  return at === null ? 'never' : `${formatAge(now - at)} ago`;
}

export function formatStatus(report: StatusReport, now = Date.now()): string {
  const q = report.queue;
  const lines = [
    `mailshim ${report.version}: running, pid ${report.pid}, up ${formatAge(report.uptimeSeconds * 1000)} (config ${report.configFile})`,
    'Listeners:',
    ...report.listeners.map((l) => `  ${l.host.includes(':') ? `[${l.host}]` : l.host}:${l.port}${l.activated ? '  (socket from systemd)' : ''}`),
    'Upstreams:',
    ...report.upstreams.map((u) => {
      const head = `  ${u.name}  ${u.type} ${u.target}  ${u.state}`;
      if (u.state === 'ok') return `${head}, last success ${ago(u.lastSuccessAt, now)}`;
      return `${head}, ${u.consecutiveFailures} consecutive failure(s), last error ${ago(u.lastErrorAt, now)} (${u.lastErrorClass}): ${u.lastError}`;
    }),
    `Queue: ${q.messages} message(s): ${q.byState.pending} pending, ${q.byState.deferred} deferred, ${q.byState.held} held; ${report.inFlight} being delivered; oldest ${q.oldestAgeSeconds === null ? '-' : formatAge(q.oldestAgeSeconds * 1000)}`,
    ...(q.fileBytes !== undefined && q.liveBytes !== undefined ? [`Spool: ${megabytes(q.fileBytes)} file, ${megabytes(q.liveBytes)} live (the rest is free pages, reused for new mail)`] : []),
    ...(report.polls?.length
      ? [
          'Event polling:',
          ...report.polls.map(
            (p) =>
              `  ${p.upstream}  every ${formatAge(p.intervalMs)}  ${p.state}, last success ${ago(p.lastSuccessAt, now)}, ${p.events} event(s)${p.state === 'ok' || p.state === 'starting' ? '' : `; last error ${ago(p.lastErrorAt, now)}: ${p.lastError}`}`,
          ),
        ]
      : []),
    ...(report.metrics ? [`Metrics: http://${report.metrics}/metrics`] : []),
  ];
  return lines.join('\n') + '\n';
}

/** With the daemon down, the queue is still worth knowing: mail piles up. Undefined if unreadable. */
async function spoolCounts(config: Config): Promise<SpoolCounts | undefined> {
  try {
    const spool = Spool.openExisting(config.spool.path);
    try {
      return spool.counts();
    } finally {
      await spool.close();
    }
  } catch {
    return undefined;
  }
}

export async function status(config: Config, json: boolean, out: NodeJS.WritableStream): Promise<number> {
  let report: StatusReport;
  try {
    report = await new ControlClient(config.control.socket).status();
  } catch (error) {
    const down = error instanceof ControlError && error.code === 'EDAEMONDOWN';
    const summary = `${down ? 'CRITICAL' : 'UNKNOWN'}: ${(error as Error).message}`;
    const counts = down ? await spoolCounts(config) : undefined;
    const queue = counts ? `Queue: ${counts.messages} message(s) waiting in ${config.spool.path} (${counts.byState.held} held)\n` : '';
    out.write(
      json
        ? JSON.stringify({ running: false, error: (error as Error).message, summary, ...(counts ? { queue: { messages: counts.messages, byState: counts.byState } } : {}) }) + '\n'
        : `${summary}\n${queue}`,
    );
    return down ? STATUS_EXIT.CRITICAL : STATUS_EXIT.UNKNOWN;
  }
  const result = verdict(report);
  out.write(json ? JSON.stringify({ running: true, ...report, summary: result.summary }, null, 2) + '\n' : `${formatStatus(report)}${result.summary}\n`);
  return result.exitCode;
}
