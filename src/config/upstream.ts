/** Validation of one [[upstream]] table, per type. */
import type { TableReader } from './reader.js';
import { DEFAULT_PORTS, readEndpoint } from './endpoint.js';
import { readOAuthUpstream } from './oauth-upstream.js';
import { OAUTH_TYPES, REST_TYPES, type RestType, type RestUpstreamConfig, type UpstreamConfig } from './types.js';

export const UPSTREAM_TYPES = ['smtp', 'maildir', ...REST_TYPES, ...OAUTH_TYPES] as const;

/** Public API base URLs; `endpoint` overrides them (EU regions, proxies, tests). SES depends on the region. */
export const DEFAULT_ENDPOINTS: Record<Exclude<RestType, 'ses'>, string> = {
  sendgrid: 'https://api.sendgrid.com',
  mailgun: 'https://api.mailgun.net',
  postmark: 'https://api.postmarkapp.com',
  resend: 'https://api.resend.com',
  mailjet: 'https://api.mailjet.com',
  brevo: 'https://api.brevo.com',
  sparkpost: 'https://api.sparkpost.com',
};

/**
 * Default rate_limit per provider, from its documentation (README, section Providers): Resend allows
 * 2 requests/s per team by default; Brevo documents 1,000 requests/s for POST /v3/smtp/email; an SES
 * account starts in the sandbox at 1 message/s (its real rate is shown by test-upstream). The
 * others document no fixed number for sending and answer 429 with a reset time, which is honoured.
 */
export const DEFAULT_RATES: Partial<Record<RestType, { count: number; perMs: number }>> = {
  resend: { count: 2, perMs: 1000 },
  brevo: { count: 1000, perMs: 1000 },
  ses: { count: 1, perMs: 1000 },
};

export function sesEndpoint(region: string): string {
  return `https://email.${region}.amazonaws.com`;
}

function isRestType(type: string): type is RestType {
  return (REST_TYPES as readonly string[]).includes(type);
}

export function readUpstream(table: TableReader, index: number): UpstreamConfig | undefined {
  const name = table.string('name', index === 0 ? 'primary' : `upstream${index + 1}`);
  const type = table.required('type');
  const common = {
    name,
    matchFrom: table.stringList('match_from', []),
    maxConcurrency: table.integer('max_concurrency', 1, 1000, 5),
    timeout: table.duration('timeout', 60_000),
  };
  for (const pattern of common.matchFrom) {
    if (!/^[^\s@]+@[^\s@]+$/.test(pattern)) table.problem('match_from', `expected sender patterns like "*@billing.example.com", got ${JSON.stringify(pattern)}`);
  }
  let upstream: UpstreamConfig | undefined;
  switch (type) {
    case 'smtp': {
      const tls = table.oneOf('tls', ['starttls', 'implicit', 'none'] as const, 'starttls');
      const host = table.required('host') ?? '';
      const caFile = table.path_('ca_file');
      const username = table.string('username');
      const password = table.secret('password');
      if (password !== undefined && username === undefined) table.problem('username', 'is required when a password is set');
      upstream = {
        ...common,
        type: 'smtp',
        host,
        port: table.integer('port', 1, 65535, DEFAULT_PORTS[tls]),
        tls,
        username,
        password,
        ca: caFile ? table.readFile('ca_file', caFile) : undefined,
        caFile,
      };
      break;
    }
    case 'maildir': {
      const path = table.path_('path');
      if (path === undefined) table.problem('path', 'is required');
      upstream = { ...common, type: 'maildir', path: path ?? '' };
      break;
    }
    case 'm365':
    case 'gmail':
      upstream = readOAuthUpstream(table, type, common);
      break;
    case undefined:
      break;
    default:
      if (isRestType(type)) {
        upstream = readRest(table, type, common);
        break;
      }
      table.problem('type', `expected one of ${UPSTREAM_TYPES.map((t) => `"${t}"`).join(', ')}, got ${JSON.stringify(type)}`);
  }
  table.finish();
  return upstream;
}

type Common = { name: string; matchFrom: string[]; maxConcurrency: number; timeout: number };

/** A secret that must be present, inline (`key`, usually "${ENV}") or from `key_file`. */
function requiredSecret(table: TableReader, key: string): string {
  const value = table.secret(key);
  if (value === undefined) {
    if (!table.has(key) && !table.has(`${key}_file`)) table.problem(key, `is required (or ${key}_file)`);
    return '';
  }
  if (value === '') table.problem(key, 'must not be empty');
  return value;
}

