/**
 * What every REST upstream shares: admission (max_concurrency, rate_limit), the HTTP exchange with
 * timeout, and turning each answer into per-recipient results. A provider module supplies only
 * how to build its request(s) for a message and how to read its success and error bodies.
 * The result reports what the API said (status, the provider's error code and text, Retry-After);
 * src/delivery/classify-http.ts decides what that means.
 */
import { createHash } from 'node:crypto';
import type { RestUpstreamConfig } from '../../config/types.js';
import { forAll, type AttemptResult, type CheckRequest, type CheckStep, type OutboundMessage, type RecipientResult, type Upstream } from '../types.js';
import { checkRest, type CheckVerdict, type CredentialCheck } from './check.js';
import { capRetryAfter, field, HttpFailure, httpRequest, parseJson, parseRetryAfter, str, type HttpRequest, type HttpResponse } from './http.js';
import { Limiter } from './limiter.js';
import { convertMessage, splitAddresses, splitRecipients, type ConvertedMessage, type HeaderPair, type ProviderRules, type RecipientSplit } from './convert.js';

/** One API request and the envelope recipients it covers. */
export interface ProviderCall {
  recipients: string[];
  request: HttpRequest;
}

export type Prepared = { calls: ProviderCall[] } | { unsupported: string };

export interface ProviderError {
  /** The provider's own code or name, e.g. "406", "validation_error", "MessageRejected". */
  errorCode?: string;
  text: string;
}

export abstract class RestUpstream<C extends RestUpstreamConfig = RestUpstreamConfig> implements Upstream {
  readonly name: string;
  readonly type: string;
  private readonly limiter: Limiter;

  constructor(protected readonly config: C) {
    this.name = config.name;
    this.type = config.type;
    this.limiter = new Limiter(config.maxConcurrency, config.rateLimit);
  }

  /** Builds the request(s) for a message: one per recipient group, or why it cannot be sent here. */
  protected abstract prepare(message: OutboundMessage): Promise<Prepared>;

  /** The provider's message id from a 2xx answer. */
  protected abstract messageIdOf(response: HttpResponse): string | undefined;

  /** The provider's error code and text from an error answer. */
  protected abstract errorOf(response: HttpResponse): ProviderError;

  /** How long the provider asks us to wait; providers with reset headers extend this. */
  protected retryAfterOf(response: HttpResponse): number | undefined {
    return parseRetryAfter(response.headers.get('retry-after'));
  }

  /** Per-recipient message ids (lower-case address → id) for APIs that return them. */
  protected recipientIdsOf(_response: HttpResponse): Map<string, string> | undefined {
    return undefined;
  }

  /** `test-upstream`: the provider's cheapest authenticated read-only call. */
  protected abstract credentialCheck(): CredentialCheck;

  /** Reads the answer to credentialCheck(): by default any 2xx proves the credentials, anything else is the provider's error. */
  protected interpretCheck(response: HttpResponse): CheckVerdict {
    if (response.status >= 200 && response.status < 300) return { detail: 'credentials accepted' };
    const error = this.errorOf(response);
    return { detail: `HTTP ${response.status}`, problem: { errorCode: error.errorCode, text: error.text || response.text.slice(0, 200) } };
  }

  check(request: CheckRequest): Promise<CheckStep[]> {
    return checkRest(this.config, request, {
      credentialCheck: () => this.credentialCheck(),
      interpret: (response) => this.interpretCheck(response),
      send: (message) => this.send(message),
    });
  }

  /** A 2xx whose body still reports a failure (batch-style APIs); none by default. */
  protected bodyError(_response: HttpResponse): ProviderError | undefined {
    return undefined;
  }

