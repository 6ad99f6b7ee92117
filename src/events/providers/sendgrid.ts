/**
 * SendGrid signed Event Webhook
 * (https://www.twilio.com/docs/sendgrid/for-developers/tracking-events/getting-started-event-webhook-security-features):
 * X-Twilio-Email-Event-Webhook-Signature is a base64 DER ECDSA P-256/SHA-256 signature of
 * X-Twilio-Email-Event-Webhook-Timestamp followed by the raw body, checked with the verification
 * key from Mail Settings (base64 DER SubjectPublicKeyInfo). The body is a JSON array of events
 * (https://www.twilio.com/docs/sendgrid/for-developers/tracking-events/event).
 */
import { createPublicKey, verify } from 'node:crypto';
import type { ProviderEvent, WebhookRequest, WebhookResult } from '../types.js';
import { WebhookRejected } from '../types.js';
import { requireFresh, type WebhookSecrets } from '../verify.js';
import { normalizeMessageId } from '../message-id.js';
import { asList, dateOf, field, jsonBody, lower, reasonOf, str } from './common.js';

export const SENDGRID_SIGNATURE = 'x-twilio-email-event-webhook-signature';
export const SENDGRID_TIMESTAMP = 'x-twilio-email-event-webhook-timestamp';

export function verifySendgrid(request: WebhookRequest, secrets: WebhookSecrets, now: number): void {
  if (!secrets.signingKey) throw new WebhookRejected('no webhook_signing_key configured');
  const signature = request.headers[SENDGRID_SIGNATURE];
  const timestamp = request.headers[SENDGRID_TIMESTAMP];
  if (!signature) throw new WebhookRejected('no signature');
  requireFresh(timestamp, now);
  let ok: boolean;
  try {
    const key = createPublicKey({ key: Buffer.from(secrets.signingKey, 'base64'), format: 'der', type: 'spki' });
    ok = verify('sha256', Buffer.concat([Buffer.from(timestamp!), request.body]), key, Buffer.from(signature, 'base64'));
  } catch {
    ok = false;
  }
  if (!ok) throw new WebhookRejected('bad signature');
  // SendGrid has no nonce: a replay within the window is caught by the durable per-event dedupe (sg_event_id).
}

/** Dropped because of an earlier bounce, unsubscribe or spam report: SendGrid's suppression lists. */
const SUPPRESSION_REASONS = /bounced address|unsubscribed address|spam reporting address|invalid/i;

export function parseSendgrid(body: Buffer): WebhookResult {
  const events: ProviderEvent[] = [];
  for (const e of asList(jsonBody(body))) {
    const id = str(field(e, 'sg_message_id'));
    const recipient = lower(field(e, 'email'));
    if (!id || !recipient) continue;
    const reason = str(field(e, 'reason'));
    let type: ProviderEvent['type'] | undefined;
    switch (lower(field(e, 'event'))) {
      case 'bounce':
        type = lower(field(e, 'type')) === 'blocked' ? 'permanent_failure' : 'hard_bounce';
        break;
      case 'dropped':
        type = reason && SUPPRESSION_REASONS.test(reason) ? 'suppressed' : 'rejected';
        break;
      case 'spamreport':
        type = 'complaint';
        break;
      case 'delivered':
        type = 'delivered';
        break;
      case 'deferred':
        type = 'deferred';
        break;
      case 'open':
        type = 'opened';
        break;
      default:
        break; // processed, click, unsubscribe, ...: not delivery outcomes
    }
    if (!type) continue;
    events.push({
      type,
      providerMessageId: normalizeMessageId('sendgrid', id),
      recipient,
      reason: reasonOf(reason ?? field(e, 'response')),
      status: str(field(e, 'status')),
      eventId: str(field(e, 'sg_event_id')),
      at: dateOf(field(e, 'timestamp')),
    });
  }
  return { events };
}
