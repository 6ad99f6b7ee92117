/**
 * HTTP classification rules for the OAuth mailbox providers (m365, gmail), refining the shared
 * table in classify-http.ts. Token-endpoint errors and answers about our setup (consent,
 * delegation, a mailbox that does not exist, send-as refused) are configuration: hold and shout,
 * with the fix in the reply text. Throttling is transient; a refused recipient is permanent.
 */
import type { HttpRule } from './classify-http.js';

/** OAuth 2.0 token errors (RFC 6749 §5.2) from either token endpoint. */
const TOKEN_ERRORS = /^(invalid_client|unauthorized_client|invalid_grant|invalid_request|invalid_scope|access_denied|disabled_client|CertificateExpired|AADSTS\d+)$/;

export const M365_HTTP_RULES: readonly HttpRule[] = [
  // https://learn.microsoft.com/graph/throttling-limits: 429 (and 503) with Retry-After; Outlook's codes name the limit hit.
  {
    name: 'throttled (ApplicationThrottled / MailboxConcurrency)',
    code: /^(ApplicationThrottled|MailboxConcurrency|TooManyRequests|ErrorServerBusy|ServiceUnavailable|ErrorTooManyObjectsOpened)$/,
    outcome: 'transient',
    dsn: '4.7.0',
  },
  { name: 'token endpoint unavailable', status: [500, 502, 503, 504], outcome: 'transient', dsn: '4.3.0' },
  { name: 'token refused (secret, certificate, app, tenant, consent)', status: [400, 401, 403], code: TOKEN_ERRORS, outcome: 'config', dsn: '4.7.0' },
  { name: 'send-as refused for the From address', code: 'ErrorSendAsDenied', outcome: 'config', dsn: '4.7.0', messageOnly: true },
  {
    name: 'sending mailbox missing or not licensed',
    code: /^(ErrorInvalidUser|MailboxNotEnabledForRESTAPI|ResourceNotFound|Request_ResourceNotFound|NoSendingMailbox)$/,
    outcome: 'config',
    dsn: '4.7.0',
  },
  { name: 'access denied (Mail.Send consent missing)', code: /^(ErrorAccessDenied|Authorization_RequestDenied|AccessDenied)$/, outcome: 'config', dsn: '4.7.0' },
  { name: 'recipient refused', code: /^(ErrorInvalidRecipients|ErrorRecipientNotFound)$/, outcome: 'permanent', dsn: '5.1.1' },
  { name: 'not sent because another recipient was refused', code: 'OtherRecipientRefused', outcome: 'transient', dsn: '4.5.3' },
  { name: 'message too large', code: /^(ErrorMessageSizeExceeded|RequestEntityTooLarge)$/, outcome: 'permanent', dsn: '5.3.4' },
  { name: 'mailbox quota / submission quota', code: /^(ErrorQuotaExceeded|ErrorExceededMessageLimit|ErrorSubmissionQuotaExceeded)$/, outcome: 'transient', dsn: '4.2.2' },
];

export const GMAIL_HTTP_RULES: readonly HttpRule[] = [
  // https://developers.google.com/gmail/api/guides/handle-errors: 403/429 rate limits are transient.
  { name: 'rate / quota limit', code: /^(rateLimitExceeded|userRateLimitExceeded|dailyLimitExceeded|quotaExceeded|RESOURCE_EXHAUSTED)$/, outcome: 'transient', dsn: '4.7.0' },
  { name: 'token endpoint unavailable', status: [500, 502, 503, 504], outcome: 'transient', dsn: '4.3.0' },
  { name: 'token refused (delegation, key, user)', status: [400, 401, 403], code: TOKEN_ERRORS, outcome: 'config', dsn: '4.7.0' },
  { name: 'sending mailbox missing', code: 'NoSendingMailbox', outcome: 'config', dsn: '4.7.0' },
  { name: 'delegation denied / not allowed for this user', status: 403, outcome: 'config', dsn: '4.7.0' },
  { name: 'mail service not enabled for the user', code: 'failedPrecondition', outcome: 'config', dsn: '4.7.0' },
  { name: 'not sent because another recipient was refused', code: 'OtherRecipientRefused', outcome: 'transient', dsn: '4.5.3' },
  { name: 'invalid recipient header', status: 400, text: /invalid (to|cc|bcc) header|recipient address/i, outcome: 'permanent', dsn: '5.1.3' },
];
