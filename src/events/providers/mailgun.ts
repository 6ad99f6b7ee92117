/**
 * Mailgun webhooks (https://documentation.mailgun.com/docs/mailgun/user-manual/webhooks/securing-webhooks/,
 * .../tracking-messages/ "failed" severity/reason, .../events/ event structure): a JSON body
 * `{signature: {timestamp, token, signature}, "event-data": {...}}`; the signature is the hex
 * HMAC-SHA256 of timestamp + token under the account's HTTP webhook signing key. Mailgun asks
 * receivers to refuse stale timestamps and reused tokens; both are refused here.
 */
import { createHmac } from 'node:crypto';
import type { ProviderEvent, WebhookRequest, WebhookResult } from '../types.js';
import { WebhookRejected } from '../types.js';
import { requireFresh, safeEqual, type Replay, type WebhookSecrets } from '../verify.js';
import { normalizeMessageId } from '../message-id.js';
import { dateOf, field, jsonBody, lower, reasonOf, str } from './common.js';

export function signMailgun(key: string, timestamp: string, token: string): string {
  return createHmac('sha256', key)
    .update(timestamp + token)
    .digest('hex');
}

export function verifyMailgun(request: WebhookRequest, secrets: WebhookSecrets, now: number, replay: Replay): void {
  if (!secrets.signingKey) throw new WebhookRejected('no webhook_signing_key configured');
  const signature = field(jsonBody(request.body), 'signature');
  const timestamp = str(field(signature, 'timestamp'));
  const token = str(field(signature, 'token'));
  const given = str(field(signature, 'signature'));
  if (!token || !given) throw new WebhookRejected('no signature');
  requireFresh(timestamp, now);
  if (!safeEqual(signMailgun(secrets.signingKey, timestamp!, token), given.toLowerCase())) throw new WebhookRejected('bad signature');
  replay.claim(`mailgun:${token}`, now);
}

export function parseMailgun(body: Buffer): WebhookResult {
  const event = mailgunEvent(field(jsonBody(body), 'event-data'));
  return { events: event ? [event] : [] };
}

/** One Mailgun event: a webhook's `event-data`, or an item of the Events API's `items` (the same structure). */
export function mailgunEvent(data: unknown): ProviderEvent | undefined {
  const event = lower(field(data, 'event'));
  const recipient = lower(field(data, 'recipient'));
  const id = str(field(field(field(data, 'message'), 'headers'), 'message-id'));
  if (!event || !recipient || !id) return undefined;
  const status = field(data, 'delivery-status');
  const reasonCode = lower(field(data, 'reason'));
  let type: ProviderEvent['type'] | undefined;
  switch (event) {
    case 'failed':
      if (lower(field(data, 'severity')) !== 'permanent') type = 'deferred';
      else if (reasonCode?.startsWith('suppress-')) type = 'suppressed';
      else if (reasonCode === 'bounce') type = 'hard_bounce';
      else type = 'permanent_failure';
      break;
    case 'rejected':
      type = 'rejected';
      break;
    case 'complained':
      type = 'complaint';
      break;
    case 'delivered':
      type = 'delivered';
      break;
    case 'opened':
      type = 'opened';
      break;
  }
  if (!type) return undefined;
  const code = str(field(status, 'code'));
  return {
    type,
    providerMessageId: normalizeMessageId('mailgun', id),
    recipient,
    reason: reasonOf(field(status, 'message'), field(status, 'description'), field(field(data, 'reject'), 'reason')) ?? reasonCode,
    status: code && code !== '0' ? code : undefined,
    eventId: str(field(data, 'id')),
    at: dateOf(field(data, 'timestamp')),
  };
}
