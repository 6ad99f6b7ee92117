/** Validation of one [[listen]] table, including the rules that keep a listener from being an open relay. */
import { isLoopbackHost, normalizeCidr, parseCidr, parseHostPort } from './address.js';
import type { TableReader } from './reader.js';
import type { ListenConfig } from './types.js';

export const LOOPBACK = ['127.0.0.0/8', '::1/128'];

export function defaultListener(): ListenConfig {
  return {
    address: '127.0.0.1:25',
    host: '127.0.0.1',
    port: 25,
    allow: LOOPBACK,
    tls: 'none',
    tlsMinVersion: 'TLSv1.2',
    auth: 'off',
    requireTlsForAuth: false,
    maxConnections: 100,
    maxConnectionsPerIp: 100,
    allowedSenders: [],
    idleTimeout: 300_000,
    bareNewline: 'normalize',
    greetPause: 0,
  };
}

const isWildcard = (host: string) => host === '0.0.0.0' || host === '::' || host === '*';

export function readListen(table: TableReader): ListenConfig {
  const defaults = defaultListener();
  const address = table.required('address') ?? defaults.address;
  const hostPort = parseHostPort(address);
  if (!hostPort) table.problem('address', `expected "host:port" or "[ipv6]:port", got ${JSON.stringify(address)}`);
  const host = hostPort?.host ?? defaults.host;
  const loopback = isLoopbackHost(host);
  const allowGiven = table.has('allow');
  const allow = table.stringList('allow', LOOPBACK);
  for (const cidr of allow) {
    if (!parseCidr(cidr)) table.problem('allow', `expected CIDR networks like "192.168.1.0/24", got ${JSON.stringify(cidr)}`);
  }
  const tls = table.oneOf('tls', ['none', 'starttls', 'implicit'] as const, 'none');
  const cert = table.path_('cert');
  const key = table.privateFile('key');
  if (tls !== 'none' && (cert === undefined || key === undefined)) table.problem(cert === undefined ? 'cert' : 'key', `is required when tls = "${tls}"`);
  const tlsMinVersion = table.oneOf('tls_min_version', ['TLSv1', 'TLSv1.1', 'TLSv1.2', 'TLSv1.3'] as const, 'TLSv1.2');
  if (tlsMinVersion === 'TLSv1' || tlsMinVersion === 'TLSv1.1') table.warn('tls_min_version', `${tlsMinVersion} is obsolete and weak; allowed only for old appliances`);
  const auth = table.oneOf('auth', ['off', 'optional', 'required'] as const, 'off');
  const usersFile = table.privateFile('users_file');
  if (auth !== 'off' && usersFile === undefined) table.problem('users_file', `is required when auth = "${auth}"`);
  const requireTlsForAuth = table.boolean('require_tls_for_auth', !loopback);
  if (auth === 'required' && tls === 'none' && requireTlsForAuth) {
    table.problem('auth', 'auth = "required" with tls = "none" can never succeed: set tls, or require_tls_for_auth = false for old appliances');
  }
  if (auth !== 'off' && !requireTlsForAuth && !loopback) {
    table.warn('require_tls_for_auth', 'passwords are accepted in clear text on a network listener');
    if (isWildcard(host) && !allowGiven) table.problem('allow', 'a wildcard listener accepting clear-text AUTH needs an explicit allow list');
  }
  // An allow-list wider than a /8 (IPv4) or a /32 (IPv6) without mandatory AUTH would relay for
  // anyone: refuse it. Judged after normalizeCidr, i.e. on the ranges the matcher really admits
  // (an IPv4-mapped IPv6 range is the IPv4 range it maps).
  if (auth !== 'required') {
    for (const text of allow) {
      const cidr = parseCidr(text);
      const wide = (cidr ? normalizeCidr(cidr) : []).find((c) => c.prefix < (c.family === 'ipv4' ? 8 : 32));
      if (!cidr || !wide) continue;
      const written = `${cidr.address}/${cidr.prefix}`;
      const means = `${wide.address}/${wide.prefix}`;
      table.problem('allow', `${written}${means === written ? '' : ` (covers ${means})`} without auth = "required" would make an open relay`);
    }
  }
  const maxConnections = table.integer('max_connections', 1, 100_000, defaults.maxConnections);
  // On loopback every client is this host, so a per-IP cap would only cap the host itself.
  const maxConnectionsPerIp = table.integer('max_connections_per_ip', 1, 100_000, loopback ? maxConnections : Math.min(10, maxConnections));
  const rateLimit = table.rate('rate_limit');
  const allowedSenders = table.stringList('allowed_senders', []);
  const idleTimeout = table.duration('idle_timeout', defaults.idleTimeout);
  const bareNewline = table.oneOf('bare_newline', ['normalize', 'reject'] as const, defaults.bareNewline);
  const greetPause = table.duration('greet_pause', defaults.greetPause);
  if (greetPause > 60_000) table.problem('greet_pause', 'at most 60s: clients give up on a silent server');
  table.finish();
  return {
    address,
    host,
    port: hostPort?.port ?? defaults.port,
    allow,
    tls,
    cert,
    key,
    tlsMinVersion,
    auth,
    usersFile,
    requireTlsForAuth,
    maxConnections,
    maxConnectionsPerIp,
    rateLimit,
    allowedSenders,
    idleTimeout,
    bareNewline,
    greetPause,
  };
}