  async send(message: OutboundMessage): Promise<RecipientResult[]> {
    // A throw here would be our bug, not the message's: the router retries it rather than bounce.
    const prepared = await this.prepare(message);
    if ('unsupported' in prepared) return forAll(message.recipients, { kind: 'unsupported', text: prepared.unsupported });
    const results: RecipientResult[] = [];
    for (const call of prepared.calls) {
      const { result, ids } = await this.exchange(call);
      for (const recipient of call.recipients) {
        const id = ids?.get(recipient.toLowerCase());
        results.push({ recipient, result: id && result.kind === 'accepted' ? { ...result, reply: `${result.reply.replace(/ id=.*$/, '')} id=${id}`, providerMessageId: id } : result });
      }
    }
    return results;
  }

  private async exchange(call: ProviderCall): Promise<{ result: AttemptResult; ids?: Map<string, string> }> {
    let response: HttpResponse;
    try {
      response = await this.limiter.run(() => httpRequest(call.request, this.config.timeout));
    } catch (error) {
      if (error instanceof HttpFailure) return { result: error.result };
      return { result: { kind: 'network', errorCode: 'EHTTP', message: (error as Error).message } };
    }
    const status = response.status;
    if (status >= 200 && status < 300) {
      const failed = this.bodyError(response);
      if (!failed) {
        const id = this.messageIdOf(response);
        return { result: { kind: 'accepted', reply: `HTTP ${status}${id ? ` id=${id}` : ''}`, providerMessageId: id }, ids: this.recipientIdsOf(response) };
      }
      return { result: { kind: 'http', provider: this.type, status, ...failed } };
    }
    const error = this.errorOf(response);
    const result: AttemptResult = {
      kind: 'http',
      provider: this.type,
      status,
      errorCode: error.errorCode,
      text: error.text || response.text.slice(0, 500) || `HTTP ${status}`,
      retryAfterMs: capRetryAfter(this.retryAfterOf(response)),
    };
    return { result };
  }

  async close(): Promise<void> {}
}

/** For JSON APIs: convert the MIME once, then one request per recipient group (see splitRecipients). */
export async function convertedCalls(
  message: OutboundMessage,
  rules: ProviderRules,
  maxPerRequest: number,
  build: (converted: ConvertedMessage, split: RecipientSplit) => HttpRequest | { unsupported: string },
): Promise<Prepared> {
  const conversion = await convertMessage(message.raw, rules);
  if ('unsupported' in conversion) return conversion;
  const calls: ProviderCall[] = [];
  for (const split of splitRecipients(conversion.message, message.recipients, maxPerRequest)) {
    const request = build(conversion.message, split);
    if ('unsupported' in request) return request;
    calls.push({ recipients: splitAddresses(split), request });
  }
  return { calls };
}

/** Custom headers as the {name: value} object most APIs take; a repeated name cannot be expressed. */
export function headerObject(headers: HeaderPair[], provider: string): { headers: Record<string, string> } | { unsupported: string } {
  const out: Record<string, string> = {};
  const seen = new Set<string>();
  for (const { name, value } of headers) {
    if (seen.has(name.toLowerCase())) return { unsupported: `the ${name} header appears more than once, which ${provider}'s API cannot express` };
    seen.add(name.toLowerCase());
    out[name] = value;
  }
  return { headers: out };
}

/** Most JSON APIs require a body; a message with neither text nor html gets an empty-looking one. */
export function bodies(message: ConvertedMessage): { text?: string; html?: string } {
  if (message.text === undefined && message.html === undefined) return { text: ' ' };
  return { text: message.text, html: message.html };
}

/** The common error body shape {<codeKey>: ..., <textKey>: "..."}; falls back to the raw body text. */
export function jsonError(response: HttpResponse, codeKey: string | undefined, textKey: string): ProviderError {
  const json = parseJson(response.text);
  return { errorCode: codeKey ? str(field(json, codeKey)) : undefined, text: str(field(json, textKey)) ?? response.text.slice(0, 500) };
}

/** Stable per (queue id, recipient set): a retry of the same request carries the same key. */
export function idempotencyKey(queueId: string, recipients: string[]): string {
  const digest = createHash('sha256').update([...recipients].map((r) => r.toLowerCase()).sort().join('\n')).digest('hex').slice(0, 16);
  return `mailshim-${queueId}-${digest}`;
}
