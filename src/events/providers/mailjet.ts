/**
 * Mailjet event API (https://dev.mailjet.com/email/guides/webhooks/): secured only by Basic auth
 * credentials in the endpoint URL ("https://user:password@host/…"); one event object per POST, or
 * an array when grouping is enabled. MessageID is a 64-bit integer, kept as its digits.
 */
import type { ProviderEvent, WebhookRequest, WebhookResult } from '../types.js';
import { requireBasicAuth, type WebhookSecrets } from '../verify.js';
import { normalizeMessageId } from '../message-id.js';
import { asList, dateOf, field, jsonBody, lower, reasonOf, str } from './common.js';

export function verifyMailjet(request: WebhookRequest, secrets: WebhookSecrets): void {
  requireBasicAuth(request, secrets);
}

export function parseMailjet(body: Buffer): WebhookResult {
  const events: ProviderEvent[] = [];
  for (const e of asList(jsonBody(body))) {
    const id = str(field(e, 'MessageID'));
    const recipient = lower(field(e, 'email'));
    if (!id || !recipient) continue;
    let type: ProviderEvent['type'] | undefined;
    switch (lower(field(e, 'event'))) {
      // Mailjet retries soft bounces itself; a bounce event without hard_bounce is not final.
      case 'bounce':
        type = field(e, 'hard_bounce') === true ? 'hard_bounce' : 'deferred';
        break;
      case 'blocked':
        type = 'rejected';
        break;
      case 'spam':
        type = 'complaint';
        break;
      case 'sent':
        type = 'delivered';
        break;
      case 'open':
        type = 'opened';
        break;
      default:
        break; // click, unsub, ...: not delivery outcomes
    }
    if (!type) continue;
    events.push({
      type,
      providerMessageId: normalizeMessageId('mailjet', id),
      recipient,
      reason: reasonOf(field(e, 'error_related_to'), field(e, 'error'), field(e, 'comment')),
      eventId: `${lower(field(e, 'event'))}:${id}:${recipient}`,
      at: dateOf(field(e, 'time')),
    });
  }
  return { events };
}
