/**
 * The [local] and [submission] tables, and the small config loader of the sendmail command.
 *
 * The sendmail command runs as any user (PHP as www-data) and on every cron job, so it reads only
 * the keys it needs: it never reads upstream secrets (password_file is usually root-only), never
 * expands their ${VAR}s and never validates tables it does not use (the daemon does that).
 */
import { hostname as systemHostname } from 'node:os';
import { ConfigError } from '../errors.js';
import { parseDocument, readConfigSource } from './document.js';
import type { TableReader } from './reader.js';
import type { LocalConfig, SubmissionConfig } from './types.js';

export const DEFAULT_SOCKET = '/run/mailshim/submit.sock';
export const DEFAULT_ALIASES = '/etc/aliases';

const MAILBOX = /^[^\s@<>()",;:\\[\]\x00-\x1f\x7f]+@[^\s@<>()",;:\\[\]\x00-\x1f\x7f]+$/;

function mailbox(table: TableReader, key: string): string | undefined {
  const value = table.string(key);
  if (value !== undefined && !MAILBOX.test(value)) table.problem(key, `expected a full address like "alerts@example.com", got ${JSON.stringify(value)}`);
  return value;
}

export function readLocal(table: TableReader): LocalConfig {
  const local: LocalConfig = {
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
  local: LocalConfig;
  submission: SubmissionConfig;
}

export function loadClientConfig(file: string, env: NodeJS.ProcessEnv = process.env): ClientConfig {
  const source = readConfigSource(file, ' (the config must be readable by every user who sends mail; keep secrets in *_file keys)');
  const { root, ctx } = parseDocument(source, file, env);
  const spool = root.child('spool');
  const spoolPath = spool.path_('path', '/var/spool/mailshim')!;
  const config: ClientConfig = {
    file,
    hostname: root.string('hostname') ?? systemHostname(),
    spoolPath,
    maxMessageSize: spool.size('max_message_size', 25 * 1024 * 1024),
    local: readLocal(root.child('local')),
    submission: readSubmission(root.child('submission'), spoolPath),
  };
  if (ctx.problems.length > 0) throw new ConfigError(ctx.problems.join('\n'), ctx.problems);
  return config;
}
