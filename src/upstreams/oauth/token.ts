/**
 * OAuth 2.0 access tokens for the m365 and gmail upstreams: one form POST to the token endpoint,
 * and a per-upstream in-memory cache keyed by mailbox (Google tokens are per impersonated user;
 * a Microsoft client-credentials token serves every mailbox and uses one key).
 *
 * The cache refreshes ahead of expiry (5 minutes, or half the lifetime for short-lived tokens),
 * and refreshes are single-flight: however many deliveries find the token stale at once, one
 * request goes to the token endpoint and all of them wait for it. A token the API refuses before
 * its time (revoked, clock skew) is dropped with invalidate() so the next get() fetches a new one.
 * Tokens are never logged: nothing here writes a log line, and errors carry only the endpoint's
 * error code and description, never the request or the token.
 */
import type { AttemptResult } from '../types.js';
import { field, HttpFailure, httpRequest, parseJson, str } from '../rest/http.js';

export interface AccessToken {
  value: string;
  /** Epoch ms when the endpoint says it expires. */
  expiresAt: number;
}

/** The token endpoint refused (or never answered); `result` is what delivery classifies, its text ends with the fix. */
export class TokenFailure extends Error {
  constructor(readonly result: AttemptResult) {
    super(result.kind === 'http' ? result.text : 'message' in result ? result.message : result.kind);
  }
}

/** The endpoint's error answer: its code (e.g. "AADSTS7000215", "unauthorized_client") and description. */
export interface TokenError {
  status: number;
  error: string;
  code: string;
  description: string;
}

const REFRESH_AHEAD_MS = 5 * 60_000;

interface Entry {
  token?: AccessToken;
  refreshAt: number;
  pending?: Promise<AccessToken>;
}

export class TokenCache {
  private readonly entries = new Map<string, Entry>();

  constructor(
    private readonly acquire: (key: string) => Promise<AccessToken>,
    private readonly now: () => number = Date.now,
  ) {}

  /** A valid token for `key`: the cached one, the refresh already in flight, or a new one. */
  get(key: string): Promise<AccessToken> {
    const entry = this.entries.get(key) ?? { refreshAt: 0 };
    this.entries.set(key, entry);
    if (entry.pending) return entry.pending;
    if (entry.token && this.now() < entry.refreshAt) return Promise.resolve(entry.token);
    const pending = this.acquire(key).then(
      (token) => {
        const lifetime = Math.max(0, token.expiresAt - this.now());
        entry.token = token;
        entry.refreshAt = token.expiresAt - Math.min(REFRESH_AHEAD_MS, lifetime / 2);
        entry.pending = undefined;
        return token;
      },
      (error: unknown) => {
        entry.pending = undefined;
        throw error;
      },
    );
    entry.pending = pending;
    return pending;
  }

  /** The API refused `value`: forget it (unless a newer token already replaced it). */
  invalidate(key: string, value: string): void {
    const entry = this.entries.get(key);
    if (entry?.token?.value === value) {
      entry.token = undefined;
      entry.refreshAt = 0;
    }
  }
}

/**
 * POSTs the form to the token endpoint. A 200 with access_token and expires_in is the token;
 * anything else is handed to `explain`, which turns the endpoint's error into a delivery result
 * whose text says how to fix it.
 */
export async function requestToken(url: string, form: Record<string, string>, timeoutMs: number, explain: (error: TokenError) => AttemptResult, now: () => number = Date.now): Promise<AccessToken> {
  let response;
  try {
    response = await httpRequest(
      { method: 'POST', url, headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' }, body: new URLSearchParams(form).toString() },
      timeoutMs,
    );
  } catch (error) {
    if (error instanceof HttpFailure) throw new TokenFailure(error.result);
    throw new TokenFailure({ kind: 'network', errorCode: 'EHTTP', message: (error as Error).message });
  }
  const json = parseJson(response.text);
  const value = str(field(json, 'access_token'));
  const expiresIn = Number(field(json, 'expires_in'));
  if (response.status === 200 && value && Number.isFinite(expiresIn) && expiresIn > 0) {
    return { value, expiresAt: now() + expiresIn * 1000 };
  }
  const error = str(field(json, 'error')) ?? `HTTP ${response.status}`;
  const description = (str(field(json, 'error_description')) ?? response.text.slice(0, 300)).split(/\r?\n/)[0]!.trim();
  const codes = field(json, 'error_codes');
  const aadsts = Array.isArray(codes) && typeof codes[0] === 'number' ? `AADSTS${codes[0]}` : /\b(AADSTS\d+)\b/.exec(description)?.[1];
  // A 2xx without a usable token is the endpoint misbehaving: retry later.
  if (response.status >= 200 && response.status < 300) {
    throw new TokenFailure({ kind: 'network', errorCode: 'EBADTOKEN', message: `token endpoint answered ${response.status} without access_token/expires_in` });
  }
  throw new TokenFailure(explain({ status: response.status, error, code: aadsts ?? error, description }));
}

/** A token-endpoint error as an HTTP result for classification; `fix` is appended so the log line carries it. */
export function tokenResult(provider: string, e: TokenError, fix: string | undefined, retryAfterMs?: number): AttemptResult {
  const text = `token endpoint: ${e.error}${e.description ? ` (${e.description})` : ''}${fix ? ` — fix: ${fix}` : ''}`;
  return { kind: 'http', provider, status: e.status, errorCode: e.code, text, ...(retryAfterMs !== undefined ? { retryAfterMs } : {}) };
}
