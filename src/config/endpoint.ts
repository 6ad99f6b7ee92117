/** Where an upstream is: the default SMTP ports and the URL rule for REST endpoints (shared by upstream.ts and oauth-upstream.ts). */
import { isLoopbackHost } from './address.js';
import type { TableReader } from './reader.js';
import type { TlsMode } from './types.js';

export const DEFAULT_PORTS: Record<TlsMode, number> = { starttls: 587, implicit: 465, none: 25 };

/** https everywhere; plain http only to a loopback host (local test servers, a local proxy). */
export function readEndpoint(table: TableReader, fallback: string, key = 'endpoint'): string {
  const value = table.string(key);
  if (value === undefined) return fallback;
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    table.problem(key, `expected a URL like "https://api.eu.example.com", got ${JSON.stringify(value)}`);
    return fallback;
  }
  const host = url.hostname.replace(/^\[|\]$/g, '');
  if (url.protocol === 'http:' && !isLoopbackHost(host)) {
    table.problem(key, `must use https (http is only allowed for a loopback host), got ${JSON.stringify(value)}`);
  } else if (url.protocol !== 'https:' && url.protocol !== 'http:') {
    table.problem(key, `expected an https URL, got ${JSON.stringify(value)}`);
  } else if (url.search || url.hash || url.username || url.password) {
    table.problem(key, `must be a base URL without query, fragment or credentials, got ${JSON.stringify(value)}`);
  }
  return value.replace(/\/+$/, '');
}
