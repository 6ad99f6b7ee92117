/**
 * `mailshim events test NAME` posts a correctly signed sample event to the local [events]
 * listener (proves the listener, the path and the configured secret end to end), and the webhook
 * instructions `mailshim test-upstream` prints for each REST upstream.
 */
import type { Config, RestUpstreamConfig, UpstreamConfig } from '../config/types.js';
import { REST_TYPES } from '../config/types.js';
import { secretsOf } from '../events/listener.js';
import { sampleEvent } from '../events/samples.js';
import { CommandError, EXIT } from './exit.js';

function isRest(upstream: UpstreamConfig): upstream is RestUpstreamConfig {
  return (REST_TYPES as readonly string[]).includes(upstream.type);
}

/** What the provider must be told, per provider console (pages cited in src/events/providers/*.ts). */
const CONSOLE_STEPS: Record<RestUpstreamConfig['type'], (url: string, basicUrl: string, u: RestUpstreamConfig) => string> = {
  mailgun: (url) => `Mailgun: Sending → Webhooks → add ${url} for Permanent Failure, Temporary Failure, Spam Complaints, Delivered; put the HTTP webhook signing key in webhook_signing_key_file`,
  sendgrid: (url) =>
    `SendGrid: Settings → Mail Settings → Event Webhooks → create: Post URL ${url}; actions Bounced, Dropped, Deferred, Delivered, Spam Reports; enable Signed Event Webhook and put its Verification Key in webhook_signing_key_file`,
  postmark: (_, basic) => `Postmark: Servers → (server) → (message stream) → Webhooks → Add webhook: ${basic}; select Bounce, Spam Complaint, Delivery`,
  resend: (url) =>
    `Resend: Webhooks → Add Endpoint ${url}; events email.bounced, email.complained, email.delivered, email.delivery_delayed; put the signing secret (whsec_…) in webhook_signing_key_file`,
  ses: (url, _b, u) =>
    `SES: create an SNS topic in ${'region' in u ? u.region : 'the region'}, subscribe ${url} (HTTPS) to it, make it the identity's Bounce/Complaint/Delivery notification topic (or a configuration-set SNS event destination), and put the topic ARN in webhook_topic_arn; mailshim confirms the subscription itself`,
  mailjet: (_, basic) => `Mailjet: Account settings → Event notifications (webhooks): ${basic} for bounce, blocked, spam, sent`,
  brevo: (_, basic) =>
    `Brevo: Transactional → Settings → Webhook: ${basic} (or the plain URL with a bearer token in webhook_token); events hard bounce, soft bounce, blocked, invalid, spam, delivered`,
  sparkpost: (url) =>
    `SparkPost: Configuration → Webhooks → New: target ${url}, authentication Basic (webhook_username / webhook_password); events Bounce, Out of Band, Policy Rejection, Spam Complaint, Delivery, Delay`,
};

/** The lines test-upstream prints about a REST upstream's webhooks (none for SMTP/maildir). */
export function webhookInstructions(config: Config, upstream: UpstreamConfig): string[] {
  if (!isRest(upstream)) return [];
  if (!config.events) return ['webhooks: off — add an [events] section to receive bounces and complaints after the provider accepted a message (docs/providers.md, "Events and late bounces")'];
  const path = `/events/${encodeURIComponent(upstream.name)}`;
  const url = config.events.publicUrl ? `${config.events.publicUrl.replace(/\/events$/, '')}${path}` : `https://<your TLS reverse proxy>${path}`;
  const basicUrl = url.replace('https://', 'https://<webhook_username>:<webhook_password>@');
  const lines = [`webhook URL: ${url}${config.events.publicUrl ? '' : ' (set [events] public_url to print the real one)'}; listener ${config.events.address}`];
  lines.push(CONSOLE_STEPS[upstream.type](url, basicUrl, upstream));
  return lines;
}

export async function eventsTest(config: Config, name: string, out: NodeJS.WritableStream): Promise<number> {
  const upstream = config.upstreams.find((u) => u.name === name);
  if (!upstream) throw new CommandError(EXIT.USAGE, `no upstream named "${name}"; configured: ${config.upstreams.map((u) => u.name).join(', ')}`);
  if (!isRest(upstream)) throw new CommandError(EXIT.USAGE, `upstream "${name}" is ${upstream.type}: only REST providers send events`);
  if (!config.events) throw new CommandError(EXIT.CONFIG, 'no [events] section: the webhook listener is off');
  const sample = sampleEvent(upstream, secretsOf(upstream), `events-test@${config.hostname}`);
  if ('unavailable' in sample) {
    out.write(`${name}: no local sample: ${sample.unavailable}\n`);
    return EXIT.NOTHING_DONE;
  }
  const host = config.events.host === '0.0.0.0' ? '127.0.0.1' : config.events.host === '::' ? '::1' : config.events.host;
  const url = `http://${host.includes(':') ? `[${host}]` : host}:${config.events.port}/events/${encodeURIComponent(name)}`;
  let response: Response;
  try {
    response = await fetch(url, { method: 'POST', body: sample.body, headers: { 'content-type': 'application/json', ...sample.headers }, signal: AbortSignal.timeout(10_000) });
  } catch (error) {
    out.write(`${name}: POST ${url}: ${(error as Error & { cause?: Error }).cause?.message ?? (error as Error).message} — is the daemon running with this [events] address?\n`);
    return EXIT.DAEMON_DOWN;
  }
  const text = (await response.text()).trim();
  if (response.ok) {
    out.write(`${name}: ${response.status} ${text} — the listener verified and recorded a signed sample "delivered" event (message id mailshim-events-test)\n`);
    return EXIT.OK;
  }
  const why = response.status === 401 ? 'the listener refused the signature/credentials: the daemon was started with other webhook_* secrets than this config (reload it?)' : text;
  out.write(`${name}: POST ${url} answered ${response.status}: ${why}\n`);
  return EXIT.NOTHING_DONE;
}
