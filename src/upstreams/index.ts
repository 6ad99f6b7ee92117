/** Builds the upstream implementation for each [[upstream]] table. */
import type { UpstreamConfig } from '../config/types.js';
import { BrevoUpstream } from './brevo.js';
import { MaildirUpstream } from './maildir.js';
import { MailgunUpstream } from './mailgun.js';
import { MailjetUpstream } from './mailjet.js';
import { PostmarkUpstream } from './postmark.js';
import { ResendUpstream } from './resend.js';
import { SendgridUpstream } from './sendgrid.js';
import { SesUpstream } from './ses.js';
import { SmtpUpstream } from './smtp.js';
import { SparkpostUpstream } from './sparkpost.js';
import type { Upstream } from './types.js';

export function createUpstream(config: UpstreamConfig, hostname: string): Upstream {
  switch (config.type) {
    case 'smtp':
      return new SmtpUpstream(config, hostname);
    case 'maildir':
      return new MaildirUpstream(config);
    case 'sendgrid':
      return new SendgridUpstream(config);
    case 'postmark':
      return new PostmarkUpstream(config);
    case 'resend':
      return new ResendUpstream(config);
    case 'brevo':
      return new BrevoUpstream(config);
    case 'sparkpost':
      return new SparkpostUpstream(config);
    case 'mailgun':
      return new MailgunUpstream(config);
    case 'mailjet':
      return new MailjetUpstream(config);
    case 'ses':
      return new SesUpstream(config);
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
    default:
      return config.endpoint;
  }
}
