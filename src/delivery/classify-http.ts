/**
 * What a REST API's answer means. The shared table follows HTTP semantics; each provider's table
 * refines it with the provider's own error codes (checked first, first match wins). Unknown
 * answers are retried, never bounced. Tables are unit-tested row by row (test/classify-http.test.ts).
 *
 *   429, 408, 5xx, provider throttling codes           → transient (Retry-After / reset honoured)
 *   400/413/422 naming the message or a recipient       → permanent (DSN carries the provider's code and text)
 *   401/403, unknown domain, unverified sender, suspended → config (hold, alert, never bounce)
 */
import type { OutcomeClass } from '../spool/types.js';
import type { AttemptResult } from '../upstreams/types.js';
import type { Classification } from './classify.js';
import { GMAIL_HTTP_RULES, M365_HTTP_RULES } from './classify-oauth.js';

export type HttpResult = Extract<AttemptResult, { kind: 'http' }>;

export interface HttpRule {
  name: string;
  /** HTTP status (or any of several); omitted = any status. */
  status?: number | readonly number[];
  /** The provider's error code or name, exact (string) or pattern. */
  code?: string | RegExp;
  /** Pattern on the provider's error text. */
  text?: RegExp;
  outcome: OutcomeClass;
  /** RFC 3463 status for the DSN and logs. */
  dsn: string;
  /** A config outcome about this message only (its From), not the upstream: no cool-down. */
  messageOnly?: true;
}

const SENDER_SETUP =
  /not (been )?verified|unverified|verify (your|the) (sender|domain|identity)|sender identity|sender signature|domain (is )?not (found|configured|verified)|unconfigured|not allowed to send|suspend|disabled|deactivated|sandbox|authori[sz]ed recipients/i;

/** Shared HTTP semantics, after any provider rule. */
export const SHARED_HTTP_RULES: readonly HttpRule[] = [
  { name: 'authentication / permission', status: [401, 403], outcome: 'config', dsn: '4.7.0' },
  { name: 'payment required (account)', status: 402, outcome: 'config', dsn: '4.7.0' },
  { name: 'rate limited', status: [408, 429], outcome: 'transient', dsn: '4.7.0' },
  { name: 'server error', status: [500, 502, 503, 504], outcome: 'transient', dsn: '4.3.0' },
  { name: 'payload rejected because of our sender setup', status: [400, 422], text: SENDER_SETUP, outcome: 'config', dsn: '4.7.0' },
  { name: 'message too large', status: 413, outcome: 'permanent', dsn: '5.3.4' },
  {
    name: 'invalid recipient address',
    status: [400, 422],
    text: /(invalid|not (contain )?a valid|malformed).{0,40}(address|email|recipient)|(address|email|recipient).{0,40}(invalid|not valid)/i,
    outcome: 'permanent',
    dsn: '5.1.3',
  },
  { name: 'payload rejected', status: [400, 422], outcome: 'permanent', dsn: '5.6.0' },
];

