/** The typed, validated configuration every other module receives. Nothing outside src/config reads files. */
import type { Rate } from './units.js';

export type TlsMode = 'starttls' | 'implicit' | 'none';

/** What a listener does with a LF not preceded by CR inside DATA (Postfix smtpd_forbid_bare_newline). */
export type BareNewline = 'normalize' | 'reject';

export type AuthMode = 'off' | 'optional' | 'required';
export type TlsVersion = 'TLSv1' | 'TLSv1.1' | 'TLSv1.2' | 'TLSv1.3';

export interface ListenConfig {
  /** As written, e.g. "127.0.0.1:25" or "[::1]:25". */
  address: string;
  host: string;
  port: number;
  /** CIDR networks allowed to connect. */
  allow: string[];
  tls: TlsMode;
  /** PEM certificate chain and key paths (required for starttls/implicit). */
  cert?: string;
  key?: string;
  tlsMinVersion: TlsVersion;
  auth: AuthMode;
  usersFile?: string;
  /** Refuse AUTH before TLS. Defaults to true unless the listener is loopback. */
  requireTlsForAuth: boolean;
  maxConnections: number;
  maxConnectionsPerIp: number;
  /** Messages per client IP. */
  rateLimit?: Rate;
  /** Envelope-sender patterns this listener accepts; empty = any. */
  allowedSenders: string[];
  /** Idle time before a silent client is disconnected (ms). */
  idleTimeout: number;
  /** Bare LF in DATA: normalised to CRLF (default) or refused with 550 5.5.2. */
  bareNewline: BareNewline;
  /** Pause before the 220 banner (ms); a client that talks first is refused. 0 = greet at once. */
  greetPause: number;
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
  /** The file `ca` was read from (ca_file), as check-config prints it. */
  caFile?: string;
}

export interface MaildirUpstreamConfig extends UpstreamCommon {
  type: 'maildir';
  /** Directory that receives one .eml file per delivered message. */
  path: string;
}

/** The REST API provider types (src/upstreams/<type>.ts). */
export const REST_TYPES = ['sendgrid', 'mailgun', 'postmark', 'resend', 'ses', 'mailjet', 'brevo', 'sparkpost'] as const;
export type RestType = (typeof REST_TYPES)[number];

interface RestCommon extends UpstreamCommon {
  /** Base URL of the API (https; http only for loopback test servers), without a trailing slash. */
  endpoint: string;
  /** Requests per window, e.g. 10 per 1000 ms; undefined = unlimited. Defaults per provider (DEFAULT_RATES). */
  rateLimit?: { count: number; perMs: number };
  /** What to do with a message this API cannot express (see UnsupportedPolicy). */
  unsupported?: UnsupportedPolicy;
  /**
   * How this provider's webhooks at POST /events/<name> are verified (src/events): Mailgun's
   * signing key, SendGrid's verification public key, Resend's "whsec_" secret; the Basic
   * credentials put in the webhook URL (Postmark, Mailjet, SparkPost, Brevo); Brevo's bearer token;
   * the SNS topics allowed to post SES notifications. Unset = that provider's webhooks get 401.
   */
  webhookSigningKey?: string;
  webhookUsername?: string;
  webhookPassword?: string;
  webhookToken?: string;
  webhookTopicArn?: string[];
  /**
   * `poll = true`: fetch this provider's events from its pull API every `pollInterval` ms instead of
   * (or besides) receiving webhooks (src/events/poll); set only when polling is on.
   */
  poll?: { intervalMs: number };
}

/**
 * A message a JSON API cannot carry faithfully: "fallback" (default) tries the next upstream and
 * bounces with the reason when none can; "degrade" sends what the API can express (inline images
 * as regular attachments) and logs what changed; "bounce" bounces at once with the reason.
 */
export type UnsupportedPolicy = 'fallback' | 'degrade' | 'bounce';

/** Providers authenticated by one API key. */
export interface ApiKeyUpstreamConfig extends RestCommon {
  type: 'sendgrid' | 'postmark' | 'resend' | 'brevo' | 'sparkpost';
  apiKey: string;
  /** Postmark only: the message stream (default "outbound"). */
  messageStream?: string;
}

export interface MailgunUpstreamConfig extends RestCommon {
  type: 'mailgun';
  apiKey: string;
  /** Sending domain: POST /v3/{domain}/messages.mime */
  domain: string;
}

export interface MailjetUpstreamConfig extends RestCommon {
  type: 'mailjet';
  apiKey: string;
  secretKey: string;
}

export interface SesUpstreamConfig extends RestCommon {
  type: 'ses';
  accessKeyId: string;
  secretAccessKey: string;
  /** Optional STS session token for temporary credentials. */
  sessionToken?: string;
  region: string;
}

export type RestUpstreamConfig = ApiKeyUpstreamConfig | MailgunUpstreamConfig | MailjetUpstreamConfig | SesUpstreamConfig;

/** Where an OAuth upstream's SMTP path connects (smtp.office365.com / smtp.gmail.com:587 unless overridden). */
export interface OAuthSmtpTarget {
  host: string;
  port: number;
  tls: TlsMode;
  /** Extra trusted CA certificates (PEM text), for tests and TLS-intercepting proxies. */
  ca?: string;
}

