/**
 * The pull APIs' HTTP GET: Node's fetch with the upstream's timeout and the poller's stop signal,
 * answers classified the way deliveries are (classify-http): 401/403 mean our credentials or
 * account are wrong (configuration, shouted about), 408/429/5xx and network trouble are transient
 * (Retry-After honoured), anything else is an unexpected answer, retried at the next round.
 */
import { apiUrl, capRetryAfter, failureOf, parseJsonLossless, parseRetryAfter } from '../../upstreams/rest/http.js';

export type PollFailureClass = 'config' | 'transient' | 'unexpected';

export class PollFailure extends Error {
  constructor(
    readonly failureClass: PollFailureClass,
    message: string,
    readonly status?: number,
    /** How long the provider asked us to wait (Retry-After), ms. */
    readonly retryAfterMs?: number,
  ) {
    super(message);
    this.name = 'PollFailure';
  }
}

export function classifyStatus(status: number): PollFailureClass {
  if (status === 401 || status === 403) return 'config';
  if (status === 408 || status === 429 || status >= 500) return 'transient';
  return 'unexpected';
}

/** The URL without its query (which can hold addresses): what logs and errors show. */
export function shownUrl(url: string): string {
  const u = new URL(url);
  return `${u.origin}${u.pathname}`;
}

export async function getJson(url: string, headers: Record<string, string>, timeoutMs: number, stop: AbortSignal): Promise<unknown> {
  let response: Response;
  let text: string;
  try {
    response = await fetch(url, { method: 'GET', headers, redirect: 'manual', signal: AbortSignal.any([stop, AbortSignal.timeout(timeoutMs)]) });
    text = await response.text();
  } catch (error) {
    if (stop.aborted) throw new PollFailure('transient', 'stopped');
    const failure = failureOf(error, timeoutMs);
    const detail = failure.kind === 'network' || failure.kind === 'tls' ? failure.message : failure.kind;
    throw new PollFailure(failure.kind === 'tls' ? 'config' : 'transient', `GET ${shownUrl(url)}: ${detail}`);
  }
  if (response.status < 200 || response.status > 299) {
    const retryAfter = capRetryAfter(parseRetryAfter(response.headers.get('retry-after')));
    throw new PollFailure(classifyStatus(response.status), `GET ${shownUrl(url)} answered HTTP ${response.status}: ${text.slice(0, 200).replace(/\s+/g, ' ').trim()}`, response.status, retryAfter);
  }
  const value = parseJsonLossless(text);
  if (value === undefined) throw new PollFailure('unexpected', `GET ${shownUrl(url)}: the answer is not JSON`);
  return value;
}

/**
 * A paging link from the answer (Mailgun's full `paging.next` URL on its own host, SparkPost's
 * path-only `links.next`) on the configured endpoint: the configured endpoint (EU region, proxy with a path
 * prefix, test fake) is kept and only the page's path and query are taken from it.
 */
export function onEndpoint(endpoint: string, next: string): string {
  const url = new URL(next, endpoint);
  const base = new URL(endpoint);
  const prefix = base.pathname.replace(/\/+$/, '');
  const path = prefix && url.pathname.startsWith(`${prefix}/`) ? url.pathname.slice(prefix.length) : url.pathname;
  return apiUrl(endpoint, path + url.search);
}
