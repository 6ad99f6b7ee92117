/**
 * What every REST upstream shares: admission (max_concurrency, rate_limit), the HTTP exchange with
 * timeout, and turning each answer into per-recipient results. A provider module supplies only
 * how to build its request(s) for a message and how to read its success and error bodies.
 * The result reports what the API said (status, the provider's error code and text, Retry-After);
 * src/delivery/classify-http.ts decides what that means.
 */
import { createHash } from 'node:crypto';
import type { RestUpstreamConfig, UnsupportedPolicy } from '../../config/types.js';
import { forAll, type AttemptResult, type CheckRequest, type CheckStep, type OutboundMessage, type RecipientResult, type Upstream } from '../types.js';
import { checkRest, type CheckVerdict, type CredentialCheck } from './check.js';
import { capRetryAfter, field, HttpFailure, httpRequest, parseJson, parseReset, parseRetryAfter, str, type HttpRequest, type HttpResponse } from './http.js';
import { Limiter } from './limiter.js';
import { convertMessage, splitAddresses, splitRecipients, type ConvertedMessage, type HeaderPair, type ProviderRules, type RecipientSplit } from './convert.js';

/** One API request and the envelope recipients it covers. */
export interface ProviderCall {
  recipients: string[];
  request: HttpRequest;
}

/** `degraded`: what was changed to fit the API (unsupported = "degrade"), recorded with the delivery. */
export type Prepared = { calls: ProviderCall[]; degraded?: string } | { unsupported: string };

export interface ProviderError {
  /** The provider's own code or name, e.g. "406", "validation_error", "MessageRejected". */
  errorCode?: string;
  text: string;
}

/** What one request came to. */
interface Answer {
  result: AttemptResult;
  /** Per-recipient provider ids (lower-case address → id). */
  ids?: Map<string, string>;
  /** Recipients a 2xx answer still refused. */
  refused?: Map<string, ProviderError>;
  /** The error is about recipient addresses: those it names ([] = it does not say which). */
  rejects?: string[];
  status?: number;
}

const ADDRESS_PROBLEM =
  /(invalid|not (contain )?a valid|malformed|inactive|suppress).{0,40}(address|email|recipient)|(address|email|recipient).{0,40}(invalid|not valid|inactive)|\b(to|cc|bcc)\b.{0,20}(invalid|not valid)|invalid .{0,3}\b(to|cc|bcc)\b/i;
/** Address errors about the sender side are not about a recipient. */
const NOT_A_RECIPIENT = /\b(from|sender|reply.?to)\b/i;