function readRest(table: TableReader, type: RestType, common: Common): RestUpstreamConfig {
  // rate_limit = "none" turns a provider's default off (an account with a raised limit).
  const rate = table.has('rate_limit') && table.string('rate_limit') === 'none' ? undefined : (table.rate('rate_limit') ?? DEFAULT_RATES[type]);
  const unsupported = table.oneOf('unsupported', ['fallback', 'degrade', 'bounce'] as const, 'fallback');
  const rest = { ...common, rateLimit: rate, unsupported, ...readWebhook(table, type), ...readPoll(table, type) };
  const endpoint = (fallback: string) => readEndpoint(table, fallback);
  switch (type) {
    case 'ses': {
      const accessKeyId = table.required('access_key_id') ?? '';
      const secretAccessKey = requiredSecret(table, 'secret_access_key');
      const sessionToken = table.secret('session_token');
      const region = table.required('region') ?? 'us-east-1';
      if (!/^[a-z]{2}(-[a-z]+)+-\d+$/.test(region)) table.problem('region', `expected an AWS region like "eu-west-1", got ${JSON.stringify(region)}`);
      return { ...rest, type, accessKeyId, secretAccessKey, sessionToken, region, endpoint: endpoint(sesEndpoint(region)) };
    }
    case 'mailgun': {
      const apiKey = requiredSecret(table, 'api_key');
      const domain = table.required('domain') ?? '';
      if (domain && !/^[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)+$/.test(domain)) {
        table.problem('domain', `expected a sending domain like "mg.example.com", got ${JSON.stringify(domain)}`);
      }
      return { ...rest, type, apiKey, domain, endpoint: endpoint(DEFAULT_ENDPOINTS.mailgun) };
    }
    case 'mailjet': {
      const apiKey = requiredSecret(table, 'api_key');
      const secretKey = requiredSecret(table, 'secret_key');
      return { ...rest, type, apiKey, secretKey, endpoint: endpoint(DEFAULT_ENDPOINTS.mailjet) };
    }
    case 'postmark': {
      const messageStream = table.string('message_stream', 'outbound');
      if (!/^[a-z0-9-]{1,30}$/i.test(messageStream)) table.problem('message_stream', `expected a Postmark stream id like "outbound", got ${JSON.stringify(messageStream)}`);
      return { ...rest, type, apiKey: requiredSecret(table, 'api_key'), messageStream, endpoint: endpoint(DEFAULT_ENDPOINTS[type]) };
    }
    default:
      return { ...rest, type, apiKey: requiredSecret(table, 'api_key'), endpoint: endpoint(DEFAULT_ENDPOINTS[type]) };
  }
}

/**
 * Providers whose events cannot be polled, and why (docs/providers.md, "Events"). The others have
 * a pull API naming the provider's message id and the recipient (src/events/poll/).
 */
export const POLL_UNSUPPORTED = {
  sendgrid: "SendGrid's Email Activity API is a paid add-on and its bounce list carries no message id; use its signed event webhook",
  ses: 'Amazon SES has no pull API for events; they go to SNS or EventBridge; use the SNS webhook',
  mailjet: "not built yet (Mailjet's /v3/REST/message lists messages by send time with a status and a state code, not the remote server's reply); use its event webhook",
} as const satisfies Partial<Record<RestType, string>>;
export type PollableType = Exclude<RestType, keyof typeof POLL_UNSUPPORTED>;

/** Shortest poll_interval: the APIs rate-limit, and events are minutes late anyway. */
export const MIN_POLL_INTERVAL_MS = 1000;

function readPoll(table: TableReader, type: RestType): Pick<RestUpstreamConfig, 'poll'> | Record<string, never> {
  const poll = table.boolean('poll', false);
  const interval = table.duration('poll_interval', 300_000);
  if (!poll) {
    if (table.has('poll_interval')) table.problem('poll_interval', 'has no effect without poll = true');
    return {};
  }
  if (type in POLL_UNSUPPORTED) {
    table.problem('poll', `type "${type}" cannot poll for events: ${POLL_UNSUPPORTED[type as keyof typeof POLL_UNSUPPORTED]}`);
    return {};
  }
  if (interval < MIN_POLL_INTERVAL_MS) table.problem('poll_interval', `must be at least 1s, got ${interval} ms`);
  return { poll: { intervalMs: interval } };
}

/** Which webhook credential each provider documents (src/events/providers/<type>.ts). */
const WEBHOOK_METHOD: Record<RestType, 'signing_key' | 'basic' | 'basic_or_token' | 'topic'> = {
  mailgun: 'signing_key',
  sendgrid: 'signing_key',
  resend: 'signing_key',
  postmark: 'basic',
  mailjet: 'basic',
  sparkpost: 'basic',
  brevo: 'basic_or_token',
  ses: 'topic',
};

/** The webhook_* keys: only the ones this provider's method uses are accepted (finish() refuses the rest); unset ones are left out. */
function readWebhook(table: TableReader, type: RestType): Partial<Pick<RestUpstreamConfig, 'webhookSigningKey' | 'webhookUsername' | 'webhookPassword' | 'webhookToken' | 'webhookTopicArn'>> {
  const found = readWebhookKeys(table, type);
  return Object.fromEntries(Object.entries(found).filter(([, value]) => value !== undefined));
}

function readWebhookKeys(table: TableReader, type: RestType) {
  const method = WEBHOOK_METHOD[type];
  if (method === 'signing_key') return { webhookSigningKey: table.secret('webhook_signing_key') };
  if (method === 'topic') {
    const arns = table.stringList('webhook_topic_arn', []);
    for (const arn of arns)
      if (!/^arn:aws[a-z-]*:sns:[a-z0-9-]+:\d{12}:[A-Za-z0-9_.-]+$/.test(arn))
        table.problem('webhook_topic_arn', `expected an SNS topic ARN like "arn:aws:sns:eu-west-1:123456789012:ses-events", got ${JSON.stringify(arn)}`);
    return { webhookTopicArn: arns.length ? arns : undefined };
  }
  const webhookToken = method === 'basic_or_token' ? table.secret('webhook_token') : undefined;
  const webhookUsername = table.string('webhook_username');
  const webhookPassword = table.secret('webhook_password');
  if ((webhookUsername === undefined) !== (webhookPassword === undefined))
    table.problem(webhookUsername === undefined ? 'webhook_username' : 'webhook_password', 'webhook_username and webhook_password go together');
  if (webhookToken !== undefined && webhookUsername !== undefined) table.problem('webhook_token', 'set either webhook_token or webhook_username/webhook_password, not both');
  if (webhookUsername?.includes(':')) table.problem('webhook_username', 'must not contain ":" (HTTP Basic)');
  return { webhookUsername, webhookPassword, webhookToken };
}
