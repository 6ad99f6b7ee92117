/**
 * The [local] and [submission] tables, and the small config loader of the sendmail command.
 *
 * The sendmail command runs as any user (PHP as www-data) and on every cron job, so it reads only
 * the keys it needs: it never reads upstream secrets (password_file is usually root-only), never
 * expands their ${VAR}s and never validates tables it does not use (the daemon does that).
 */
import { hostname as systemHostname } from 'node:os';
import { ConfigError } from '../errors.js';
import { validAddress } from '../message/addresses.js';
import { parseDocument, readConfigSource } from './document.js';
import type { TableReader } from './reader.js';
import type { LocalConfig, SubmissionConfig } from './types.js';

export const DEFAULT_SOCKET = '/run/mailshim/submit.sock';
export const DEFAULT_ALIASES = '/etc/aliases';

function mailbox(table: TableReader, key: string): string | undefined {
  const value = table.string(key);
  if (value === undefined) return undefined;
  const valid = validAddress(value, { requireDomain: true });
  if (valid === undefined) table.problem(key, `expected a full address like "alerts@example.com", got ${JSON.stringify(value)}`);
  return valid ?? value;
}

/**
 * Postfix's mydestination default is `$myhostname, localhost.$mydomain, localhost`. Ours is the
 * host name and localhost, except a host name of exactly two labels ("example.com"): a VPS named
 * after its own bare domain must not turn that domain's mail (orders@example.com) into local
 * names delivered to admin. Such hosts (and "example.co.uk") set local_domains explicitly.
 */
export function defaultLocalDomains(hostname: string): string[] {
  const host = hostname.toLowerCase();
  const bareDomain = host.split('.').length === 2;
  return ['localhost', 'localhost.localdomain', ...(bareDomain || host === 'localhost' ? [] : [host])];
}

function localDomainList(table: TableReader, hostname: string): string[] {
  const domains = table.stringList('local_domains', defaultLocalDomains(hostname)).map((d) => d.toLowerCase());
  for (const domain of domains) {
    if (validAddress(`postmaster@${domain}`, { requireDomain: true }) === undefined) table.problem('local_domains', `expected domain names, got ${JSON.stringify(domain)}`);
  }
  return domains.includes('localhost') ? domains : ['localhost', ...domains];
}

/**
 * The [spool] limits a message is held to, read the same way by the daemon's loader (load.ts) and
 * the sendmail command's (loadClientConfig below): sendmail refuses an oversize message before submitting it,
 * and `sendmail -bs` applies the SMTP listener's recipient cap, so one default each.
 */
export function readMessageLimits(spool: TableReader): { maxMessageSize: number; maxRecipients: number } {
  return {
    maxMessageSize: spool.size('max_message_size', 25 * 1024 * 1024),
    maxRecipients: spool.integer('max_recipients', 1, 100_000, 100),
  };
}

export function readLocal(table: TableReader, hostname: string): LocalConfig {
  const local: LocalConfig = {
    domains: localDomainList(table, hostname),
    aliases: table.path_('aliases', DEFAULT_ALIASES)!,
    admin: mailbox(table, 'admin'),
    from: mailbox(table, 'from'),
    rewrite: table.oneOf('rewrite', ['local', 'all'] as const, 'local'),
    keepOriginalFromAsReplyTo: table.boolean('keep_original_from_as_reply_to', false),
  };
  table.finish();
  return local;
}

/** The maildrop defaults to a sibling of the spool directory: the spool itself is private (0700). */
export function readSubmission(table: TableReader, spoolPath: string): SubmissionConfig {
  const submission: SubmissionConfig = {
    socket: table.path_('socket', DEFAULT_SOCKET)!,
    maildrop: table.path_('maildrop', `${spoolPath}-maildrop`)!,
    maxConnections: table.integer('max_connections', 1, 10_000, 20),
    maxConnectionsPerUid: table.integer('max_connections_per_uid', 1, 10_000, 5),
    requestTimeout: table.duration('request_timeout', 60_000),
    streamThreshold: table.size('stream_threshold', 1024 * 1024),
  };
  if (submission.maxConnectionsPerUid > submission.maxConnections) table.problem('max_connections_per_uid', 'must not be more than max_connections');
  table.finish();
  return submission;
}

/** What the sendmail/mailq/newaliases commands need from the config. */
export interface ClientConfig {
  file: string;
  hostname: string;
  spoolPath: string;
  maxMessageSize: number;
  /** [spool] max_recipients: `sendmail -bs` applies the SMTP listener's cap, as Postfix's does. */
  maxRecipients: number;
  local: LocalConfig;
  submission: SubmissionConfig;
}

export function loadClientConfig(file: string, env: NodeJS.ProcessEnv = process.env): ClientConfig {
  const source = readConfigSource(file, ' (the config must be readable by every user who sends mail; keep secrets in *_file keys)');
  const { root, ctx } = parseDocument(source, file, env);
  const spool = root.child('spool');
  const spoolPath = spool.path_('path', '/var/spool/mailshim')!;
  const hostname = root.string('hostname') ?? systemHostname();
  const config: ClientConfig = {
    file,
    hostname,
    spoolPath,
    ...readMessageLimits(spool),
    local: readLocal(root.child('local'), hostname),
    submission: readSubmission(root.child('submission'), spoolPath),
  };
  if (ctx.problems.length > 0) throw new ConfigError(ctx.problems.join('\n'), ctx.problems);
  return config;
}
