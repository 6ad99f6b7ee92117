/**
 * Provider events (webhooks, later polls) in one normalized form. Each provider module turns its own
 * payload into ProviderEvents; matching, notices and metrics only ever see this type.
 */

/**
 * What happened to one recipient after the provider accepted the message:
 * - hard_bounce: the recipient's server refused it permanently (5xx) after the provider's 2xx;
 * - permanent_failure: the provider gave up (e.g. Mailgun "failed" with severity permanent);
 * - rejected: the provider refused to send it at all after accepting the request;
 * - suppressed: the provider dropped it because the address is on its suppression list;
 * - complaint: the recipient marked it as spam (never reported to the sender);
 * - delivered / deferred / opened: history and metrics only.
 */
export const EVENT_TYPES = ['hard_bounce', 'permanent_failure', 'rejected', 'suppressed', 'complaint', 'delivered', 'deferred', 'opened'] as const;
export type EventType = (typeof EVENT_TYPES)[number];

export interface ProviderEvent {
  type: EventType;
  /** The id the provider returned when it accepted the message, normalised (normalizeMessageId). */
  providerMessageId: string;
  /** Lower-cased as the provider reports it; matched case-insensitively. */
  recipient: string;
  /** The provider's diagnostic (remote server reply, bounce description), when it gives one. */
  reason?: string;
  /** The remote SMTP status ("550 5.1.1", "5.1.1") when the provider reports one. */
  status?: string;
  /** The provider's own event id when it has one (dedupe of repeated webhooks). */
  eventId?: string;
  /** When the provider says it happened. */
  at?: Date;
}

/** One HTTP request as the listener received it: header names lower-cased, the raw body bytes. */
export interface WebhookRequest {
  headers: Record<string, string | undefined>;
  body: Buffer;
}

/** Why a request was refused (logged; the client only ever sees 401). */
export class WebhookRejected extends Error {
  constructor(readonly reason: string) {
    super(reason);
    this.name = 'WebhookRejected';
  }
}

/** A verified request that carries no event but wants an action (SNS SubscriptionConfirmation). */
export interface WebhookResult {
  events: ProviderEvent[];
  /** SNS: the SubscribeURL to GET to confirm the subscription. */
  confirmUrl?: string;
}
