/**
 * Provider webhook bodies as the providers sign them, for tests that post to the listener.
 * Mailgun: https://documentation.mailgun.com/docs/mailgun/user-manual/tracking-messages/ — the
 * body carries `signature` {timestamp, token, signature = HMAC-SHA256(key, timestamp + token)}
 * beside the `event-data`.
 */
import { signMailgun } from '../../src/events/providers/mailgun.js';

export function mailgunWebhook(key: string, token: string, eventData: object, timestamp = String(Math.floor(Date.now() / 1000))): string {
  return JSON.stringify({ signature: { timestamp, token, signature: signMailgun(key, timestamp, token) }, 'event-data': eventData });
}

/** Mailgun's "failed" event-data with severity permanent (a hard bounce) for `recipient` of `messageId`. */
export function mailgunHardBounce(token: string, recipient: string, messageId: string, reply: string): Record<string, unknown> {
  return {
    event: 'failed',
    severity: 'permanent',
    reason: 'bounce',
    recipient,
    id: token,
    'delivery-status': { code: 550, message: reply },
    message: { headers: { 'message-id': messageId } },
  };
}