/** The recipients an error text names, matched as whole addresses (case-insensitive). */
export function namedIn(text: string, recipients: string[]): string[] {
  const lower = text.toLowerCase();
  return recipients.filter((r) => {
    const at = lower.indexOf(r.toLowerCase());
    if (at < 0) return false;
    const before = lower[at - 1] ?? ' ';
    const after = lower[at + r.length] ?? ' ';
    return !/[\w.+-]/.test(before) && !/[\w-]/.test(after);
  });
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

  /** The provider's rate-limit reset header, when it documents one (name, and seconds-from-now or Unix time). */
  protected readonly resetHeader?: { name: string; form: 'delta' | 'epoch' };

  /** How long the provider asks us to wait: Retry-After, else its rate-limit reset header. */
  protected retryAfterOf(response: HttpResponse): number | undefined {
    const reset = this.resetHeader;
    return parseRetryAfter(response.headers.get('retry-after')) ?? (reset ? parseReset(response.headers.get(reset.name), reset.form) : undefined);
  }

  /** Per-recipient message ids (lower-case address → id) for APIs that return them. */
  protected recipientIdsOf(_response: HttpResponse): Map<string, string> | undefined {
    return undefined;
  }

  /** `test-upstream`: the provider's cheapest authenticated read-only call. */
  protected abstract credentialCheck(): CredentialCheck;

  /** Reads the answer to credentialCheck(): by default any 2xx proves the credentials, anything else is the provider's error. */
  protected interpretCheck(response: HttpResponse, _sender?: string): CheckVerdict {
    if (response.status >= 200 && response.status < 300) return { detail: 'credentials accepted' };
    const error = this.errorOf(response);
    return { detail: `HTTP ${response.status}`, problem: { errorCode: error.errorCode, text: error.text || response.text.slice(0, 200) } };
  }

  check(request: CheckRequest): Promise<CheckStep[]> {
    return checkRest(this.config, request, {
      credentialCheck: () => this.credentialCheck(),
      interpret: (response, sender) => this.interpretCheck(response, sender),
      send: (message) => this.send(message),
    });
  }

  /** A 2xx whose body still reports a failure (batch-style APIs); none by default. */
  protected bodyError(_response: HttpResponse): ProviderError | undefined {
    return undefined;
  }

  /**
   * Recipients an error answer rejects: the ones it names (by address, or by position in the
   * request), [] when it is about a recipient address without saying which, undefined when it is
   * not about recipients at all (a payload or account problem, which applies to every recipient).
   */
  protected recipientsRejectedBy(error: ProviderError, status: number, call: ProviderCall): string[] | undefined {
    if (status !== 400 && status !== 422 && !(status >= 200 && status < 300)) return undefined;
    const named = namedIn(`${error.errorCode ?? ''} ${error.text}`, call.recipients);
    if (named.length > 0) return named;
    return ADDRESS_PROBLEM.test(`${error.errorCode ?? ''} ${error.text}`) && !NOT_A_RECIPIENT.test(error.text) ? [] : undefined;
  }

  /** 2xx answers that still refuse some recipients (lower-case address → why); none by default. */
  protected refusedRecipientsOf(_response: HttpResponse, _call: ProviderCall): Map<string, ProviderError> | undefined {
    return undefined;
  }

  /**
   * An error answer that proves an earlier attempt was accepted (an idempotency key seen before):
   * the reply to record, saying that delivery was inferred. None by default.
   */
  protected acceptedEarlier(_response: HttpResponse, _error: ProviderError): string | undefined {
    return undefined;
  }

  async send(message: OutboundMessage): Promise<RecipientResult[]> {
    // A throw here would be our bug, not the message's: the router retries it rather than bounce.
    const prepared = await this.prepare(message);
    if ('unsupported' in prepared) {
      return forAll(message.recipients, { kind: 'unsupported', text: prepared.unsupported, ...(this.config.unsupported === 'bounce' ? { final: true } : {}) });
    }
    const results: RecipientResult[] = [];
    for (const call of prepared.calls) results.push(...(await this.deliverCall(message, call, prepared.degraded)));
    return results;
  }

  /**
   * One request. Recipients are independent: when the API refuses the request because of one
   * address, that address is bounced and the others are sent again without it; when the answer
   * does not say which address, each recipient is tried alone before anyone is bounced.
   */
  private async deliverCall(message: OutboundMessage, call: ProviderCall, degraded?: string): Promise<RecipientResult[]> {
    const answer = await this.exchange(call);
    const { result } = answer;
    if (answer.rejects && call.recipients.length > 1) {
      const named = answer.rejects;
      if (named.length > 0 && named.length < call.recipients.length) {
        const rest = call.recipients.filter((r) => !named.includes(r));
        return [...named.map((recipient) => ({ recipient, result })), ...(await this.send({ ...message, recipients: rest }))];
      }
      if (named.length === 0) {
        const alone: RecipientResult[] = [];
        for (const recipient of call.recipients) alone.push(...(await this.send({ ...message, recipients: [recipient] })));
        return alone;
      }
    }
    return call.recipients.map((recipient) => {
      const refused = answer.refused?.get(recipient.toLowerCase());
      if (refused) return { recipient, result: { kind: 'http', provider: this.type, status: answer.status ?? 200, ...refused } };
      if (result.kind !== 'accepted') return { recipient, result };
      const id = answer.ids?.get(recipient.toLowerCase());
      const reply = `${result.reply}${id ? ` id=${id}` : ''}${degraded ? ` (degraded: ${degraded})` : ''}`;
      return { recipient, result: { ...result, reply, providerMessageId: id ?? result.providerMessageId } };
    });
  }

  private async exchange(call: ProviderCall): Promise<Answer> {
    // Still inside a rate-limit window the provider announced: waiting for it is the limiter's job,
    // unless it is longer than a request may take; then this attempt is deferred until the reset.
    const held = this.limiter.heldFor();
    if (held > this.config.timeout) {
      return { result: { kind: 'http', provider: this.type, status: 429, text: `rate limited: ${this.type} asked to wait ${Math.ceil(held / 1000)} s more`, retryAfterMs: capRetryAfter(held) } };
    }
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
        return {
          result: { kind: 'accepted', reply: `HTTP ${status}`, providerMessageId: id },
          ids: this.recipientIdsOf(response) ?? (id ? new Map(call.recipients.map((r) => [r.toLowerCase(), id])) : undefined),
          refused: this.refusedRecipientsOf(response, call),
          status,
        };
      }
      return { result: { kind: 'http', provider: this.type, status, ...failed }, rejects: this.recipientsRejectedBy(failed, status, call) };
    }
    const error = this.errorOf(response);
    const inferred = this.acceptedEarlier(response, error);
    if (inferred) return { result: { kind: 'accepted', reply: inferred } };
    const retryAfterMs = capRetryAfter(this.retryAfterOf(response));
    if (status === 429 && retryAfterMs !== undefined) this.limiter.holdUntil(Date.now() + retryAfterMs);
    const result: AttemptResult = {
      kind: 'http',
      provider: this.type,
      status,
      errorCode: error.errorCode,
      text: error.text || response.text.slice(0, 500) || `HTTP ${status}`,
      retryAfterMs,
    };
    return { result, rejects: this.recipientsRejectedBy(error, status, call) };
  }

  async close(): Promise<void> {}
}

