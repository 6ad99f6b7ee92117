/**
 * The HTTP client REST upstreams share: Node's built-in fetch (undici), whose global dispatcher
 * keeps connections alive and pools them per origin, with a hard per-request timeout. Failures to
 * talk to the API at all are reported as network/TLS results, never thrown.
 */
import { isSafeNumber, parse as parseLossless } from 'lossless-json';
import type { AttemptResult } from '../types.js';
import { CERT_ERROR } from '../smtp-errors.js';

export interface HttpRequest {
  method: 'POST' | 'GET';
  url: string;
  headers: Record<string, string>;
  /** Absent for GET. */
  body?: string | Buffer | FormData;
}

export interface HttpResponse {
  status: number;
  headers: Headers;
  text: string;
}

/** Thrown by httpRequest when no HTTP answer arrived; `result` says what happened. */
export class HttpFailure extends Error {
  constructor(readonly result: AttemptResult) {
    super(result.kind === 'network' || result.kind === 'tls' ? result.message : result.kind);
  }
}

export async function httpRequest(request: HttpRequest, timeoutMs: number): Promise<HttpResponse> {
  try {
    const response = await fetch(request.url, {
      method: request.method,
      headers: request.headers,
      // undici takes Buffers as bodies; the DOM typings only lack the overload.
      body: request.body as RequestInit['body'],
      redirect: 'manual',
      signal: AbortSignal.timeout(timeoutMs),
    });
    // The body read is under the same timeout signal.
    return { status: response.status, headers: response.headers, text: await response.text() };
  } catch (error) {
    throw new HttpFailure(failureOf(error, timeoutMs));
  }
}

/** fetch rejects with TypeError("fetch failed") whose cause carries the system error code. */
export function failureOf(error: unknown, timeoutMs: number): AttemptResult {
  const e = error as Error & { cause?: { code?: string; message?: string } };
  if (e?.name === 'TimeoutError' || e?.name === 'AbortError') {
    return { kind: 'network', errorCode: 'ETIMEDOUT', message: `no answer within ${timeoutMs} ms` };
  }
  const code = e?.cause?.code ?? '';
  const message = e?.cause?.message ?? e?.message ?? String(error);
  if (CERT_ERROR.test(code)) return { kind: 'tls', errorCode: code, message };
  return { kind: 'network', errorCode: code || 'EHTTP', message };
}

/** Retry-After: delay-seconds or an HTTP date (RFC 9110 §10.2.3); undefined when absent or unreadable. */
export function parseRetryAfter(value: string | null | undefined, now = Date.now()): number | undefined {
  if (!value) return undefined;
  const trimmed = value.trim();
  if (/^\d+$/.test(trimmed)) return Number(trimmed) * 1000;
  const at = Date.parse(trimmed);
  if (Number.isNaN(at)) return undefined;
  return Math.max(0, at - now);
}

/** A rate-limit reset header: seconds from now ("delta") or a Unix time in seconds ("epoch"). */
export function parseReset(value: string | null | undefined, form: 'delta' | 'epoch', now = Date.now()): number | undefined {
  if (!value || !/^\d+(\.\d+)?$/.test(value.trim())) return undefined;
  const n = Number(value.trim());
  return form === 'delta' ? n * 1000 : Math.max(0, n * 1000 - now);
}

/** Longest wait we honour from a provider, so a bogus header cannot park mail for days. */
export const MAX_RETRY_AFTER_MS = 6 * 3_600_000;

export function capRetryAfter(ms: number | undefined): number | undefined {
  return ms === undefined ? undefined : Math.min(ms, MAX_RETRY_AFTER_MS);
}

export function parseJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}

/**
 * JSON.parse, except that a number JavaScript cannot hold exactly (Mailjet's 64-bit MessageID,
 * 576460753067090994) is kept as its digits, a string. lossless-json does this on Node 20, where
 * JSON.parse's reviver has no access to the source text (that arrives in Node 21+).
 */
export function parseJsonLossless(text: string): unknown {
  try {
    return parseLossless(text, null, (digits) => (isSafeNumber(digits) ? Number(digits) : digits));
  } catch {
    return undefined;
  }
}

/** A property of a parsed JSON value, when it is an object. */
export function field(value: unknown, key: string): unknown {
  return value !== null && typeof value === 'object' && !Array.isArray(value) ? (value as Record<string, unknown>)[key] : undefined;
}

export function str(value: unknown): string | undefined {
  if (typeof value === 'string') return value;
  if (typeof value === 'number') return String(value);
  return undefined;
}

export function basicAuth(user: string, password: string): string {
  return 'Basic ' + Buffer.from(`${user}:${password}`).toString('base64');
}

/** Joins the configured base URL (which may carry a path prefix, e.g. behind a proxy) and an API path. */
export function apiUrl(endpoint: string, path: string): string {
  return endpoint.replace(/\/+$/, '') + path;
}
