/**
 * Amazon SES notifications through SNS (https://docs.aws.amazon.com/ses/latest/dg/notification-contents.html
 * and, for configuration-set event publishing, https://docs.aws.amazon.com/ses/latest/dg/event-publishing-retrieving-sns-contents.html).
 * The SNS envelope is verified by sns.ts; the SES notification is the JSON string in Message.
 * The SES v2 SendEmail MessageId is mail.messageId.
 */
import type { ProviderEvent, WebhookRequest, WebhookResult } from '../types.js';
import { WebhookRejected } from '../types.js';
import { requireSnsUrl, snsMessageOf, topicRegion, verifySnsSignature, type SnsMessage } from '../sns.js';
import type { Replay, WebhookSecrets } from '../verify.js';
import { normalizeMessageId } from '../message-id.js';
import { dateOf, field, jsonBody, lower, reasonOf, str } from './common.js';
import { parseJsonLossless } from '../../upstreams/rest/http.js';

/** How old an SNS message may be: SNS retries HTTP deliveries for up to an hour with its default policy. */
export const SNS_MAX_AGE_MS = 60 * 60_000;

export type CertificateFetcher = (url: URL) => Promise<string>;

export async function verifySes(request: WebhookRequest, secrets: WebhookSecrets, now: number, replay: Replay, fetchCertificate: CertificateFetcher): Promise<SnsMessage> {
  const message = snsMessageOf(jsonBody(request.body));
  if (!secrets.topicArns?.includes(message.TopicArn)) throw new WebhookRejected(`SNS topic ${message.TopicArn} is not in webhook_topic_arn`);
  const region = topicRegion(message.TopicArn);
  if (!region) throw new WebhookRejected('malformed TopicArn');
  const certUrl = requireSnsUrl(message.SigningCertURL, region, 'SigningCertURL');
  if (!certUrl.pathname.endsWith('.pem')) throw new WebhookRejected('SigningCertURL is not a .pem');
  if (message.SubscribeURL !== undefined) requireSnsUrl(message.SubscribeURL, region, 'SubscribeURL');
  const sent = Date.parse(message.Timestamp);
  if (Number.isNaN(sent) || Math.abs(now - sent) > SNS_MAX_AGE_MS) throw new WebhookRejected(`stale SNS Timestamp ${message.Timestamp}`);
  let pem: string;
  try {
    pem = await fetchCertificate(certUrl);
  } catch (error) {
    throw new WebhookRejected(`cannot fetch the SNS signing certificate: ${(error as Error).message}`);
  }
  verifySnsSignature(message, pem, now);
  replay.claim(`sns:${message.MessageId}`, now);
  return message;
}

function recipientsOf(list: unknown, key?: string): { address: string; entry: unknown }[] {
  if (!Array.isArray(list)) return [];
  return (list as unknown[]).map((entry) => ({ address: lower(key ? field(entry, key) : entry) ?? '', entry })).filter((r) => r.address !== '');
}

export function parseSes(message: SnsMessage): WebhookResult {
  if (message.Type === 'SubscriptionConfirmation') return { events: [], confirmUrl: message.SubscribeURL };
  if (message.Type !== 'Notification') return { events: [] };
  const n = parseJsonLossless(message.Message);
  const kind = lower(field(n, 'notificationType') ?? field(n, 'eventType'));
  const mail = field(n, 'mail');
  const id = str(field(mail, 'messageId'));
  if (!id || !kind) return { events: [] };
  const providerMessageId = normalizeMessageId('ses', id);
  const out: ProviderEvent[] = [];
  const push = (type: ProviderEvent['type'], recipient: string, detail: { reason?: string; status?: string; at?: Date }) =>
    out.push({ type, providerMessageId, recipient, eventId: `${message.MessageId}:${recipient}`, ...detail });
  switch (kind) {
    case 'bounce': {
      const b = field(n, 'bounce');
      const bounceType = lower(field(b, 'bounceType'));
      const sub = lower(field(b, 'bounceSubType')) ?? '';
      const type = bounceType === 'permanent' ? (/suppress/.test(sub) ? 'suppressed' : 'hard_bounce') : 'deferred';
      for (const r of recipientsOf(field(b, 'bouncedRecipients'), 'emailAddress')) {
        push(type, r.address, {
          reason: reasonOf(field(r.entry, 'diagnosticCode')) ?? `${str(field(b, 'bounceType'))}/${str(field(b, 'bounceSubType'))}`,
          status: str(field(r.entry, 'status')),
          at: dateOf(field(b, 'timestamp')),
        });
      }
      break;
    }
    case 'complaint': {
      const c = field(n, 'complaint');
      for (const r of recipientsOf(field(c, 'complainedRecipients'), 'emailAddress'))
        push('complaint', r.address, { reason: str(field(c, 'complaintFeedbackType')), at: dateOf(field(c, 'timestamp')) });
      break;
    }
    case 'delivery': {
      const d = field(n, 'delivery');
      for (const r of recipientsOf(field(d, 'recipients'))) push('delivered', r.address, { reason: str(field(d, 'smtpResponse')), at: dateOf(field(d, 'timestamp')) });
      break;
    }
    case 'deliverydelay': {
      const d = field(n, 'deliveryDelay');
      for (const r of recipientsOf(field(d, 'delayedRecipients'), 'emailAddress'))
        push('deferred', r.address, { reason: reasonOf(field(r.entry, 'diagnosticCode')), status: str(field(r.entry, 'status')) });
      break;
    }
    case 'reject':
      for (const r of recipientsOf(field(mail, 'destination'))) push('rejected', r.address, { reason: str(field(field(n, 'reject'), 'reason')) });
      break;
  }
  return { events: out };
}

/** Parses an already verified SNS body (the listener verifies first, then parses). */
export function parseSesBody(body: Buffer): WebhookResult {
  return parseSes(snsMessageOf(jsonBody(body)));
}
