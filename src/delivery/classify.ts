/**
 * Retry classification: what an upstream's answer means for a recipient.
 *   delivered  — done
 *   transient  — retry later with backoff (until max_age)
 *   permanent  — give up on this recipient and bounce
 *   config     — our own setup is wrong (credentials, TLS, unverified sender): keep the mail and
 *                shout, never bounce the sender's mail because of it (see Classification.scope)
 * The SMTP rules are an ordered table (first match wins), unit-tested row by row. The reply code
 * decides the class; an RFC 3463 enhanced code only adds detail when its class agrees.
 */
import type { OutcomeClass } from '../spool/types.js';
import type { AttemptResult } from '../upstreams/types.js';
import { isTlsConfigCode } from '../upstreams/tls-codes.js';
import { classifyHttp } from './classify-http.js';

export interface Classification {
  outcome: OutcomeClass;
  /** RFC 3463 status for logs and DSNs, e.g. "5.1.1". */
  status: string;
  /** Human-readable reply, e.g. "550 5.1.1 no such user". */
  reply: string;
  retryAfterMs?: number;
  /**
   * For `config` outcomes, whose setup is wrong. "upstream": the upstream as a whole refuses us
   * (credentials, TLS, relay access): it is cooled down and the queue waits for the operator,
   * however long. "message": this upstream will not take this message (an unverified sender,
   * recipients outside a sandbox): the message waits, other mail flows, and it expires at
   * max_age like any deferred message.
   */
  scope?: ConfigScope;
}

export type ConfigScope = 'upstream' | 'message';

type SmtpResult = Extract<AttemptResult, { kind: 'smtp' }>;

interface SmtpRule {
  name: string;
  matches: (r: SmtpResult) => boolean;
  outcome: OutcomeClass;
  scope?: ConfigScope;
}

const SENDER_NOT_ALLOWED =
  /not verified|unverified|verify (your|the) (sender|domain|identity)|not (authori[sz]ed|allowed|permitted) to send|sender.{0,40}(not (allowed|authori[sz]ed|permitted)|denied)|sender identity/i;
const ACCOUNT_DISABLED = /account.{0,30}(suspended|disabled|paused|under review)|sending (is )?(paused|disabled|suspended)/i;
const RECIPIENTS_RESTRICTED = /authori[sz]ed recipients|sandbox/i;
export const RELAY_DENIED = /relay(ing)? (access )?(is )?(denied|not (allowed|permitted)|prohibited)|not (permitted|allowed|authori[sz]ed) to relay|unable to relay|(will|do) not relay/i;
const THROTTLED = /rate.?limit|throttl|too many (messages|connections|requests)|quota (exceeded|reached)|try (again )?later/i;
export const TLS_REQUIRED = /starttls|must issue|encryption required|tls required|secure connection required/i;

/**
 * Ordered: the first matching rule decides. The three-digit reply code decides the class (RFC 5321
 * §4.2.1): text only ever turns a 5xx into "hold" (our setup) or "retry" (throttling in disguise),
 * never a 4xx into a bounce.
 */
export const SMTP_RULES: readonly SmtpRule[] = [
  { name: 'authentication rejected', matches: (r) => r.stage === 'auth' && r.code >= 500, outcome: 'config', scope: 'upstream' },
  { name: 'auth required / credentials invalid codes', matches: (r) => [530, 534, 535, 538].includes(r.code), outcome: 'config', scope: 'upstream' },
  {
    name: 'enhanced auth/security status',
    matches: (r) => r.code >= 500 && /^5\.7\.(8|9|11|14|0)$/.test(r.enhanced ?? '') && /auth|credential|login|password/i.test(r.text),
    outcome: 'config',
    scope: 'upstream',
  },
  { name: 'server demands TLS we did not use', matches: (r) => r.code >= 500 && TLS_REQUIRED.test(r.text), outcome: 'config', scope: 'upstream' },
  { name: 'relay access denied (we are not authorised to relay)', matches: (r) => r.code >= 500 && RELAY_DENIED.test(r.text), outcome: 'config', scope: 'upstream' },
  { name: 'account suspended / sending paused', matches: (r) => r.code >= 500 && r.stage !== 'rcpt' && ACCOUNT_DISABLED.test(r.text), outcome: 'config', scope: 'upstream' },
  { name: 'sender not verified for this upstream', matches: (r) => r.code >= 500 && r.stage !== 'rcpt' && SENDER_NOT_ALLOWED.test(r.text), outcome: 'config', scope: 'message' },
  { name: 'authorized recipients only (sandbox)', matches: (r) => r.code >= 500 && RECIPIENTS_RESTRICTED.test(r.text), outcome: 'config', scope: 'message' },
  { name: 'rate limit dressed as 5xx', matches: (r) => r.code >= 500 && THROTTLED.test(r.text), outcome: 'transient' },
  { name: '4xx reply', matches: (r) => r.code >= 400 && r.code < 500, outcome: 'transient' },
  { name: '5xx reply', matches: (r) => r.code >= 500 && r.code < 600, outcome: 'permanent' },
];

