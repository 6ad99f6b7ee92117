/**
 * Postmark webhooks (https://postmarkapp.com/developer/webhooks/webhooks-overview: "Protecting your
 * webhook" — Basic auth credentials in the webhook URL, no signature). Payloads:
 * bounce (https://postmarkapp.com/developer/webhooks/bounce-webhook, types in
 * https://postmarkapp.com/developer/api/bounce-api#bounce-types), spam complaint, delivery, open.
 */
import type { ProviderEvent, WebhookRequest, WebhookResult } from '../types.js';
import { requireBasicAuth, type WebhookSecrets } from '../verify.js';
import { normalizeMessageId } from '../message-id.js';
import { dateOf, field, jsonBody, lower, reasonOf, str } from './common.js';

export function verifyPostmark(request: WebhookRequest, secrets: WebhookSecrets): void {
  requireBasicAuth(request, secrets);
}

/** Postmark bounce Type → our type; types not listed (AutoResponder, Subscribe, …) are not failures. */
const BOUNCE_TYPES: Record<string, ProviderEvent['type']> = {
  hardbounce: 'hard_bounce',
  bademailaddress: 'hard_bounce',
  manuallydeactivated: 'suppressed',
  unsubscribe: 'suppressed',
  blocked: 'permanent_failure',
  dmarcpolicy: 'permanent_failure',
  smtpapierror: 'permanent_failure',
  templaterenderingfailed: 'rejected',
  softbounce: 'deferred',
  transient: 'deferred',
  dnserror: 'deferred',
  spamcomplaint: 'complaint',
};

export function parsePostmark(body: Buffer): WebhookResult {
  const event = postmarkEvent(jsonBody(body));
  return { events: event ? [event] : [] };
}

/**
 * One Postmark record: a webhook body, or (recordType "bounce") an item of the Bounces API's
 * `Bounces` list, which has the bounce webhook's fields.
 */
export function postmarkEvent(e: unknown, recordType = lower(field(e, 'RecordType'))): ProviderEvent | undefined {
  const id = str(field(e, 'MessageID'));
  if (!id) return undefined;
  let type: ProviderEvent['type'] | undefined;
  let recipient = lower(field(e, 'Recipient'));
  let at = dateOf(field(e, 'ReceivedAt'));
  switch (recordType) {
    case 'bounce':
      type = BOUNCE_TYPES[lower(field(e, 'Type')) ?? ''];
      recipient = lower(field(e, 'Email'));
      at = dateOf(field(e, 'BouncedAt'));
      break;
    case 'spamcomplaint':
      type = 'complaint';
      recipient = lower(field(e, 'Email'));
      at = dateOf(field(e, 'BouncedAt'));
      break;
    case 'delivery':
      type = 'delivered';
      at = dateOf(field(e, 'DeliveredAt'));
      break;
    case 'open':
      type = 'opened';
      break;
    default: // other record types (Click, SubscriptionChange, ...) are not delivery outcomes
      break;
  }
  if (!type || !recipient) return undefined;
  const eventId = str(field(e, 'ID'));
  return {
    type,
    providerMessageId: normalizeMessageId('postmark', id),
    recipient,
    reason: reasonOf(field(e, 'Description'), field(e, 'Details')),
    eventId: eventId ? `${recordType}:${eventId}` : undefined,
    at,
  };
}
