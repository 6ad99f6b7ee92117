/**
 * `mailshim test-upstream` for every REST upstream: connect to the endpoint (DNS + TCP, + TLS for
 * https) on its own so a firewall or a TLS-intercepting proxy is told apart from the API's answer,
 * then the provider's cheapest authenticated read-only call, then optionally a real message through
 * the upstream's normal send(). Each step is timed. Providers supply only the call, how to read
 * its answer and which config keys to fix when the credentials are refused.
 */
import { isIP } from 'node:net';
import type { RestUpstreamConfig } from '../../config/types.js';
import { connectProbe, networkFailure, timed, type Failure } from '../probe.js';
import { CERT_ERROR } from '../smtp-errors.js';
import type { AttemptResult, CheckRequest, CheckStep, OutboundMessage, RecipientResult } from '../types.js';
import { HttpFailure, httpRequest, type HttpRequest, type HttpResponse } from './http.js';

/** The provider's cheapest authenticated read-only request. */
export interface CredentialCheck {
  request: HttpRequest;
  /** What to fix when the API refuses the credentials (401/403): the config keys, region hints. */
  credentials: string;
}

/** What a check answer says: a one-line summary, or what is wrong (with the provider's code and text). */
export interface CheckVerdict {
  detail: string;
  problem?: { errorCode?: string; text: string };
  /** Provider-specific advice for this problem. */
  advice?: string;
  /** An account-level problem that does not stop sending altogether (sandbox, unverified domain): shown with its fix. */
  warning?: string;
}

export interface CheckHooks {
  credentialCheck(): CredentialCheck;
  /** `sender`: the --from address of a test send, when there is one (checked against verified senders). */
  interpret(response: HttpResponse, sender?: string): CheckVerdict;
  send: (message: OutboundMessage) => Promise<RecipientResult[]>;
}

const connectFailure = (error: Failure): AttemptResult => (CERT_ERROR.test(error.code ?? '') ? { kind: 'tls', errorCode: error.code ?? 'ETLS', message: error.message } : networkFailure(error));

function elapsed(started: number): number {
  return Math.round(performance.now() - started);
}

async function credentialStep(provider: string, call: CredentialCheck, interpret: (response: HttpResponse) => CheckVerdict, timeoutMs: number): Promise<CheckStep> {
  const name = `authenticated ${call.request.method} ${new URL(call.request.url).pathname}`;
  const started = performance.now();
  let response: HttpResponse;
  try {
    response = await httpRequest(call.request, timeoutMs);
  } catch (error) {
    const failure = error instanceof HttpFailure ? error.result : networkFailure(error as Failure);
    return { name, ok: false, durationMs: elapsed(started), detail: 'message' in failure ? failure.message : failure.kind, failure };
  }
  const durationMs = elapsed(started);
  const verdict = interpret(response);
  if (!verdict.problem) return { name, ok: true, durationMs, detail: `HTTP ${response.status}, ${verdict.detail}`, ...(verdict.warning ? { advice: verdict.warning } : {}) };
  const { errorCode, text } = verdict.problem;
  const refused = response.status === 401 || response.status === 403;
  return {
    name,
    ok: false,
    durationMs,
    detail: `HTTP ${response.status}${errorCode ? ` ${errorCode}` : ''}: ${text || verdict.detail}`,
    failure: { kind: 'http', provider, status: response.status, errorCode, text: text || verdict.detail },
    advice: verdict.advice ?? (refused ? call.credentials : undefined),
  };
}

async function sendStep(message: OutboundMessage, send: CheckHooks['send']): Promise<CheckStep> {
  const started = performance.now();
  const name = `send to ${message.recipients.join(', ')}`;
  let results: RecipientResult[];
  try {
    results = await send(message);
  } catch (error) {
    // send() reports every API or network outcome as a result; a throw is a bug on our side, shown as such.
    const failure: AttemptResult = { kind: 'network', errorCode: 'EINTERNAL', message: (error as Error).message };
    return { name, ok: false, durationMs: elapsed(started), detail: failure.message, failure };
  }
  const refused = results.find((r) => r.result.kind !== 'accepted');
  if (!refused) {
    const first = results[0]?.result;
    return { name, ok: true, durationMs: elapsed(started), detail: first?.kind === 'accepted' ? first.reply : 'accepted' };
  }
  const failure = refused.result;
  const text = 'text' in failure ? failure.text : 'message' in failure ? failure.message : failure.kind;
  return { name, ok: false, durationMs: elapsed(started), detail: `${failure.kind === 'http' ? `HTTP ${failure.status}: ` : ''}${text}`, failure };
}

export async function checkRest(config: RestUpstreamConfig, request: CheckRequest, hooks: CheckHooks): Promise<CheckStep[]> {
  const url = new URL(config.endpoint);
  const https = url.protocol === 'https:';
  const port = Number(url.port) || (https ? 443 : 80);
  const host = url.hostname.replace(/^\[|\]$/g, '');
  const timeoutMs = Math.min(config.timeout, 30_000);
  const steps: CheckStep[] = [];
  const connect = await timed(
    `connect ${url.host}${url.port ? '' : `:${port}`} (DNS + TCP${https ? ' + TLS' : ''})`,
    () => connectProbe({ host, port, timeoutMs, ...(https ? { tls: isIP(host) ? {} : { servername: host } } : {}) }),
    connectFailure,
  );
  steps.push(connect);
  if (!connect.ok) return steps;
  const credentials = await credentialStep(config.type, hooks.credentialCheck(), (r) => hooks.interpret(r, request.send?.sender), timeoutMs);
  steps.push(credentials);
  if (!credentials.ok || !request.send) return steps;
  steps.push(await sendStep(request.send, hooks.send));
  return steps;
}
