/**
 * [events]: the HTTP endpoint providers post their webhooks to, POST /events/<upstream name>.
 * Every request is verified by the provider's documented method first; anything unverified gets
 * 401 and nothing is recorded. A verified request is answered 2xx only after the sink has
 * recorded its events (the provider retries anything else). It is a separate server on its own
 * port and never waits on delivery; bodies are capped at max_body (413 beyond it).
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import type { EventsConfig, RestUpstreamConfig, UpstreamConfig } from '../config/types.js';
import { REST_TYPES } from '../config/types.js';
import { WEBHOOK_PROVIDERS, type VerifyContext } from './providers/index.js';
import { SNS_MAX_AGE_MS } from './providers/ses.js';
import { WebhookRejected, type ProviderEvent, type WebhookRequest } from './types.js';
import { ReplayGuard, type Replay, type WebhookSecrets } from './verify.js';

/** Where verified events go; resolves once they are durably recorded. */
export type EventSink = (upstream: RestUpstreamConfig, events: ProviderEvent[]) => Promise<void>;

export interface EventsListenerOptions {
  config: EventsConfig;
  upstreams: UpstreamConfig[];
  sink: EventSink;
  log: Logger;
  /** Tests: the clock. */
  now?: () => number;
}

const FETCH_TIMEOUT_MS = 10_000;

export function secretsOf(upstream: RestUpstreamConfig): WebhookSecrets {
  return {
    signingKey: upstream.webhookSigningKey,
    username: upstream.webhookUsername,
    password: upstream.webhookPassword,
    token: upstream.webhookToken,
    topicArns: upstream.webhookTopicArn,
  };
}

/** Claims made while verifying one request, so they can be given back when recording fails. */
class RequestClaims implements Replay {
  private readonly keys: string[] = [];
  constructor(private readonly guard: ReplayGuard) {}
  claim(key: string, now: number): void {
    this.guard.claim(key, now);
    this.keys.push(key);
  }
  release(): void {
    for (const key of this.keys) this.guard.release(key);
  }
}

export class EventsListener {
  private readonly replay = new ReplayGuard();
  private readonly snsReplay = new ReplayGuard(100_000, 2 * SNS_MAX_AGE_MS);
  private readonly certificates = new Map<string, string>();
  private readonly upstreams: Map<string, RestUpstreamConfig>;
  private server: Server | undefined;

  constructor(private readonly options: EventsListenerOptions) {
    this.upstreams = new Map(options.upstreams.filter((u): u is RestUpstreamConfig => (REST_TYPES as readonly string[]).includes(u.type)).map((u) => [u.name, u]));
  }

  async start(): Promise<AddressInfo> {
    const server = createServer({ requestTimeout: 30_000, headersTimeout: 10_000 }, (request, response) => {
      this.handle(request, response).catch((error: Error) => {
        this.options.log.error({ event: 'webhook', err: error.message }, 'webhook handling failed');
        if (!response.headersSent) response.writeHead(500).end();
      });
    });
    server.maxHeadersCount = 100;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.options.config.port, this.options.config.host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    this.server = server;
    return server.address() as AddressInfo;
  }

  async close(): Promise<void> {
    const server = this.server;
    if (!server) return;
    await new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });
  }

  private async handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const reply = (status: number, text: string) => response.writeHead(status, { 'content-type': 'text/plain', connection: 'close' }).end(`${text}\n`);
    const match = /^\/events\/([^/?#]+)\/?(?:\?.*)?$/.exec(request.url ?? '');
    if (request.method !== 'POST') return void reply(405, 'POST only');
    const upstream = match ? this.upstreams.get(decodeURIComponent(match[1]!)) : undefined;
    if (!upstream) return void reply(404, 'no such upstream; POST /events/<upstream name>');
    const body = await this.readBody(request);
    if (body === undefined) return void reply(413, `body larger than ${this.options.config.maxBody} bytes`);
    const headers: Record<string, string | undefined> = {};
    for (const [name, value] of Object.entries(request.headers)) headers[name] = Array.isArray(value) ? value.join(', ') : value;
    const webhook: WebhookRequest = { headers, body };
    const provider = WEBHOOK_PROVIDERS[upstream.type];
    const claims = new RequestClaims(this.replay);
    const snsClaims = new RequestClaims(this.snsReplay);
    const context: VerifyContext = { now: (this.options.now ?? Date.now)(), replay: claims, snsReplay: snsClaims, fetchCertificate: (url) => this.certificate(url) };
    const log = this.options.log.child({ event: 'webhook', upstream: upstream.name, client: request.socket.remoteAddress });
    try {
      await provider.verify(webhook, secretsOf(upstream), context);
    } catch (error) {
      if (!(error instanceof WebhookRejected)) throw error;
      log.warn({ reason: error.reason }, `webhook refused: ${error.reason}`);
      return void reply(401, 'unauthorized');
    }
    try {
      const result = provider.parse(webhook);
      if (result.confirmUrl) {
        await this.get(new URL(result.confirmUrl));
        log.info('SNS subscription confirmed');
      }
      await this.options.sink(upstream, result.events);
      log.info({ events: result.events.length, types: [...new Set(result.events.map((e) => e.type))] }, 'webhook recorded');
      reply(200, 'ok');
    } catch (error) {
      // Not recorded: let the provider's retry of this very request in again.
      claims.release();
      snsClaims.release();
      log.error({ err: error instanceof Error ? error.message : String(error) }, 'webhook verified but not recorded; the provider will retry');
      reply(500, 'not recorded; retry later');
    }
  }

  /** The body, or undefined when it exceeds max_body (the rest is not read). */
  private readBody(request: IncomingMessage): Promise<Buffer | undefined> {
    const max = this.options.config.maxBody;
    if (Number(request.headers['content-length'] ?? 0) > max) return Promise.resolve(undefined);
    return new Promise((resolve, reject) => {
      const chunks: Buffer[] = [];
      let size = 0;
      request.on('data', (chunk: Buffer) => {
        size += chunk.length;
        if (size > max) {
          request.pause();
          resolve(undefined);
        } else chunks.push(chunk);
      });
      request.on('end', () => resolve(Buffer.concat(chunks)));
      request.on('error', reject);
    });
  }

  /** SNS signing certificates, cached by URL (AWS rotates them rarely; a handful of URLs at most). */
  private async certificate(url: URL): Promise<string> {
    const cached = this.certificates.get(url.href);
    if (cached) return cached;
    const pem = await this.get(url);
    if (this.certificates.size >= 16) this.certificates.delete(this.certificates.keys().next().value!);
    this.certificates.set(url.href, pem);
    return pem;
  }

  /** GET an already checked sns.<region>.amazonaws.com URL (through sns_certificate_origin in tests). */
  private async get(url: URL): Promise<string> {
    const target = this.options.config.snsOrigin ? new URL(url.pathname + url.search, this.options.config.snsOrigin) : url;
    const response = await fetch(target, { redirect: 'error', signal: AbortSignal.timeout(FETCH_TIMEOUT_MS) });
    const text = await response.text();
    if (!response.ok) throw new Error(`GET ${url.origin}${url.pathname} answered ${response.status}`);
    return text;
  }
}
