/** Loads the TOML config file into a validated, typed Config. */
import { hostname as systemHostname } from 'node:os';
import { ConfigError } from '../errors.js';
import { parseCidr, parseHostPort, isLoopbackHost } from './address.js';
import { readLocal, readSubmission } from './local.js';
import { parseDocument, readConfigSource } from './document.js';
import { TableReader } from './reader.js';
import type { Config, ListenConfig, LogConfig, UpstreamConfig } from './types.js';
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
    maxMessageSize: spoolTable.size('max_message_size', 25 * 1024 * 1024),
    maxRecipients: spoolTable.integer('max_recipients', 1, 100_000, 100),
  };
  spoolTable.finish();

  const retryTable = root.child('retry');
  const retry = {
    initialDelay: retryTable.duration('initial_delay', 60_000),
    maxDelay: retryTable.duration('max_delay', 3_600_000),
    maxAge: retryTable.duration('max_age', 5 * 86_400_000),
  };
  if (retry.maxDelay < retry.initialDelay) retryTable.problem('max_delay', 'must not be shorter than initial_delay');
  retryTable.finish();

  const logTable = root.child('log');
  const log: LogConfig = { level: logTable.oneOf('level', ['trace', 'debug', 'info', 'warn', 'error', 'fatal'] as const, 'info') };
  logTable.finish();

  const listenTables = root.has('listen') ? root.children('listen') : undefined;
  const listen: ListenConfig[] = listenTables ? listenTables.map(readListen) : [{ address: '127.0.0.1:25', host: '127.0.0.1', port: 25, allow: LOOPBACK }];

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

  const local = readLocal(root.child('local'));
  const submission = readSubmission(root.child('submission'), spool.path);

  root.finish();
  if (ctx.problems.length > 0) {
    throw new ConfigError(ctx.problems.join('\n'), ctx.problems);
  }
  return { file, hostname, bounceFrom, spool, retry, listen, upstreams, log, local, submission };
}

const LOOPBACK = ['127.0.0.0/8', '::1/128'];

function readListen(table: TableReader): ListenConfig {
  const address = table.required('address') ?? '127.0.0.1:25';
  const hostPort = parseHostPort(address);
  if (!hostPort) table.problem('address', `expected "host:port" or "[ipv6]:port", got ${JSON.stringify(address)}`);
  const allow = table.stringList('allow', LOOPBACK);
  for (const cidr of allow) {
    if (!parseCidr(cidr)) table.problem('allow', `expected CIDR networks like "192.168.1.0/24", got ${JSON.stringify(cidr)}`);
  }
  table.finish();
  return { address, host: hostPort?.host ?? '127.0.0.1', port: hostPort?.port ?? 25, allow };
}
