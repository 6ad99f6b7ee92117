/**
 * One entry per REST provider: how its webhooks are verified and parsed. verify throws
 * WebhookRejected for anything the provider's documented method does not vouch for; parse is
 * only ever called on a verified request.
 */
import type { RestType } from '../../config/types.js';
import type { WebhookRequest, WebhookResult } from '../types.js';
import type { Replay, WebhookSecrets } from '../verify.js';
import { parseBrevo, verifyBrevo } from './brevo.js';
import { parseMailgun, verifyMailgun } from './mailgun.js';
import { parseMailjet, verifyMailjet } from './mailjet.js';
import { parsePostmark, verifyPostmark } from './postmark.js';
import { parseResend, verifyResend } from './resend.js';
import { parseSendgrid, verifySendgrid } from './sendgrid.js';
import { parseSesBody, verifySes, type CertificateFetcher } from './ses.js';
import { parseSparkpost, verifySparkpost } from './sparkpost.js';

export interface VerifyContext {
  now: number;
  /** Nonces with a 5-minute window (Mailgun tokens, svix-id). */
  replay: Replay;
  /** SNS message ids, kept for the hour SNS messages stay acceptable. */
  snsReplay: Replay;
  fetchCertificate: CertificateFetcher;
}

export interface WebhookProvider {
  verify(request: WebhookRequest, secrets: WebhookSecrets, context: VerifyContext): void | Promise<unknown>;
  parse(request: WebhookRequest): WebhookResult;
}

export const WEBHOOK_PROVIDERS: Record<RestType, WebhookProvider> = {
  mailgun: { verify: (r, s, c) => verifyMailgun(r, s, c.now, c.replay), parse: (r) => parseMailgun(r.body) },
  sendgrid: { verify: (r, s, c) => verifySendgrid(r, s, c.now), parse: (r) => parseSendgrid(r.body) },
  postmark: { verify: (r, s) => verifyPostmark(r, s), parse: (r) => parsePostmark(r.body) },
  resend: { verify: (r, s, c) => verifyResend(r, s, c.now, c.replay), parse: (r) => parseResend(r.body, r.headers) },
  ses: { verify: (r, s, c) => verifySes(r, s, c.now, c.snsReplay, c.fetchCertificate), parse: (r) => parseSesBody(r.body) },
  mailjet: { verify: (r, s) => verifyMailjet(r, s), parse: (r) => parseMailjet(r.body) },
  brevo: { verify: (r, s) => verifyBrevo(r, s), parse: (r) => parseBrevo(r.body) },
  sparkpost: { verify: (r, s) => verifySparkpost(r, s), parse: (r) => parseSparkpost(r.body) },
};