/** For JSON APIs: convert the MIME once, then one request per recipient group (see splitRecipients). */
export async function convertedCalls(
  message: OutboundMessage,
  rules: ProviderRules,
  maxPerRequest: number,
  build: (converted: ConvertedMessage, split: RecipientSplit) => HttpRequest | { unsupported: string },
  policy?: UnsupportedPolicy,
): Promise<Prepared> {
  const conversion = await convertMessage(await message.body.buffer(), rules, { degrade: policy === 'degrade' });
  if ('unsupported' in conversion) return conversion;
  const calls: ProviderCall[] = [];
  for (const split of splitRecipients(conversion.message, message.recipients, maxPerRequest)) {
    const request = build(conversion.message, split);
    if ('unsupported' in request) return request;
    calls.push({ recipients: splitAddresses(split), request });
  }
  return { calls, ...(conversion.degraded ? { degraded: conversion.degraded } : {}) };
}

/**
 * The bytes a raw-MIME upstream sends: already made legal for this upstream by delivery (its
 * `wire` capability, src/message/wire.ts: 7-bit for SparkPost and SES, lines ≤ 998, no bare CR/LF
 * or NUL), so the message's bytes as they arrive here.
 */
export function outboundRaw(message: OutboundMessage): Promise<Buffer> {
  return message.body.buffer();
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

/**
 * The same key as a name-based UUID (RFC 9562 version 5 layout), for APIs that require a UUID
 * (Brevo): stable per (queue id, recipient set), so a retry carries the same key.
 */
export function uuidKey(queueId: string, recipients: string[]): string {
  const bytes = createHash('sha1').update(idempotencyKey(queueId, recipients)).digest().subarray(0, 16);
  bytes[6] = (bytes[6]! & 0x0f) | 0x50;
  bytes[8] = (bytes[8]! & 0x3f) | 0x80;
  const hex = bytes.toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/** Stable per (queue id, recipient set): a retry of the same request carries the same key. */
export function idempotencyKey(queueId: string, recipients: string[]): string {
  const digest = createHash('sha256')
    .update(
      [...recipients]
        .map((r) => r.toLowerCase())
        .sort()
        .join('\n'),
    )
    .digest('hex')
    .slice(0, 16);
  return `mailshim-${queueId}-${digest}`;
}
