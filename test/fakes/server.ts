/**
 * A real HTTP server for fake provider APIs. Each provider fake (test/fakes/<provider>.ts) supplies
 * a handler that validates requests as strictly as the provider documents and answers with the
 * provider's own error body shapes. Tests can script the next answers (429, 5xx, 401, 422) for
 * requests that pass validation, and read exactly what was accepted.
 */
import { createServer, type IncomingHttpHeaders } from 'node:http';

export interface Received {
  method: string;
  path: string;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

export interface Reply {
  status: number;
  headers?: Record<string, string>;
  /** An object is sent as JSON, a string as text. */
  body?: unknown;
}

export interface Accepted<T = unknown> {
  request: Received;
  /** The parsed payload the fake accepted. */
  payload: T;
  /** The id the fake answered with. */
  id: string;
}

export interface Fake<T = unknown> {
  url: string;
  /** Every request, valid or not. */
  received: Received[];
  /** Requests that were valid and answered with success. */
  accepted: Accepted<T>[];
  /** Answers for the next valid requests, in order (consumed before success). */
  script: Reply[];
  /** Every reply sent, in order (status and body), for assertions. */
  replies: Reply[];
  /** Holds the next reply this long after handling the request (a provider that is slow to answer). */
  delayNext: number;
  waitForAccepted(count: number, timeoutMs?: number): Promise<Accepted<T>[]>;
  close(): Promise<void>;
}

export type Handler<T> = (request: Received, fake: FakeControl<T>) => Reply | Promise<Reply>;

export interface FakeControl<T> {
  /** Records a valid request: consumes a scripted answer if any, else records it as accepted and returns `success(id)`. */
  accept(request: Received, payload: T, success: (id: string) => Reply): Reply;
}

let counter = 0;

export async function startFake<T>(handler: Handler<T>): Promise<Fake<T>> {
  const received: Received[] = [];
  const accepted: Accepted<T>[] = [];
  const script: Reply[] = [];
  const replies: Reply[] = [];
  const waiters: Array<() => void> = [];
  let self: Fake<T> | undefined;
  const control: FakeControl<T> = {
    accept(request, payload, success) {
      const scripted = script.shift();
      if (scripted) return scripted;
      const id = `fake-${process.pid}-${++counter}`;
      accepted.push({ request, payload, id });
      for (const wake of waiters.splice(0)) wake();
      return success(id);
    },
  };
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const request: Received = { method: req.method ?? '', path: req.url ?? '', headers: req.headers, body: Buffer.concat(chunks) };
      received.push(request);
      // Fire-and-forget: handler errors become a 500 below; a throw after that is a bug in the fake, and
      // node:test fails the file on the unhandled rejection.
      void Promise.resolve()
        .then(() => handler(request, control))
        .catch((error: unknown): Reply => ({ status: 500, body: { fakeError: String(error) } }))
        .then(async (reply) => {
          const delay = self?.delayNext ?? 0;
          if (self) self.delayNext = 0;
          if (delay > 0) await new Promise((resolve) => setTimeout(resolve, delay));
          replies.push(reply);
          if (res.destroyed) return;
          const isText = typeof reply.body === 'string';
          const payload = reply.body === undefined ? '' : isText ? (reply.body as string) : JSON.stringify(reply.body);
          res.writeHead(reply.status, { 'content-type': isText ? 'text/plain' : 'application/json', ...reply.headers });
          res.end(payload);
        });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  self = {
    url: `http://127.0.0.1:${port}`,
    received,
    accepted,
    script,
    replies,
    async waitForAccepted(count, timeoutMs = 15_000) {
      const deadline = Date.now() + timeoutMs;
      while (accepted.length < count) {
        if (Date.now() > deadline) throw new Error(`fake: expected ${count} accepted request(s), got ${accepted.length}; replies: ${JSON.stringify(replies)}`);
        await new Promise<void>((resolve) => {
          waiters.push(resolve);
          setTimeout(resolve, 200);
        });
      }
      return accepted;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
    delayNext: 0,
  };
  return self;
}

// ---- validation helpers shared by the provider fakes ----

export type Json = Record<string, unknown>;

export function isObject(value: unknown): value is Json {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

export function parseJsonBody(request: Received): unknown {
  try {
    return JSON.parse(request.body.toString('utf8')) as unknown;
  } catch {
    return undefined;
  }
}

/** Strict base64 (RFC 4648 alphabet, padded, canonical): what the providers decode. */
export function isBase64(value: unknown): value is string {
  if (typeof value !== 'string' || value.length % 4 !== 0 || !/^[A-Za-z0-9+/]*={0,2}$/.test(value)) return false;
  return Buffer.from(value, 'base64').toString('base64') === value;
}

export function unknownKey(object: Json, allowed: readonly string[]): string | undefined {
  return Object.keys(object).find((key) => !allowed.includes(key));
}

export function missingKey(object: Json, required: readonly string[]): string | undefined {
  return required.find((key) => object[key] === undefined || object[key] === null || object[key] === '');
}

export const EMAIL = /^[^\s@<>()",;]+@[^\s@<>()",;]+\.[^\s@<>()",;]+$/;

/** "Name <addr>" or "addr" → the address, or undefined when malformed. */
export function addressOf(value: string): string | undefined {
  const match = /^\s*(?:(?:"(?:[^"\\]|\\.)*"|[^<>"]*)\s*<([^<>]+)>|([^<>\s]+))\s*$/.exec(value);
  const address = match?.[1] ?? match?.[2];
  return address && EMAIL.test(address) ? address : undefined;
}

export function header(request: Received, name: string): string | undefined {
  const value = request.headers[name.toLowerCase()];
  return Array.isArray(value) ? value[0] : value;
}
