/**
 * Brevo transactional webhooks (https://developers.brevo.com/docs/transactional-webhooks,
 * securing them: https://developers.brevo.com/docs/secured-webhooks): no signature; the webhook is
 * created with Basic credentials in its URL ("https://user:password@host/…") or with a bearer
 * token sent as `Authorization: Bearer …`. Whichever is configured is required.
 */
import type { ProviderEvent, WebhookRequest, WebhookResult } from '../types.js';
import { WebhookRejected } from '../types.js';
import { requireBasicAuth, safeEqual, type WebhookSecrets } from '../verify.js';
import { normalizeMessageId } from '../message-id.js';
import { asList, dateOf, field, jsonBody, lower, reasonOf, str } from './common.js';

export function verifyBrevo(request: WebhookRequest, secrets: WebhookSecrets): void {
  if (secrets.token === undefined) return requireBasicAuth(request, secrets);
  const match = /^Bearer\s+(\S+)\s*$/i.exec(request.headers['authorization'] ?? '');
  if (!match || !safeEqual(match[1]!, secrets.token)) throw new WebhookRejected('wrong or missing bearer token');
}

const TYPES: Record<string, ProviderEvent['type']> = {
  hard_bounce: 'hard_bounce',
  invalid_email: 'rejected',
  error: 'rejected',
  blocked: 'suppressed',
  spam: 'complaint',
  complaint: 'complaint',
  delivered: 'delivered',
  soft_bounce: 'deferred',
  deferred: 'deferred',
  opened: 'opened',
  unique_opened: 'opened',
};

export function parseBrevo(body: Buffer): WebhookResult {
  const events: ProviderEvent[] = [];
  for (const e of asList(jsonBody(body))) {
    const event = brevoEvent(lower(field(e, 'event')), str(field(e, 'message-id')), lower(field(e, 'email')), field(e, 'reason'), dateOf(field(e, 'ts_event') ?? field(e, 'date')));
    if (event) events.push(event);
  }
  return { events };
}

/** One Brevo event from its webhook name ("hard_bounce", …): webhooks, and the events API once its names are mapped (poll/brevo.ts). */
export function brevoEvent(name: string | undefined, id: string | undefined, recipient: string | undefined, reason: unknown, at: Date | undefined): ProviderEvent | undefined {
  const type = TYPES[name ?? ''];
  if (!id || !recipient || !type) return undefined;
  return {
    type,
    providerMessageId: normalizeMessageId('brevo', id),
    recipient,
    reason: reasonOf(reason),
    eventId: `${name}:${id}:${recipient}`,
    at,
  };
}
