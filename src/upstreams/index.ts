/** Builds the upstream implementation for each [[upstream]] table. */
import type { UpstreamConfig } from '../config/types.js';
import type { Upstream } from './types.js';

/**
 * Provider modules are loaded only for the types the config uses: the REST ones pull in mailparser
 * and request signing, which an SMTP-only relay should not carry in memory.
 */
export async function createUpstream(config: UpstreamConfig, hostname: string): Promise<Upstream> {
  switch (config.type) {
    case 'smtp':
      return new (await import('./smtp.js')).SmtpUpstream(config, hostname);
    case 'maildir':
      return new (await import('./maildir.js')).MaildirUpstream(config);
    case 'sendgrid':
      return new (await import('./sendgrid.js')).SendgridUpstream(config);
    case 'postmark':
      return new (await import('./postmark.js')).PostmarkUpstream(config);
    case 'resend':
      return new (await import('./resend.js')).ResendUpstream(config);
    case 'brevo':
      return new (await import('./brevo.js')).BrevoUpstream(config);
    case 'sparkpost':
      return new (await import('./sparkpost.js')).SparkpostUpstream(config);
    case 'mailgun':
      return new (await import('./mailgun.js')).MailgunUpstream(config);
    case 'mailjet':
      return new (await import('./mailjet.js')).MailjetUpstream(config);
    case 'ses':
      return new (await import('./ses.js')).SesUpstream(config);
    case 'm365':
      return new (await import('./m365.js')).M365Upstream(config, hostname);
    case 'gmail':
      return new (await import('./gmail.js')).GmailUpstream(config, hostname);
  }
}

/** Where an upstream sends mail, for logs and status output. */
export function upstreamTarget(config: UpstreamConfig): string {
  switch (config.type) {
    case 'smtp':
      return `${config.host}:${config.port} (${config.tls})`;
    case 'maildir':
      return config.path;
    case 'mailgun':
      return `${config.endpoint} (domain ${config.domain})`;
    case 'ses':
      return `${config.endpoint} (${config.region})`;
    case 'm365':
    case 'gmail':
      return config.via === 'smtp' ? `${config.smtp.host}:${config.smtp.port} (${config.smtp.tls}, XOAUTH2)` : config.endpoint;
    default:
      return config.endpoint;
  }
}
