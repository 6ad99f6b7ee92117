/**
 * Plain-language diagnosis of a failed `test-upstream` step: what most likely went wrong and what
 * to change. The classification (transient / permanent / config) comes from delivery/classify.ts,
 * the same table delivery uses, so the advice matches what the daemon would do with real mail.
 */
import type { UpstreamConfig } from '../config/types.js';
import { classify, RELAY_DENIED, TLS_REQUIRED } from '../delivery/classify.js';
import { isTlsConfigCode } from '../upstreams/tls-codes.js';
import type { OutcomeClass } from '../spool/types.js';
import type { AttemptResult } from '../upstreams/types.js';
import { EX } from './sysexits.js';

export interface Diagnosis {
  outcome: OutcomeClass;
  advice: string;
  exitCode: number;
}

const NO_GREETING = /greeting never received/i;
const WRONG_TLS_VERSION = /wrong version number|WRONG_VERSION_NUMBER|unknown protocol|packet length too long|http request/i;

/** A REST upstream that cannot reach its API: the endpoint, firewall (443) or a proxy. */
function restNetworkAdvice(result: AttemptResult, endpoint: string): string | undefined {
  const url = new URL(endpoint);
  const port = url.port || (url.protocol === 'https:' ? '443' : '80');
  const text = 'message' in result ? result.message : '';
  if (result.kind === 'tls' && WRONG_TLS_VERSION.test(`${result.errorCode} ${text}`)) {
    return `${url.host} does not speak TLS: check the scheme and port in endpoint = "${endpoint}", or a proxy/firewall answering in plain text`;
  }
  if (result.kind === 'tls') {
    return `the API's TLS certificate is not trusted (${result.errorCode}): a TLS-intercepting proxy or firewall is in the way, or endpoint = "${endpoint}" names the wrong host`;
  }
  if (result.kind !== 'network') return undefined;
  if (result.errorCode === 'ECONNREFUSED') return `nothing accepts connections on ${url.hostname}:${port}: check endpoint = "${endpoint}" (a typo, or a proxy that is down?)`;
  if (['ENOTFOUND', 'EAI_AGAIN', 'EDNS'].includes(result.errorCode)) return `the API host "${url.hostname}" does not resolve: check endpoint (EU/US region host names differ) and this machine's DNS`;
  if (result.errorCode === 'ETIMEDOUT' || /timed? ?out/i.test(text))
    return `no answer from ${url.hostname}:${port}: a firewall is probably dropping outgoing HTTPS (port ${port}); allow it, or point endpoint at an HTTPS proxy`;
  if (result.errorCode === 'ECONNRESET') return `the connection to ${url.hostname}:${port} was reset: a firewall or proxy is interfering`;
  return undefined;
}