const DEFAULT_STATUS: Record<OutcomeClass, string> = { delivered: '2.0.0', transient: '4.0.0', permanent: '5.0.0', config: '4.7.0' };

/**
 * The enhanced status code, when its class agrees with the reply code; otherwise the reply's class
 * with X.0.0 detail, as Postfix's smtp client does ("451 5.7.1" is 4.0.0, "550 4.4.5" is 5.0.0).
 */
export function agreedStatus(code: number, enhanced: string | undefined): string | undefined {
  const replyClass = String(Math.floor(code / 100));
  if (replyClass !== '4' && replyClass !== '5') return enhanced;
  return enhanced?.startsWith(`${replyClass}.`) ? enhanced : `${replyClass}.0.0`;
}

export function classifySmtp(r: SmtpResult): Classification {
  const rule = SMTP_RULES.find((candidate) => candidate.matches(r));
  // Unknown answers are retried, never bounced: losing mail on a quirk is worse than a delay.
  const outcome = rule?.outcome ?? 'transient';
  const reply = `${r.code}${r.enhanced ? ' ' + r.enhanced : ''} ${r.text}`.trim();
  const agreed = r.enhanced === undefined && outcome === 'config' ? undefined : agreedStatus(r.code, r.enhanced);
  let status = agreed ?? DEFAULT_STATUS[outcome];
  if (outcome === 'permanent' && !status.startsWith('5')) status = '5.0.0';
  if (outcome === 'transient' && !status.startsWith('4')) status = '4.0.0';
  return { outcome, status, reply, ...(rule?.scope ? { scope: rule.scope } : {}) };
}

const HTTP_ACCOUNT_WIDE = /suspend|paused|disabled|deactivated|pending|approval|credits?\b|payment|api.?key|token|signature|credential|permission|access.?denied|unauthori[sz]ed/i;

/**
 * A REST provider refusing our credentials or account (401/402, a bare 403, an account-wide
 * error) is the upstream's problem; refusing this message's sender identity, domain or recipients
 * (SendGrid's 403 "does not match a verified Sender Identity") is the message's.
 */
function withHttpScope(c: Classification, r: Extract<AttemptResult, { kind: 'http' }>): Classification {
  if (c.outcome !== 'config' || c.scope) return c; // a provider rule that knows (Graph's ErrorSendAsDenied) decides
  const accountWide = [401, 402].includes(r.status) || HTTP_ACCOUNT_WIDE.test(r.errorCode ?? '') || /suspend|disabled|deactivated/i.test(r.text);
  // Only a refusal that names the sender or the recipients is about this message; anything else
  // (Mailgun's "Domain not found" for the configured domain) holds the queue as before.
  const aboutThisMessage = SENDER_NOT_ALLOWED.test(r.text) || RECIPIENTS_RESTRICTED.test(r.text);
  return { ...c, scope: !accountWide && aboutThisMessage ? 'message' : 'upstream' };
}

export function classify(result: AttemptResult): Classification {
  switch (result.kind) {
    case 'accepted':
      return { outcome: 'delivered', status: '2.0.0', reply: result.reply };
    case 'smtp':
      return classifySmtp(result);
    case 'network':
      return { outcome: 'transient', status: '4.4.1', reply: `${result.errorCode}: ${result.message}` };
    case 'tls':
      // A rejected certificate or protocol is our setup (the upstream as a whole); a handshake
      // that was reset, closed or timed out is the network.
      return isTlsConfigCode(result.errorCode)
        ? { outcome: 'config', status: '4.7.5', reply: `TLS ${result.errorCode}: ${result.message}`, scope: 'upstream' }
        : { outcome: 'transient', status: '4.4.2', reply: `TLS ${result.errorCode}: ${result.message}` };
    case 'http':
      return withHttpScope(classifyHttp(result), result);
    case 'unsupported':
      return { outcome: 'permanent', status: '5.6.3', reply: result.text };
  }
}
