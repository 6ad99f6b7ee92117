/** Loads the TOML config file into a validated, typed Config. */
import { hostname as systemHostname } from 'node:os';
import { join } from 'node:path';
import { ConfigError } from '../errors.js';
import { isLoopbackHost, parseHostPort } from './address.js';
import { parseDocument, readConfigSource } from './document.js';
import { defaultListener, readListen } from './listen.js';
import { readLocal, readMessageLimits, readSubmission } from './local.js';
import type { TableReader } from './reader.js';
import type { Config, ControlConfig, EventsConfig, ListenConfig, LogConfig, MetricsConfig, UpstreamConfig } from './types.js';
import { DEFAULT_MAX_RETAINED, DEFAULT_RETENTION_MS } from './types.js';
import { readUpstream } from './upstream.js';

export { configPath, DEFAULT_CONFIG_PATH } from './document.js';

export function loadConfig(file: string, env: NodeJS.ProcessEnv = process.env): Config {
  return parseConfig(readConfigSource(file), file, env);
}

export function parseConfig(source: string, file: string, env: NodeJS.ProcessEnv = process.env): Config {
  const { root, ctx } = parseDocument(source, file, env);

  const hostname = root.string('hostname') ?? systemHostname();
  const bounceFrom = root.string('bounce_from') ?? `MAILER-DAEMON@${hostname}`;

  const spoolTable = root.child('spool');
  const spool = {
    path: spoolTable.path_('path', '/var/spool/mailshim')!,
    ...readMessageLimits(spoolTable),
    maxSize: spoolTable.size('max_size', 4 * 1024 ** 3),
  };
  if (spool.maxSize < spool.maxMessageSize) spoolTable.problem('max_size', 'must be at least max_message_size');
  spoolTable.finish();

  const retryTable = root.child('retry');
  const retry = {
    initialDelay: retryTable.duration('initial_delay', 60_000),
    maxDelay: retryTable.duration('max_delay', 3_600_000),
    maxAge: retryTable.duration('max_age', 5 * 86_400_000),
    // Postfix's delay_warning_time, off by default as in Postfix.
    delayWarning: retryTable.duration('delay_warning_time', 0),
  };
  if (retry.maxDelay < retry.initialDelay) retryTable.problem('max_delay', 'must not be shorter than initial_delay');
  retryTable.finish();

  const logTable = root.child('log');
  const log: LogConfig = { level: logTable.oneOf('level', ['trace', 'debug', 'info', 'warn', 'error', 'fatal'] as const, 'info') };
  logTable.finish();

  const controlTable = root.child('control');
  const control: ControlConfig = {
    // Next to the spool by default: a directory only the daemon's user (and root) can enter.
    socket: controlTable.path_('socket', join(spool.path, 'control.sock'))!,
    mode: Number.parseInt(controlTable.oneOf('mode', ['0600', '0660'] as const, '0600'), 8),
  };
  controlTable.finish();

  const metrics = root.has('metrics') ? readMetrics(root.child('metrics')) : undefined;
  const events = root.has('events') ? readEvents(root.child('events')) : undefined;

  const listenTables = root.has('listen') ? root.children('listen') : undefined;
  const listen: ListenConfig[] = listenTables ? listenTables.map(readListen) : [defaultListener()];

  const upstreamTables = root.children('upstream');
  if (upstreamTables.length === 0) root.problem('upstream', 'at least one [[upstream]] table is required');
  const upstreams: UpstreamConfig[] = [];
  const names = new Set<string>();
  upstreamTables.forEach((table, index) => {
    const upstream = readUpstream(table, index);
    if (!upstream) return;
    if (names.has(upstream.name)) table.problem('name', `duplicate upstream name "${upstream.name}"`);
    names.add(upstream.name);
    if (upstream.type === 'smtp' && upstream.tls === 'none' && !isLoopbackHost(upstream.host)) {
      table.problem('tls', `"none" sends credentials and mail in clear text; it is only allowed when host is loopback, got ${JSON.stringify(upstream.host)}`);
    }
    upstreams.push(upstream);
  });

  const local = readLocal(root.child('local'), hostname);
  const submission = readSubmission(root.child('submission'), spool.path);

  root.finish();
  if (ctx.problems.length > 0) {
    throw new ConfigError(ctx.problems.join('\n'), ctx.problems);
  }
  return {
    file,
    hostname,
    bounceFrom,
    spool,
    retry,
    listen,
    upstreams,
    log,
    local,
    submission,
    control,
    ...(metrics ? { metrics } : {}),
    ...(events ? { events } : {}),
    secretFiles: ctx.secretFiles,
    inlineSecrets: ctx.inlineSecrets,
    warnings: ctx.warnings,
  };
}

function readMetrics(table: TableReader): MetricsConfig {
  const address = table.string('address', '127.0.0.1:9325');
  const hostPort = parseHostPort(address);
  if (!hostPort) table.problem('address', `expected "host:port" or "[ipv6]:port", got ${JSON.stringify(address)}`);
  table.finish();
  return { address, host: hostPort?.host ?? '127.0.0.1', port: hostPort?.port ?? 9325 };
}

/** [events]: loopback by default; the internet reaches it through a TLS reverse proxy (docs/providers.md). */
function readEvents(table: TableReader): EventsConfig {
  const address = table.string('address', '127.0.0.1:8025');
  const hostPort = parseHostPort(address);
  if (!hostPort) table.problem('address', `expected "host:port" or "[ipv6]:port", got ${JSON.stringify(address)}`);
  else if (!isLoopbackHost(hostPort.host)) table.warn('address', `${address} is not loopback: webhooks carry no TLS here; put a TLS reverse proxy in front and listen on loopback`);
  const publicUrl = table.string('public_url');
  if (publicUrl !== undefined && !/^https:\/\/[^\s/]+(\/[^\s?#]*)?$/.test(publicUrl))
    table.problem('public_url', `expected an https URL like "https://relay.example.com/events", got ${JSON.stringify(publicUrl)}`);
  const maxBody = table.size('max_body', 1024 * 1024);
  const retention = table.duration('retention', DEFAULT_RETENTION_MS);
  const maxRetained = table.integer('max_retained', 1, 10_000_000, DEFAULT_MAX_RETAINED);
  const complaintsToAdmin = table.boolean('complaints_to_admin', false);
  const snsOrigin = table.string('sns_certificate_origin');
  if (snsOrigin !== undefined) {
    let host = '';
    try {
      host = new URL(snsOrigin).hostname.replace(/^\[|\]$/g, '');
    } catch {
      /* reported below */
    }
    if (!isLoopbackHost(host)) table.problem('sns_certificate_origin', `is for tests only and must be a loopback URL, got ${JSON.stringify(snsOrigin)}`);
  }
  table.finish();
  return {
    address,
    host: hostPort?.host ?? '127.0.0.1',
    port: hostPort?.port ?? 8025,
    publicUrl: publicUrl?.replace(/\/+$/, ''),
    maxBody,
    retention,
    maxRetained,
    complaintsToAdmin,
    ...(snsOrigin ? { snsOrigin: snsOrigin.replace(/\/+$/, '') } : {}),
  };
}