function adviceFor(result: AttemptResult, upstream: UpstreamConfig): string | undefined {
  if (upstream.type !== 'smtp' && upstream.type !== 'maildir') return restNetworkAdvice(result, upstream.endpoint);
  const where = upstream.type === 'smtp' ? `${upstream.host}:${upstream.port}` : '';
  const tls = upstream.type === 'smtp' ? upstream.tls : undefined;
  const text = 'message' in result ? result.message : 'text' in result ? result.text : '';
  if (result.kind === 'network') {
    if (result.errorCode === 'ECONNREFUSED') return `nothing accepts connections on ${where}: wrong host or port? (587 = STARTTLS, 465 = implicit TLS, 25 = server-to-server, often blocked)`;
    if (['ENOTFOUND', 'EAI_AGAIN', 'EDNS'].includes(result.errorCode)) return `the host name does not resolve: check host = "${upstream.type === 'smtp' ? upstream.host : ''}" and this machine's DNS`;
    if (NO_GREETING.test(text) && tls !== 'implicit')
      return `connected, but the server sent no SMTP greeting: port ${upstream.type === 'smtp' ? upstream.port : ''} probably expects implicit TLS; set tls = "implicit" (usually port 465)`;
    if (result.errorCode === 'ETIMEDOUT' || /timed? ?out/i.test(text))
      return `no answer from ${where}: a firewall is probably dropping outgoing connections to port ${upstream.type === 'smtp' ? upstream.port : ''} (many cloud providers block 25, some 587); try the provider's alternative port (465 or 2525) or open the port`;
    if (result.errorCode === 'EACCES' || result.errorCode === 'EROFS') return 'the directory is not writable by the user mailshim runs as';
    if (result.errorCode === 'ECONNRESET' || result.errorCode === 'ECONNECTION') return 'the server closed the connection: wrong port/TLS pairing, or it refuses this client address';
  }
  if (result.kind === 'tls') {
    if (WRONG_TLS_VERSION.test(text)) return `the server speaks plain SMTP on this port, not TLS: use tls = "starttls" (usually port 587), or port 465 with tls = "implicit"`;
    if (isTlsConfigCode(result.errorCode)) {
      const caHint = upstream.type === 'smtp' && upstream.ca !== undefined ? 'the CA in ca_file does not vouch for it either' : 'for a private CA set ca_file';
      return `the server's certificate is not trusted for "${upstream.type === 'smtp' ? upstream.host : ''}" (${result.errorCode}): check the host name matches the certificate; ${caHint}`;
    }
    return `TLS negotiation failed: check the port/TLS pairing (587 = "starttls", 465 = "implicit")`;
  }
  if (result.kind === 'smtp') {
    if (result.code >= 500 && TLS_REQUIRED.test(text)) {
      // "530 5.7.0 Must issue a STARTTLS command first": not a credentials problem.
      return tls === 'implicit'
        ? 'the server demands STARTTLS on this port: use tls = "starttls" (usually port 587)'
        : 'the server requires TLS before AUTH and mail: set tls = "starttls" (usually port 587), or tls = "implicit" with port 465';
    }
    if (result.code >= 500 && RELAY_DENIED.test(text)) {
      return upstream.type === 'smtp' && upstream.username === undefined
        ? 'the server does not relay for unauthenticated clients, and no username is configured: set username and password (or password_file)'
        : 'the server does not let this account relay for this sender or recipient: check which senders/domains the account may use';
    }
    if (result.stage === 'auth' || [530, 534, 535, 538].includes(result.code)) {
      return /not (supported|advertised)|no supported/i.test(text)
        ? 'the server offers no AUTH here: it may require STARTTLS first (tls = "starttls"), or need no username'
        : 'the credentials were rejected: check username and password (or password_file); API-key relays often want a literal user name such as "apikey"';
    }
    if (/starttls/i.test(text)) return 'the server does not offer STARTTLS on this port: use port 465 with tls = "implicit", or the provider\'s submission port 587';
    if (result.stage === 'mail') return 'the server refuses the sender: verify the sender address or domain with the provider (the test uses --from, default bounce_from)';
    if (result.stage === 'rcpt') return 'the recipient was refused';
  }
  return undefined;
}

export function diagnose(result: AttemptResult, upstream: UpstreamConfig): Diagnosis {
  // A check call that succeeded but reports an unusable account (domain unverified, sending paused) is our setup.
  const accountProblem = result.kind === 'http' && result.status >= 200 && result.status < 300;
  const outcome = accountProblem ? 'config' : classify(result).outcome;
  const advice = adviceFor(result, upstream) ?? classify(result).reply;
  // A server that never greets a plain-text client is almost always an implicit-TLS port: our config.
  const wrongPairing = result.kind === 'network' && NO_GREETING.test(result.message) && upstream.type === 'smtp' && upstream.tls !== 'implicit';
  const exitCode = outcome === 'config' || result.kind === 'tls' || wrongPairing ? EX.CONFIG : outcome === 'permanent' ? EX.DATAERR : result.kind === 'network' ? EX.UNAVAILABLE : EX.TEMPFAIL;
  return { outcome, advice, exitCode };
}
