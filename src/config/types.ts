/** The typed, validated configuration every other module receives. Nothing outside src/config reads files. */

export type TlsMode = 'starttls' | 'implicit' | 'none';

export interface ListenConfig {
  /** As written, e.g. "127.0.0.1:25" or "[::1]:25". */
  address: string;
  host: string;
  port: number;
  /** CIDR networks allowed to connect. */
  allow: string[];
}

interface UpstreamCommon {
  name: string;
  /** Envelope-sender patterns ("*@billing.example.com"); empty means every sender. */
  matchFrom: string[];
  /** Parallel deliveries to this upstream. */
  maxConcurrency: number;
  /** Per-attempt timeout in milliseconds. */
  timeout: number;
}

export interface SmtpUpstreamConfig extends UpstreamCommon {
  type: 'smtp';
  host: string;
  port: number;
  tls: TlsMode;
  username?: string;
  password?: string;
  /** Extra trusted CA certificates (PEM text), for private relays. */
  ca?: string;
}

export interface MaildirUpstreamConfig extends UpstreamCommon {
  type: 'maildir';
  /** Directory that receives one .eml file per delivered message. */
  path: string;
}

export type UpstreamConfig = SmtpUpstreamConfig | MaildirUpstreamConfig;

export interface SpoolConfig {
  path: string;
  maxMessageSize: number;
  maxRecipients: number;
}

export interface RetryConfig {
  initialDelay: number;
  maxDelay: number;
  maxAge: number;
}

export interface LogConfig {
  level: 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal';
}

/** [local]: how mail from this machine's users and to local names is handled (sendmail intake). */
export interface LocalConfig {
  /** sendmail/Postfix-format aliases file; a missing file means no aliases. */
  aliases: string;
  /** Where a local name without an alias goes; without it such a name is refused (EX_NOUSER). */
  admin?: string;
  /** Masquerading address for local senders (envelope and header From); unset = only qualify them. */
  from?: string;
  /** "local": rewrite only local senders; "all": every sender. */
  rewrite: 'local' | 'all';
  keepOriginalFromAsReplyTo: boolean;
}

/** [submission]: how the sendmail command hands messages to the daemon. */
export interface SubmissionConfig {
  /** Unix socket the daemon listens on (mode 0666: any local user may submit). */
  socket: string;
  /** World-writable sticky directory used when the daemon is not running. */
  maildrop: string;
}

export interface Config {
  /** Path of the file this was loaded from. */
  file: string;
  hostname: string;
  /** Envelope and header sender of delivery status notifications. */
  bounceFrom: string;
  spool: SpoolConfig;
  retry: RetryConfig;
  listen: ListenConfig[];
  upstreams: UpstreamConfig[];
  log: LogConfig;
  local: LocalConfig;
  submission: SubmissionConfig;
}

/** Keys whose values are secrets: masked by check-config and never logged. */
export const SECRET_KEYS = new Set(['password', 'api_key', 'secret_key', 'secret_access_key']);