interface OAuthCommon extends UpstreamCommon {
  /** Base URL of the mail API (Graph or Gmail), for via = "graph" / "api" and test-upstream. */
  endpoint: string;
  /** Token endpoint URL. */
  tokenEndpoint: string;
  /** The mailbox that sends when the envelope sender is not one of `mailboxDomains`. */
  sendAs?: string;
  /** Domains whose addresses are mailboxes of this tenant/Workspace (default: the domain of send_as). */
  mailboxDomains: string[];
  smtp: OAuthSmtpTarget;
}

/** Microsoft 365 / Exchange Online: client credentials (secret or certificate assertion). */
export interface M365UpstreamConfig extends OAuthCommon {
  type: 'm365';
  via: 'graph' | 'smtp';
  tenant: string;
  clientId: string;
  clientSecret?: string;
  /** PEM certificate (public) and its private key, for the client assertion. */
  certificate?: string;
  privateKey?: string;
}

/** Google Workspace: service account with domain-wide delegation (JWT bearer grant). */
export interface GmailUpstreamConfig extends OAuthCommon {
  type: 'gmail';
  via: 'api' | 'smtp';
  clientEmail: string;
  /** The service account's numeric client id (for the delegation advice), when the key file has it. */
  clientId?: string;
  privateKey: string;
  privateKeyId?: string;
}

/** The OAuth 2.0 mailbox provider types (src/upstreams/m365.ts, gmail.ts). */
export const OAUTH_TYPES = ['m365', 'gmail'] as const;

export type OAuthUpstreamConfig = M365UpstreamConfig | GmailUpstreamConfig;

export type UpstreamConfig = SmtpUpstreamConfig | MaildirUpstreamConfig | RestUpstreamConfig | OAuthUpstreamConfig;

export interface SpoolConfig {
  path: string;
  /** Cap on the live spool data; beyond it new mail gets 452 4.3.1. */
  maxSize: number;
  maxMessageSize: number;
  maxRecipients: number;
}

export interface RetryConfig {
  initialDelay: number;
  maxDelay: number;
  maxAge: number;
  /** delay_warning_time (Postfix): send the sender a "still trying" notice once a message is this old; 0/absent = never. */
  delayWarning?: number;
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
  /** `local_domains`: domains whose addresses are local names (aliases, then admin); always has "localhost". */
  domains: string[];
}

/** [submission]: how the sendmail command hands messages to the daemon. */
export interface SubmissionConfig {
  /** Unix socket the daemon listens on (mode 0666: any local user may submit). */
  socket: string;
  /** World-writable sticky directory used when the daemon is not running. */
  maildrop: string;
  /** Concurrent connections on the socket; more are answered "try later" (sendmail then uses the maildrop). */
  maxConnections: number;
  /** Concurrent submissions per uid, as the client claims it (node cannot read SO_PEERCRED). */
  maxConnectionsPerUid: number;
  /** Time a client has for its whole request, header and body (ms); not reset by each byte. */
  requestTimeout: number;
  /** Bodies larger than this are written to a private temporary file as they arrive, not held in memory. */
  streamThreshold: number;
}

/** The daemon's control socket (status, reload, flush) for the `mailshim` CLI; never the sendmail path. */
export interface ControlConfig {
  /** Unix socket path. */
  socket: string;
  /** File mode of the socket: 0o600 (owner only) or 0o660 (owner and group). */
  mode: number;
}

/** Prometheus endpoint; absent when [metrics] is not configured. */
export interface MetricsConfig {
  address: string;
  host: string;
  port: number;
}

/** events.retention and events.max_retained by default (also when only poll = true upstreams report events). */
export const DEFAULT_RETENTION_MS = 7 * 86_400_000;
export const DEFAULT_MAX_RETAINED = 100_000;

/** [events]: the HTTP listener for provider webhooks (src/events); absent when not configured. */
export interface EventsConfig {
  address: string;
  host: string;
  port: number;
  /** The URL the provider reaches (a TLS reverse proxy in front of address), for test-upstream's instructions. */
  publicUrl?: string;
  /** Largest webhook body accepted; beyond it 413. */
  maxBody: number;
  /** How long a message accepted with a provider message id is kept to match provider events (ms). */
  retention: number;
  /** The most such messages kept (the oldest go first). */
  maxRetained: number;
  /** Tell [local] admin about each complaint (never the sender). */
  complaintsToAdmin: boolean;
  /**
   * Tests only: fetch SNS signing certificates and confirm subscriptions at this loopback origin
   * instead of the (already checked) sns.<region>.amazonaws.com URL.
   */
  snsOrigin?: string;
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
  /** Files holding secrets (and whether the config itself has an inline secret), for permission checks. */
  secretFiles: string[];
  inlineSecrets: boolean;
  /** Valid but risky settings, logged at start. */
  warnings: string[];
  control: ControlConfig;
  metrics?: MetricsConfig;
  events?: EventsConfig;
}

/** Keys whose values are secrets: masked by check-config and never logged. */
export const SECRET_KEYS = new Set([
  'password',
  'api_key',
  'secret_key',
  'secret_access_key',
  'session_token',
  'client_secret',
  'private_key',
  'webhook_signing_key',
  'webhook_password',
  'webhook_token',
]);
