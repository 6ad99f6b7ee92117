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
    const id = str(field(e, 'message-id'));
    const recipient = lower(field(e, 'email'));
    const type = TYPES[lower(field(e, 'event')) ?? ''];
    if (!id || !recipient || !type) continue;
    events.push({
      type,
      providerMessageId: normalizeMessageId('brevo', id),
      recipient,
      reason: reasonOf(field(e, 'reason')),
      eventId: `${lower(field(e, 'event'))}:${id}:${recipient}`,
      at: dateOf(field(e, 'ts_event') ?? field(e, 'date')),
    });
  }
  return { events };
}
