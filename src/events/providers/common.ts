/** Small helpers the provider event parsers share. */
import { field, parseJsonLossless, str } from '../../upstreams/rest/http.js';
import { WebhookRejected } from '../types.js';

export { field, str };

/** The body as JSON (64-bit integers kept as digit strings), or 401-worthy rejection when it is not JSON. */
export function jsonBody(body: Buffer): unknown {
  const value = parseJsonLossless(body.toString('utf8'));
  if (value === undefined) throw new WebhookRejected('body is not JSON');
  return value;
}

/** A JSON array, or the single object as a one-element array (providers that batch only sometimes). */
export function asList(value: unknown): unknown[] {
  return Array.isArray(value) ? value : value === undefined || value === null ? [] : [value];
}

/** A date from Unix seconds (number or digits) or an ISO string. */
export function dateOf(value: unknown): Date | undefined {
  if (typeof value === 'number') return new Date(value * 1000);
  if (typeof value === 'string') {
    const date = /^\d+(\.\d+)?$/.test(value) ? new Date(Number(value) * 1000) : new Date(value);
    return Number.isNaN(date.getTime()) ? undefined : date;
  }
  return undefined;
}

export function lower(value: unknown): string | undefined {
  return str(value)?.trim().toLowerCase();
}

/** Joins the non-empty parts of a diagnostic. */
export function reasonOf(...parts: unknown[]): string | undefined {
  const text = parts
    .map(str)
    .filter((p): p is string => !!p && p.trim() !== '')
    .join(' — ');
  return text || undefined;
}
