/**
 * Retry classification: what an upstream's answer means for a recipient.
 *   delivered  — done
 *   transient  — retry later with backoff (until max_age)
 *   permanent  — give up on this recipient and bounce
 *   config     — our own setup is wrong (credentials, TLS, unverified sender): hold and shout,
 *                never bounce the sender's mail because of it
 * The SMTP rules are an ordered table (first match wins), unit-tested row by row. Enhanced status
 * codes (RFC 3463) win over the basic reply code when present.
 */
import type { OutcomeClass } from '../spool/types.js';
import type { AttemptResult } from '../upstreams/types.js';
import { classifyHttp } from './classify-http.js';

export interface Classification {
  outcome: OutcomeClass;
  /** RFC 3463 status for logs and DSNs, e.g. "5.1.1". */
  status: string;
  /** Human-readable reply, e.g. "550 5.1.1 no such user". */
  reply: string;
  retryAfterMs?: number;
  /** A configuration problem of this message only (e.g. a From the mailbox may not send as): hold it, but the upstream is not failing. */
  messageOnly?: boolean;
}

type SmtpResult = Extract<AttemptResult, { kind: 'smtp' }>;

interface SmtpRule {
  name: string;
  matches: (r: SmtpResult) => boolean;
  outcome: OutcomeClass;
}

const SENDER_NOT_ALLOWED = /not verified|unverified|verify (your|the) (sender|domain|identity)|not (authori[sz]ed|allowed|permitted) to send|sender.{0,40}(not (allowed|authori[sz]ed|permitted)|denied)|account.{0,30}(suspended|disabled|paused|under review)|sending (is )?(paused|disabled|suspended)/i;
const THROTTLED = /rate.?limit|throttl|too many (messages|connections|requests)|quota (exceeded|reached)|try (again )?later/i;
const TLS_REQUIRED = /starttls|must issue|encryption required|tls required|secure connection required/i;

/** Ordered: the first matching rule decides. */
export const SMTP_RULES: readonly SmtpRule[] = [
  { name: 'authentication rejected', matches: (r) => r.stage === 'auth' && r.code >= 500, outcome: 'config' },
  { name: 'auth required / credentials invalid codes', matches: (r) => [530, 534, 535, 538].includes(r.code), outcome: 'config' },
  { name: 'enhanced auth/security status', matches: (r) => r.code >= 500 && /^5\.7\.(8|9|11|14|0)$/.test(r.enhanced ?? '') && /auth|credential|login|password/i.test(r.text), outcome: 'config' },
  { name: 'server demands TLS we did not use', matches: (r) => r.code >= 500 && TLS_REQUIRED.test(r.text), outcome: 'config' },
  { name: 'sender not verified / account suspended', matches: (r) => r.code >= 500 && r.stage !== 'rcpt' && SENDER_NOT_ALLOWED.test(r.text), outcome: 'config' },
  { name: 'rate limit dressed as 5xx', matches: (r) => r.code >= 500 && THROTTLED.test(r.text), outcome: 'transient' },
  { name: 'enhanced 4.x.x', matches: (r) => r.enhanced?.startsWith('4.') === true, outcome: 'transient' },
  { name: 'enhanced 5.x.x', matches: (r) => r.enhanced?.startsWith('5.') === true, outcome: 'permanent' },
  { name: '4xx reply', matches: (r) => r.code >= 400 && r.code < 500, outcome: 'transient' },
  { name: '5xx reply', matches: (r) => r.code >= 500 && r.code < 600, outcome: 'permanent' },
];

const DEFAULT_STATUS: Record<OutcomeClass, string> = { delivered: '2.0.0', transient: '4.0.0', permanent: '5.0.0', config: '4.7.0' };

export function classifySmtp(r: SmtpResult): Classification {
  const rule = SMTP_RULES.find((candidate) => candidate.matches(r));
  // Unknown answers are retried, never bounced: losing mail on a quirk is worse than a delay.
  const outcome = rule?.outcome ?? 'transient';
  const reply = `${r.code}${r.enhanced ? ' ' + r.enhanced : ''} ${r.text}`.trim();
  let status = r.enhanced ?? DEFAULT_STATUS[outcome];
  if (outcome === 'permanent' && !status.startsWith('5')) status = '5.0.0';
  if (outcome === 'transient' && !status.startsWith('4')) status = '4.0.0';
  return { outcome, status, reply };
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
      // A handshake that timed out may be the network; a rejected certificate is our setup.
      return result.timeout
        ? { outcome: 'transient', status: '4.4.2', reply: `TLS ${result.errorCode}: ${result.message}` }
        : { outcome: 'config', status: '4.7.5', reply: `TLS ${result.errorCode}: ${result.message}` };
    case 'http':
      return classifyHttp(result);
    case 'unsupported':
      return { outcome: 'permanent', status: '5.6.3', reply: result.text };
  }
}
