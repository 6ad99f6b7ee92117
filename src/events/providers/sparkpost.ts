/**
 * SparkPost webhooks (https://developers.sparkpost.com/api/webhooks/): Basic auth (auth_type
 * "basic", the credentials configured on the webhook) — the other option, OAuth2 client
 * credentials, is not supported. The body is an array of `{msys: {<kind>_event: {...}}}`;
 * the first POST of a new webhook is a test batch `[{"msys":{}}]`. Events name the transmission
 * id the send answer returned. Bounce classes: https://support.sparkpost.com/docs/deliverability/bounce-classification-codes
 */
import type { ProviderEvent, WebhookRequest, WebhookResult } from '../types.js';
import { requireBasicAuth, type WebhookSecrets } from '../verify.js';
import { normalizeMessageId } from '../message-id.js';
import { asList, dateOf, field, jsonBody, lower, reasonOf, str } from './common.js';

export function verifySparkpost(request: WebhookRequest, secrets: WebhookSecrets): void {
  requireBasicAuth(request, secrets);
}

/** SparkPost bounce_class → our type: Hard (10, 30), Unsubscribe (90), Admin (25: SparkPost policy), Block (50–54); the rest are Soft/Undetermined. */
function bounceType(bounceClass: string | undefined): ProviderEvent['type'] {
  switch (bounceClass) {
    case '10':
    case '30':
      return 'hard_bounce';
    case '90':
      return 'suppressed';
    case '25':
      return 'rejected';
    case '50':
    case '51':
    case '52':
    case '53':
    case '54':
      return 'permanent_failure';
    default:
      return 'deferred';
  }
}

export function parseSparkpost(body: Buffer): WebhookResult {
  const events: ProviderEvent[] = [];
  for (const item of asList(jsonBody(body))) {
    const msys = field(item, 'msys');
    const event = sparkpostEvent(field(msys, 'message_event') ?? field(msys, 'track_event') ?? field(msys, 'gen_event'));
    if (event) events.push(event);
  }
  return { events };
}

/** One SparkPost event: the inside of a webhook's `msys.<kind>_event`, or an item of the Events API's `results` (the same fields). */
export function sparkpostEvent(e: unknown): ProviderEvent | undefined {
  const id = str(field(e, 'transmission_id'));
  const recipient = lower(field(e, 'rcpt_to'));
  if (!id || !recipient) return undefined;
  let type: ProviderEvent['type'] | undefined;
  switch (lower(field(e, 'type'))) {
    case 'bounce':
    case 'out_of_band':
      type = bounceType(str(field(e, 'bounce_class')));
      break;
    case 'policy_rejection':
    case 'generation_rejection':
    case 'generation_failure':
      type = 'rejected';
      break;
    case 'spam_complaint':
      type = 'complaint';
      break;
    case 'delivery':
      type = 'delivered';
      break;
    case 'delay':
      type = 'deferred';
      break;
    case 'open':
    case 'initial_open':
      type = 'opened';
      break;
    default:
      break; // injection, click, ...: not delivery outcomes
  }
  if (!type) return undefined;
  return {
    type,
    providerMessageId: normalizeMessageId('sparkpost', id),
    recipient,
    reason: reasonOf(field(e, 'raw_reason') ?? field(e, 'reason')),
    status: str(field(e, 'error_code')),
    eventId: str(field(e, 'event_id')),
    at: dateOf(field(e, 'timestamp')),
  };
}
