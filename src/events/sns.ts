/**
 * Amazon SNS message signatures (https://docs.aws.amazon.com/sns/latest/dg/sns-verify-signature-of-message.html):
 * the string to sign is "Key\nValue\n" for a fixed list of keys in byte order (Notification:
 * Message, MessageId, Subject if present, Timestamp, TopicArn, Type; SubscriptionConfirmation and
 * UnsubscribeConfirmation: Message, MessageId, SubscribeURL, Timestamp, Token, TopicArn, Type),
 * signed with RSA and SHA1 (SignatureVersion 1) or SHA256 (2) by the certificate at
 * SigningCertURL. That URL must be https on sns.<region>.amazonaws.com for the topic's region, or
 * anyone could sign with a certificate of their own. Any AWS account can publish a validly signed
 * message, so the topic ARN must also be one the operator configured.
 */
import { X509Certificate, verify } from 'node:crypto';
import { WebhookRejected } from './types.js';

export interface SnsMessage {
  Type: string;
  MessageId: string;
  TopicArn: string;
  Message: string;
  Timestamp: string;
  Signature: string;
  SignatureVersion: string;
  SigningCertURL: string;
  Subject?: string;
  SubscribeURL?: string;
  Token?: string;
}

const NOTIFICATION_KEYS = ['Message', 'MessageId', 'Subject', 'Timestamp', 'TopicArn', 'Type'] as const;
const SUBSCRIPTION_KEYS = ['Message', 'MessageId', 'SubscribeURL', 'Timestamp', 'Token', 'TopicArn', 'Type'] as const;

export function snsStringToSign(message: SnsMessage): string {
  const keys = message.Type === 'Notification' ? NOTIFICATION_KEYS : SUBSCRIPTION_KEYS;
  let out = '';
  for (const key of keys) {
    const value = message[key];
    if (value === undefined) continue; // only Subject is optional; required ones were checked
    out += `${key}\n${value}\n`;
  }
  return out;
}

/** The region of a topic ARN (arn:aws:sns:<region>:<account>:<name>). */
export function topicRegion(arn: string): string | undefined {
  return /^arn:aws[a-z-]*:sns:([a-z0-9-]+):\d{12}:[A-Za-z0-9_.-]+$/.exec(arn)?.[1];
}

/** https://sns.<region>.amazonaws.com/… (or .com.cn) for the topic's own region, nothing else. */
export function requireSnsUrl(url: string, region: string, what: string): URL {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new WebhookRejected(`${what} is not a URL`);
  }
  const host = parsed.hostname.toLowerCase();
  if (parsed.protocol !== 'https:' || parsed.port !== '' || (host !== `sns.${region}.amazonaws.com` && host !== `sns.${region}.amazonaws.com.cn`)) {
    throw new WebhookRejected(`${what} ${JSON.stringify(url)} is not on sns.${region}.amazonaws.com`);
  }
  return parsed;
}

/** Parses and checks an SNS envelope's shape; the signature is checked by verifySnsSignature. */
export function snsMessageOf(json: unknown): SnsMessage {
  const m = json as Record<string, unknown> | undefined;
  const required = ['Type', 'MessageId', 'TopicArn', 'Message', 'Timestamp', 'Signature', 'SignatureVersion', 'SigningCertURL'];
  if (!m || typeof m !== 'object' || required.some((k) => typeof m[k] !== 'string')) throw new WebhookRejected('not an SNS message');
  if (m.Type !== 'Notification' && (typeof m.SubscribeURL !== 'string' || typeof m.Token !== 'string')) throw new WebhookRejected('SNS confirmation without SubscribeURL/Token');
  if (m.Subject !== undefined && typeof m.Subject !== 'string') throw new WebhookRejected('not an SNS message');
  return m as unknown as SnsMessage;
}

export function verifySnsSignature(message: SnsMessage, certificatePem: string, now: number): void {
  const algorithm = message.SignatureVersion === '1' ? 'sha1' : message.SignatureVersion === '2' ? 'sha256' : undefined;
  if (!algorithm) throw new WebhookRejected(`unknown SNS SignatureVersion ${message.SignatureVersion}`);
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(certificatePem);
  } catch {
    throw new WebhookRejected('SNS signing certificate unreadable');
  }
  if (now < Date.parse(cert.validFrom) || now > Date.parse(cert.validTo)) throw new WebhookRejected('SNS signing certificate not valid now');
  let ok: boolean;
  try {
    ok = verify(algorithm, Buffer.from(snsStringToSign(message)), cert.publicKey, Buffer.from(message.Signature, 'base64'));
  } catch {
    ok = false;
  }
  if (!ok) throw new WebhookRejected('bad SNS signature');
}
