/**
 * What the pull-API fakes share: a list of provider events, each visible from `visibleAt` on
 * (providers record events late: Mailgun documents up to half an hour), and opaque page tokens.
 */
/** An event record as a provider's API returns it (JSON). */
export type JsonItem = Record<string, unknown>;

export interface Stored<T> {
  /** The provider's own record of the event, as its API returns it. */
  item: T;
  /** When the event happened (what the API filters and sorts by), Unix ms. */
  at: number;
  /** From when the API lists it (default: at once). */
  visibleAt?: number;
}

export function visible<T>(events: Stored<T>[], now = Date.now()): Stored<T>[] {
  return events.filter((e) => (e.visibleAt ?? 0) <= now);
}

export function token(state: unknown): string {
  return Buffer.from(JSON.stringify(state)).toString('base64url');
}

export function untoken<T>(text: string): T | undefined {
  try {
    return JSON.parse(Buffer.from(text, 'base64url').toString('utf8')) as T;
  } catch {
    return undefined;
  }
}

export function queryOf(path: string): { pathname: string; query: URLSearchParams } {
  const url = new URL(path, 'http://fake');
  return { pathname: url.pathname, query: url.searchParams };
}
