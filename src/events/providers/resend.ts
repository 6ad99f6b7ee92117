/**
 * Resend webhooks are delivered by Svix (https://resend.com/docs/dashboard/webhooks/verify-webhooks-requests,
 * https://docs.svix.com/receiving/verifying-payloads/how-manual): svix-signature carries one or
 * more space-separated "v1,<base64 HMAC-SHA256>" of `${svix-id}.${svix-timestamp}.${body}` under
 * the base64 part of the "whsec_…" secret; timestamps older than 5 minutes are refused, and so is
 * an svix-id already seen. Event payloads: https://resend.com/docs/dashboard/webhooks/event-types.
 */
import { createHmac } from 'node:crypto';
import type { ProviderEvent, WebhookRequest, WebhookResult } from '../types.js';
import { WebhookRejected } from '../types.js';
import { requireFresh, safeEqual, type Replay, type WebhookSecrets } from '../verify.js';
import { normalizeMessageId } from '../message-id.js';
import { dateOf, field, jsonBody, lower, reasonOf, str } from './common.js';

export function signSvix(secret: string, id: string, timestamp: string, body: Buffer): string {
  const key = Buffer.from(secret.replace(/^whsec_/, ''), 'base64');
  return 'v1,' + createHmac('sha256', key).update(`${id}.${timestamp}.`).update(body).digest('base64');
}

export function verifyResend(request: WebhookRequest, secrets: WebhookSecrets, now: number, replay: Replay): void {
  if (!secrets.signingKey) throw new WebhookRejected('no webhook_signing_key configured');
  const id = request.headers['svix-id'];
  const timestamp = request.headers['svix-timestamp'];
  const signatures = (request.headers['svix-signature'] ?? '').split(' ').filter(Boolean);
  if (!id || signatures.length === 0) throw new WebhookRejected('no signature');
  requireFresh(timestamp, now);
  const expected = signSvix(secrets.signingKey, id, timestamp!, request.body);
  if (!signatures.some((s) => safeEqual(s, expected))) throw new WebhookRejected('bad signature');
  replay.claim(`svix:${id}`, now);
}

const TYPES: Record<string, ProviderEvent['type']> = {
  'email.complained': 'complaint',
  'email.delivered': 'delivered',
  'email.delivery_delayed': 'deferred',
  'email.opened': 'opened',
  'email.failed': 'rejected',
  'email.suppressed': 'suppressed',
};

export function parseResend(body: Buffer, headers: Record<string, string | undefined> = {}): WebhookResult {
  const e = jsonBody(body);
  const data = field(e, 'data');
  const id = str(field(data, 'email_id'));
  const to = field(data, 'to');
  const recipients = (Array.isArray(to) ? to : [to]).map(lower).filter((r): r is string => !!r);
  const kind = lower(field(e, 'type')) ?? '';
  const bounce = field(data, 'bounce');
  const type = kind === 'email.bounced' ? (lower(field(bounce, 'type')) === 'permanent' ? 'hard_bounce' : 'deferred') : TYPES[kind];
  // One email id covers every recipient of the request and the event does not say which one
  // bounced: only a single-recipient email can be attributed to a recipient.
  if (!id || !type || recipients.length !== 1) return { events: [] };
  return {
    events: [
      {
        type,
        providerMessageId: normalizeMessageId('resend', id),
        recipient: recipients[0]!,
        reason: reasonOf(field(bounce, 'message'), field(field(data, 'failed'), 'reason')),
        eventId: headers['svix-id'],
        at: dateOf(field(e, 'created_at')),
      },
    ],
  };
}