export const PROVIDER_HTTP_RULES: Readonly<Record<string, readonly HttpRule[]>> = {
  m365: M365_HTTP_RULES,
  gmail: GMAIL_HTTP_RULES,
  sendgrid: [
    { name: 'unverified sender identity', text: /sender identity|from address does not match/i, outcome: 'config', dsn: '4.7.0' },
    { name: 'too many requests', status: 429, outcome: 'transient', dsn: '4.7.0' },
  ],
  mailgun: [
    { name: 'unknown sending domain', status: [400, 404], text: /domain not found|domain .* (is not|not) (found|verified|active)/i, outcome: 'config', dsn: '4.7.0' },
    { name: 'sandbox / unauthorized recipient', status: [400, 403], text: /sandbox|authorized recipients|free accounts/i, outcome: 'config', dsn: '4.7.0' },
    { name: 'account disabled', text: /disabled|suspended/i, outcome: 'config', dsn: '4.7.0' },
  ],
  postmark: [
    { name: 'bad or missing server token', code: '10', outcome: 'config', dsn: '4.7.0' },
    { name: 'maintenance', code: '100', outcome: 'transient', dsn: '4.3.0' },
    { name: 'invalid email request', code: '300', outcome: 'permanent', dsn: '5.6.0' },
    { name: 'sender signature not found / not confirmed', code: /^40[01]$/, outcome: 'config', dsn: '4.7.0' },
    { name: 'not allowed to send / account pending / may not send', code: /^(405|412|413)$/, outcome: 'config', dsn: '4.7.0' },
    { name: 'inactive (suppressed) recipient', code: '406', outcome: 'permanent', dsn: '5.1.1' },
    { name: 'forbidden attachment type', code: '411', outcome: 'permanent', dsn: '5.6.0' },
    { name: 'rate limit exceeded', code: '429', outcome: 'transient', dsn: '4.7.0' },
    { name: 'message stream misconfigured', code: /^1[1-9]\d\d$/, outcome: 'config', dsn: '4.7.0' },
  ],
  resend: [
    {
      name: 'api key missing, invalid, restricted or suspended',
      code: /^(missing_api_key|restricted_api_key|invalid_api_key|suspended_api_key|invalid_permission|invalid_access|invalid_region)$/,
      outcome: 'config',
      dsn: '4.7.0',
    },
    { name: 'domain not verified / testing domain', status: 403, code: 'validation_error', outcome: 'config', dsn: '4.7.0' },
    { name: 'idempotent request still in flight', code: 'concurrent_idempotent_requests', outcome: 'transient', dsn: '4.3.0' },
    { name: 'quota or rate limit', code: /^(daily_quota_exceeded|monthly_quota_exceeded|rate_limit_exceeded)$/, outcome: 'transient', dsn: '4.7.0' },
    { name: 'invalid attachment', code: 'invalid_attachment', outcome: 'permanent', dsn: '5.6.0' },
    { name: 'invalid from address', code: 'invalid_from_address', outcome: 'permanent', dsn: '5.1.7' },
  ],
  ses: [
    // AWS CommonErrors: several of these are HTTP 400 (RequestExpired = our clock is off), yet all mean "fix the credentials or the clock".
    {
      name: 'credentials, signature or clock rejected',
      code: /^(InvalidClientTokenId|SignatureDoesNotMatch|AccessDenied(Exception)?|ExpiredToken(Exception)?|UnrecognizedClientException|IncompleteSignature(Exception)?|InvalidSignatureException|MissingAuthenticationToken(Exception)?|RequestExpired|NotAuthorized|OptInRequired)$/,
      outcome: 'config',
      dsn: '4.7.0',
    },
    {
      name: 'account suspended / sending paused / MAIL FROM not verified',
      code: /^(AccountSuspendedException|SendingPausedException|MailFromDomainNotVerifiedException)$/,
      outcome: 'config',
      dsn: '4.7.0',
    },
    { name: 'configuration set or identity not found', code: 'NotFoundException', outcome: 'config', dsn: '4.7.0' },
    { name: 'unverified identity', code: 'MessageRejected', text: /not verified|not authorized/i, outcome: 'config', dsn: '4.7.0' },
    { name: 'message rejected', code: 'MessageRejected', outcome: 'permanent', dsn: '5.7.1' },
    { name: 'throttled / quota', code: /^(TooManyRequestsException|ThrottlingException|Throttling|LimitExceededException)$/, outcome: 'transient', dsn: '4.7.0' },
    { name: 'bad request', code: 'BadRequestException', outcome: 'permanent', dsn: '5.6.0' },
  ],
  mailjet: [
    { name: 'api key suspended / invalid credentials', code: /^mj-00(01|15)$/, outcome: 'config', dsn: '4.7.0' },
    { name: 'sender not authorized', code: /^send-000[678]$/, outcome: 'config', dsn: '4.7.0' },
    { name: 'invalid email address', code: 'mj-0013', outcome: 'permanent', dsn: '5.1.3' },
    { name: 'payload over the size limit', code: 'mj-0011', outcome: 'permanent', dsn: '5.3.4' },
    { name: 'too many recipients', code: 'send-0015', outcome: 'permanent', dsn: '5.5.3' },
  ],
  brevo: [
    { name: 'unauthorized / permission denied', code: /^(unauthorized|permission_denied)$/, outcome: 'config', dsn: '4.7.0' },
    { name: 'not enough credits / account', code: /^(not_enough_credits|account_under_validation|payment_required)$/, outcome: 'config', dsn: '4.7.0' },
    { name: 'sender not valid', text: /sender .{0,40}(not valid|invalid|not verified)|valid sender/i, outcome: 'config', dsn: '4.7.0' },
    { name: 'too many requests', code: 'too_many_requests', outcome: 'transient', dsn: '4.7.0' },
  ],
  sparkpost: [
    { name: 'permission denied / unauthorized', code: /^(1100|1303|1304)$/, outcome: 'config', dsn: '4.7.0' },
    { name: 'unconfigured or unverified sending domain', code: /^(7001|7002)$/, outcome: 'config', dsn: '4.7.0' },
    { name: 'sending limit exceeded', status: 420, outcome: 'transient', dsn: '4.7.0' },
    { name: 'sending limit codes', code: /^210[123]$/, outcome: 'transient', dsn: '4.7.0' },
    { name: 'message generation rejected (suppressed recipient)', code: '1902', outcome: 'permanent', dsn: '5.1.1' },
    { name: 'recipients rejected', code: 'rejected', outcome: 'permanent', dsn: '5.1.1' },
  ],
};

function matches(rule: HttpRule, r: HttpResult): boolean {
  if (rule.status !== undefined && !(typeof rule.status === 'number' ? rule.status === r.status : rule.status.includes(r.status))) return false;
  if (rule.code !== undefined) {
    if (r.errorCode === undefined) return false;
    if (typeof rule.code === 'string' ? rule.code !== r.errorCode : !rule.code.test(r.errorCode)) return false;
  }
  if (rule.text !== undefined && !rule.text.test(r.text)) return false;
  return true;
}

/** The rule that decides, or undefined for an unknown answer. */
export function httpRule(r: HttpResult): HttpRule | undefined {
  const own = (r.provider && PROVIDER_HTTP_RULES[r.provider]) || [];
  return own.find((rule) => matches(rule, r)) ?? SHARED_HTTP_RULES.find((rule) => matches(rule, r));
}

export function classifyHttp(r: HttpResult): Classification {
  const reply = `${r.provider ? `${r.provider} ` : ''}HTTP ${r.status}${r.errorCode ? ` ${r.errorCode}` : ''}: ${r.text}`.trim();
  const rule = httpRule(r);
  // Unknown answers are retried, never bounced.
  const outcome = rule?.outcome ?? 'transient';
  const classification: Classification = { outcome, status: rule?.dsn ?? '4.0.0', reply };
  if (r.retryAfterMs !== undefined && outcome !== 'permanent') classification.retryAfterMs = r.retryAfterMs;
  if (rule?.messageOnly) classification.scope = 'message';
  return classification;
}
