/**
 * `mailshim events test NAME`: a correctly signed sample "delivered" event per provider, in the
 * provider's own payload shape, so the operator can check the listener and the configured secret
 * end to end. SendGrid and SES sign with keys only the provider holds (an ECDSA private key, AWS's
 * certificate): for them there is no local sample, only the provider console's test button.
 */
import type { RestUpstreamConfig } from '../config/types.js';
import { signMailgun } from './providers/mailgun.js';
import { signSvix } from './providers/resend.js';
import type { WebhookSecrets } from './verify.js';

export const SAMPLE_MESSAGE_ID = 'mailshim-events-test';

export type Sample = { body: string; headers: Record<string, string> } | { unavailable: string };

function basic(secrets: WebhookSecrets): Record<string, string> {
  if (secrets.token !== undefined) return { authorization: `Bearer ${secrets.token}` };
  return { authorization: 'Basic ' + Buffer.from(`${secrets.username ?? ''}:${secrets.password ?? ''}`).toString('base64') };
}

export function sampleEvent(upstream: RestUpstreamConfig, secrets: WebhookSecrets, recipient: string, now = Date.now()): Sample {
  const seconds = String(Math.floor(now / 1000));
  const nonce = `${SAMPLE_MESSAGE_ID}-${now}-${Math.random().toString(36).slice(2)}`;
  switch (upstream.type) {
    case 'mailgun':
      if (!secrets.signingKey) return { unavailable: 'no webhook_signing_key configured' };
      return {
        headers: {},
        body: JSON.stringify({
          signature: { timestamp: seconds, token: nonce, signature: signMailgun(secrets.signingKey, seconds, nonce) },
          'event-data': { event: 'delivered', id: nonce, timestamp: now / 1000, recipient, message: { headers: { 'message-id': SAMPLE_MESSAGE_ID } } },
        }),
      };
    case 'resend': {
      if (!secrets.signingKey) return { unavailable: 'no webhook_signing_key configured' };
      const body = JSON.stringify({ type: 'email.delivered', created_at: new Date(now).toISOString(), data: { email_id: SAMPLE_MESSAGE_ID, to: [recipient], subject: 'mailshim events test' } });
      return { body, headers: { 'svix-id': nonce, 'svix-timestamp': seconds, 'svix-signature': signSvix(secrets.signingKey, nonce, seconds, Buffer.from(body)) } };
    }
    case 'postmark':
      return {
        headers: basic(secrets),
        body: JSON.stringify({ RecordType: 'Delivery', MessageID: SAMPLE_MESSAGE_ID, Recipient: recipient, DeliveredAt: new Date(now).toISOString(), Details: 'mailshim events test' }),
      };
    case 'mailjet':
      return { headers: basic(secrets), body: JSON.stringify({ event: 'sent', time: Number(seconds), MessageID: SAMPLE_MESSAGE_ID, email: recipient, smtp_reply: 'mailshim events test' }) };
    case 'brevo':
      return { headers: basic(secrets), body: JSON.stringify({ event: 'delivered', email: recipient, 'message-id': `<${SAMPLE_MESSAGE_ID}>`, ts_event: Number(seconds) }) };
    case 'sparkpost':
      return {
        headers: basic(secrets),
        body: JSON.stringify([{ msys: { message_event: { type: 'delivery', transmission_id: SAMPLE_MESSAGE_ID, rcpt_to: recipient, event_id: nonce, timestamp: seconds } } }]),
      };
    case 'sendgrid':
      return { unavailable: 'SendGrid signs with a private key only SendGrid holds; use "Test Your Integration" on the Event Webhook settings page' };
    case 'ses':
      return { unavailable: 'SNS signs with an AWS certificate; publish a test message to the topic in the SNS console (Topics → Publish message)' };
  }
}
