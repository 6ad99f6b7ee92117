/**
 * The building blocks of webhook verification that several providers share: constant-time
 * comparison, HTTP Basic credentials, the freshness window of a signed timestamp, and the memory of
 * tokens already seen (replays).
 */
import { timingSafeEqual } from 'node:crypto';
import { WebhookRejected, type WebhookRequest } from './types.js';

/** How far a signed timestamp may be from our clock (either way) before the request is refused as stale. */
export const TIMESTAMP_TOLERANCE_MS = 5 * 60_000;

export interface WebhookSecrets {
  /** Mailgun HTTP webhook signing key; SendGrid verification public key (base64 DER); Resend "whsec_…" secret. */
  signingKey?: string;
  /** HTTP Basic credentials put in the webhook URL (Postmark, Mailjet, SparkPost, Brevo). */
  username?: string;
  password?: string;
  /** Brevo: the bearer token configured on the webhook instead of Basic credentials. */
  token?: string;
  /** SES: the SNS topic(s) allowed to post (a signed SNS message from any other topic is refused). */
  topicArns?: string[];
}

/** Constant-time equality of two strings (different lengths are simply unequal). */
export function safeEqual(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

/** `Authorization: Basic …` must carry exactly the configured user and password. */
export function requireBasicAuth(request: WebhookRequest, secrets: WebhookSecrets): void {
  if (secrets.username === undefined || secrets.password === undefined) throw new WebhookRejected('no webhook_username/webhook_password configured');
  const match = /^Basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(request.headers['authorization'] ?? '');
  if (!match) throw new WebhookRejected('no Basic credentials');
  const given = Buffer.from(match[1]!, 'base64').toString('utf8');
  if (!safeEqual(given, `${secrets.username}:${secrets.password}`)) throw new WebhookRejected('wrong Basic credentials');
}

/** A signed Unix timestamp (seconds) must be within TIMESTAMP_TOLERANCE_MS of now. */
export function requireFresh(timestamp: string | undefined, now: number): number {
  if (timestamp === undefined || !/^\d{1,12}$/.test(timestamp)) throw new WebhookRejected('missing or malformed timestamp');
  const ms = Number(timestamp) * 1000;
  if (Math.abs(now - ms) > TIMESTAMP_TOLERANCE_MS) throw new WebhookRejected(`stale timestamp ${timestamp}`);
  return ms;
}

/** Where verification claims a nonce (a ReplayGuard, or a per-request view of one). */
export interface Replay {
  /** Remembers `key`; throws WebhookRejected when it was already seen. */
  claim(key: string, now: number): void;
}

/**
 * Tokens (Mailgun's token, Svix's message id) seen within the freshness window. A token older than
 * the window is refused as stale anyway, so remembering each one for the window (twice, for clock
 * skew either way) is enough; the memory is bounded and the oldest entries go first.
 */
export class ReplayGuard implements Replay {
  private readonly seen = new Map<string, number>();
  constructor(
    private readonly maxEntries = 100_000,
    private readonly keepMs = 2 * TIMESTAMP_TOLERANCE_MS,
  ) {}

  claim(key: string, now: number): void {
    for (const [k, at] of this.seen) {
      if (now - at <= this.keepMs && this.seen.size < this.maxEntries) break;
      this.seen.delete(k);
    }
    if (this.seen.has(key)) throw new WebhookRejected('replayed token');
    this.seen.set(key, now);
  }

  /** Forgets `key` again: the request was verified but could not be recorded, and the provider's retry must be let in. */
  release(key: string): void {
    this.seen.delete(key);
  }
}
