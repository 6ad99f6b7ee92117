/**
 * Provider message ids as stored at delivery and as reported in events differ in form: Mailgun and
 * Brevo wrap them in angle brackets in events (Mailgun's send answer does too), SendGrid's
 * sg_message_id is the X-Message-Id of the send answer followed by ".filter…" routing data.
 * normalizeMessageId brings both sides to one form so they can be matched.
 */
import type { RestType } from '../config/types.js';

export function normalizeMessageId(provider: RestType, id: string): string {
  let value = id.trim().replace(/^<|>$/g, '').trim();
  // SendGrid: "14c5d75ce93.dfd.64b469.filter0001.16648.5515E0B88.0" / "LRzXl_NHStOGhQ4kofSm_A.filterdrecv-…":
  // everything before ".filter" is the X-Message-Id the v3 API returned
  // (https://www.twilio.com/docs/sendgrid/for-developers/tracking-events/event#message-id).
  if (provider === 'sendgrid') value = value.replace(/\.filter[\s\S]*$/, '');
  return value;
}
